package hub

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/syncthing/syncthing/lib/protocol"

	"outpost/content/pack"
	"outpost/sync/wire"
)

// keepVersions is how many published versions per course the hub keeps as
// patch bases. A box further behind than that fetches blocks instead.
const keepVersions = 3

// recordPublish makes a version the catalog just committed known to boxes:
// it keeps the manifest as a patch base, puts the course in the channel and
// appends a change, in one transaction.
func (h *Hub) recordPublish(ctx context.Context, courseID string, version int64, manifest []byte, channel string) (seq int64, err error) {
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("record publish: %w", err)
	}
	defer tx.Rollback()
	now := h.now().Unix()
	// Publishing what boxes already have (the same version to the same
	// channel) is not a change: it would only make every box look behind.
	var known, inChannel int
	var last sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM hub_versions WHERE course_id = ? AND version = ?),
		(SELECT count(*) FROM hub_course_channels WHERE course_id = ? AND channel = ?),
		(SELECT max(seq) FROM hub_changes WHERE course_id = ?)`, courseID, version, courseID, channel, courseID).Scan(&known, &inChannel, &last); err != nil {
		return 0, fmt.Errorf("record publish: %w", err)
	}
	if known > 0 && inChannel > 0 && last.Valid {
		return last.Int64, nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO hub_versions(course_id, version, manifest, published_at) VALUES (?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, courseID, version, manifest, now); err != nil {
		return 0, fmt.Errorf("record publish: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM hub_versions WHERE course_id = ? AND version NOT IN
		(SELECT version FROM hub_versions WHERE course_id = ? ORDER BY version DESC LIMIT ?)`, courseID, courseID, keepVersions); err != nil {
		return 0, fmt.Errorf("record publish: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO hub_course_channels(course_id, channel) VALUES (?, ?) ON CONFLICT DO NOTHING`, courseID, channel); err != nil {
		return 0, fmt.Errorf("record publish: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `INSERT INTO hub_changes(course_id, version, removed, at) VALUES (?, ?, 0, ?) RETURNING seq`,
		courseID, version, now).Scan(&seq); err != nil {
		return 0, fmt.Errorf("record publish: %w", err)
	}
	return seq, tx.Commit()
}

// recordRemove tells boxes a course is gone.
func (h *Hub) recordRemove(ctx context.Context, courseID string) error {
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record removal: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO hub_changes(course_id, version, removed, at) VALUES (?, 0, 1, ?)`, courseID, h.now().Unix()); err != nil {
		return fmt.Errorf("record removal: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM hub_versions WHERE course_id = ?`, courseID); err != nil {
		return fmt.Errorf("record removal: %w", err)
	}
	return tx.Commit()
}

// Token is an enrolment token as the hub lists it.
type Token struct {
	Site     string    `json:"site"`
	Channels []string  `json:"channels"`
	Expires  time.Time `json:"expires"`
}

// CreateToken makes a one-time token for a site and channels and returns
// it in the form the box is given (secret and hub ID).
func (h *Hub) CreateToken(ctx context.Context, site string, channels []string, ttl time.Duration) (string, time.Time, error) {
	site = strings.TrimSpace(site)
	if site == "" {
		return "", time.Time{}, errors.New("create token: no site given; pass --site NAME (the school or clinic the box is for)")
	}
	if len(channels) == 0 {
		return "", time.Time{}, errors.New("create token: no channel given; pass --channels a,b (what the box should receive)")
	}
	if ttl <= 0 {
		return "", time.Time{}, errors.New("create token: --expires must be positive")
	}
	secret, err := wire.NewTokenSecret()
	if err != nil {
		return "", time.Time{}, err
	}
	chJSON, _ := json.Marshal(normaliseChannels(channels))
	now := h.now()
	exp := now.Add(ttl)
	if _, err := h.db.ExecContext(ctx, `INSERT INTO hub_tokens(token_sha256, site, channels, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		wire.TokenDigest(secret), site, string(chJSON), now.Unix(), exp.Unix()); err != nil {
		return "", time.Time{}, fmt.Errorf("create token: %w", err)
	}
	return wire.FormatToken(secret, h.id.DeviceID), exp, nil
}

func normaliseChannels(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, c := range in {
		c = strings.TrimSpace(c)
		if c != "" && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// enrol consumes a token for a device. Enrolling again with the token the
// same device already used succeeds again (the first answer may have been
// lost to a cut link); any other reuse is refused.
func (h *Hub) enrol(ctx context.Context, secret string, dev protocol.DeviceID, hostname, software string) (*wire.EnrolResponse, *wire.Error) {
	tx, err := h.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, h.internal("enrol", err)
	}
	defer tx.Rollback()
	var site, channels string
	var expires int64
	var usedBy sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT site, channels, expires_at, used_by FROM hub_tokens WHERE token_sha256 = ?`,
		wire.TokenDigest(secret)).Scan(&site, &channels, &expires, &usedBy)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &wire.Error{Code: wire.CodeTokenUnknown, Message: "this hub does not know the enrolment token; check it was typed whole, or ask for a new one (`outpost hub token create`)"}
	}
	if err != nil {
		return nil, h.internal("enrol", err)
	}
	now := h.now()
	if usedBy.Valid && usedBy.String != dev.String() {
		return nil, &wire.Error{Code: wire.CodeTokenUsed, Message: "this enrolment token was already used by another box; tokens work once, ask for a new one (`outpost hub token create`)"}
	}
	if !usedBy.Valid && now.Unix() > expires {
		return nil, &wire.Error{Code: wire.CodeTokenExpired, Message: fmt.Sprintf("this enrolment token expired on %s (hub time); ask for a new one (`outpost hub token create`)", time.Unix(expires, 0).UTC().Format(time.RFC3339))}
	}
	if !usedBy.Valid {
		if _, err := tx.ExecContext(ctx, `UPDATE hub_tokens SET used_by = ?, used_at = ? WHERE token_sha256 = ?`, dev.String(), now.Unix(), wire.TokenDigest(secret)); err != nil {
			return nil, h.internal("enrol", err)
		}
		// A box enrolled again (after a reinstall with the same identity,
		// or into another site) starts over: new site, channels, cursor.
		if _, err := tx.ExecContext(ctx, `INSERT INTO hub_boxes(device_id, site, channels, hostname, enrolled_at, last_seen, version, cursor)
			VALUES (?, ?, ?, ?, ?, ?, ?, 0)
			ON CONFLICT(device_id) DO UPDATE SET site = excluded.site, channels = excluded.channels, hostname = excluded.hostname,
				enrolled_at = excluded.enrolled_at, last_seen = excluded.last_seen, version = excluded.version, cursor = 0, revoked_at = NULL`,
			dev.String(), site, channels, cleanHostname(hostname), now.Unix(), now.Unix(), cleanSoftware(software)); err != nil {
			return nil, h.internal("enrol", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, h.internal("enrol", err)
	}
	var chs []string
	json.Unmarshal([]byte(channels), &chs)
	return &wire.EnrolResponse{DeviceID: dev.String(), Site: site, Channels: chs}, nil
}

// box is an enrolled box as the sync API needs it.
type box struct {
	site     string
	channels []string
}

// lookupBox authorises a sync request: the device must be enrolled and not
// revoked. It also records that the box was seen.
func (h *Hub) lookupBox(ctx context.Context, dev protocol.DeviceID, software string) (*box, *wire.Error) {
	var b box
	var channels string
	var revoked sql.NullInt64
	err := h.db.QueryRowContext(ctx, `SELECT site, channels, revoked_at FROM hub_boxes WHERE device_id = ?`, dev.String()).Scan(&b.site, &channels, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &wire.Error{Code: wire.CodeUnknownDevice, Message: fmt.Sprintf("the hub does not know this box (%s); enrol it with a token: `outpost serve --upstream URL --enrol-file TOKEN-FILE`", dev)}
	}
	if err != nil {
		return nil, h.internal("authorise box", err)
	}
	if revoked.Valid {
		return nil, &wire.Error{Code: wire.CodeRevoked, Message: fmt.Sprintf("the hub revoked this box (%s) on %s; ask the hub operator, then enrol again with a new token", dev, time.Unix(revoked.Int64, 0).UTC().Format(time.RFC3339))}
	}
	if err := json.Unmarshal([]byte(channels), &b.channels); err != nil {
		return nil, h.internal("authorise box", err)
	}
	h.touch(dev, software, -1)
	return &b, nil
}

// touch records last-seen (and the cursor the box reports, when >= 0).
// It is best effort: a failure to note a visit must not fail the visit.
func (h *Hub) touch(dev protocol.DeviceID, software string, cursor int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var err error
	software = cleanSoftware(software)
	if cursor >= 0 {
		_, err = h.db.ExecContext(ctx, `UPDATE hub_boxes SET last_seen = ?, version = ?, cursor = ? WHERE device_id = ?`, h.now().Unix(), software, cursor, dev.String())
	} else {
		_, err = h.db.ExecContext(ctx, `UPDATE hub_boxes SET last_seen = ?, version = ? WHERE device_id = ?`, h.now().Unix(), software, dev.String())
	}
	if err != nil {
		h.log.Warn("note box visit", "device", dev.String(), "err", err)
	}
}

// changesSince builds the Changes message for a box.
func (h *Hub) changesSince(ctx context.Context, b *box, since int64) (*wire.Changes, error) {
	tx, err := h.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	defer tx.Rollback()
	out := &wire.Changes{Courses: []wire.CourseChange{}, Removed: []string{}}
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM hub_changes`).Scan(&out.Cursor); err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	if since > out.Cursor {
		// The box is ahead of the hub: the hub's database was restored
		// from an older backup. Send everything so the box converges.
		since = 0
	}
	chJSON, _ := json.Marshal(b.channels)
	rows, err := tx.QueryContext(ctx, `SELECT c.course_id, c.version, c.removed FROM hub_changes c
		WHERE c.seq > ? AND c.seq <= ?
		  AND c.seq = (SELECT max(seq) FROM hub_changes WHERE course_id = c.course_id AND seq <= ?)
		  AND c.course_id IN (SELECT course_id FROM hub_course_channels WHERE channel IN (SELECT value FROM json_each(?)))
		ORDER BY c.seq`, since, out.Cursor, out.Cursor, string(chJSON))
	if err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	type change struct {
		id      string
		version int64
		removed bool
	}
	var list []change
	for rows.Next() {
		var c change
		if err := rows.Scan(&c.id, &c.version, &c.removed); err != nil {
			rows.Close()
			return nil, fmt.Errorf("changes: %w", err)
		}
		list = append(list, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("changes: %w", err)
	}
	for _, c := range list {
		if c.removed {
			out.Removed = append(out.Removed, c.id)
			continue
		}
		cc, err := courseChange(ctx, tx, c.id, c.version)
		if err != nil {
			return nil, err
		}
		out.Courses = append(out.Courses, *cc)
	}
	return out, nil
}

// courseChange is one published version with the patches the hub offers:
// for each file, the file at the same path in the older kept versions.
func courseChange(ctx context.Context, tx *sql.Tx, id string, version int64) (*wire.CourseChange, error) {
	rows, err := tx.QueryContext(ctx, `SELECT version, manifest FROM hub_versions WHERE course_id = ? AND version <= ? ORDER BY version DESC`, id, version)
	if err != nil {
		return nil, fmt.Errorf("changes: course %s: %w", id, err)
	}
	defer rows.Close()
	cc := &wire.CourseChange{ID: id, Version: version}
	var cur *pack.Manifest
	for rows.Next() {
		var v int64
		var raw []byte
		if err := rows.Scan(&v, &raw); err != nil {
			return nil, fmt.Errorf("changes: course %s: %w", id, err)
		}
		m, err := pack.ParseStoredManifest(raw)
		if err != nil {
			return nil, fmt.Errorf("changes: course %s version %d: %w", id, v, err)
		}
		if cur == nil {
			if v != version {
				return nil, fmt.Errorf("changes: course %s: version %d is not kept", id, version)
			}
			cur, cc.Manifest = m, raw
			continue
		}
		for path, f := range cur.Files {
			old, ok := m.Files[path]
			if !ok || old.SHA256 == f.SHA256 {
				continue
			}
			if cc.Patches == nil {
				cc.Patches = map[string][]string{}
			}
			cc.Patches[f.SHA256] = append(cc.Patches[f.SHA256], old.SHA256)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("changes: course %s: %w", id, err)
	}
	if cur == nil {
		return nil, fmt.Errorf("changes: course %s version %d is not kept", id, version)
	}
	return cc, nil
}

// isOffered reports whether the hub offers box a patch from one file to
// another: in the changes of a course of the box's channels whose current
// version holds the new file. Only those pairs may be built, or any
// enrolled box could make the hub spend seconds of CPU and 128 MiB per
// request on arbitrary pairs; and only in the box's channels, or a box
// could learn the size of a file of another channel, and what it shares
// with one of its own, from the patch. (Offers name files of the older
// kept versions of the same course, so both ends are then files of
// versions in the box's channels.)
func (h *Hub) isOffered(ctx context.Context, b *box, from, to string) (bool, error) {
	tx, err := h.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return false, fmt.Errorf("patch offers: %w", err)
	}
	defer tx.Rollback()
	chJSON, _ := json.Marshal(b.channels)
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT c.id, c.current_version FROM version_files vf
		JOIN courses c ON c.id = vf.course_id AND c.current_version = vf.version
		JOIN hub_course_channels cc ON cc.course_id = c.id
		WHERE vf.sha256 = ? AND cc.channel IN (SELECT value FROM json_each(?))`, to, string(chJSON))
	if err != nil {
		return false, fmt.Errorf("patch offers: %w", err)
	}
	type version struct {
		id string
		v  int64
	}
	var holders []version
	for rows.Next() {
		var hv version
		if err := rows.Scan(&hv.id, &hv.v); err != nil {
			rows.Close()
			return false, fmt.Errorf("patch offers: %w", err)
		}
		holders = append(holders, hv)
	}
	rows.Close()
	for _, hv := range holders {
		offers, err := h.offersOf(ctx, tx, hv.id, hv.v)
		if err != nil {
			return false, err
		}
		if slices.Contains(offers[to], from) {
			return true, nil
		}
	}
	return false, nil
}

// offersOf is a version's patch offers, parsed from its kept manifests
// once and remembered: a box asks for one patch per segment, and a
// published version's offers do not change.
func (h *Hub) offersOf(ctx context.Context, tx *sql.Tx, id string, version int64) (map[string][]string, error) {
	key := fmt.Sprintf("%s\x00%d", id, version)
	h.offerMu.Lock()
	offers, ok := h.offers[key]
	h.offerMu.Unlock()
	if ok {
		return offers, nil
	}
	cc, err := courseChange(ctx, tx, id, version)
	if err != nil {
		return nil, err
	}
	h.offerMu.Lock()
	if len(h.offers) >= 1024 { // bounded; refilled on demand
		clear(h.offers)
	}
	h.offers[key] = cc.Patches
	h.offerMu.Unlock()
	return cc.Patches, nil
}

// mayFetch reports whether a box may fetch a file: the file must belong to
// a course version visible in one of the box's channels. Without it any
// enrolled box could read any file whose hash it learned.
func (h *Hub) mayFetch(ctx context.Context, b *box, sha string) (bool, error) {
	chJSON, _ := json.Marshal(b.channels)
	var n int
	err := h.db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM version_files vf
		JOIN courses c ON c.id = vf.course_id AND c.current_version = vf.version
		JOIN hub_course_channels cc ON cc.course_id = vf.course_id
		WHERE vf.sha256 = ? AND cc.channel IN (SELECT value FROM json_each(?)) LIMIT 1)`, sha, string(chJSON)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("authorise file %s: %w", sha, err)
	}
	return n > 0, nil
}

// Host names and software versions come from boxes and are shown to
// operators (`outpost hub boxes`, logs), so the hub keeps only what such a
// string may hold. A box whose host name holds anything else still
// enrols: the name is a label, not an identity.

// maxLabel bounds a stored host name or version (Linux's HOST_NAME_MAX).
const maxLabel = 64

// cleanHostname keeps the characters of a host name (RFC 1123 letters,
// digits, '-' and '.', and the '_' some systems allow), replaces any other
// with '-', and cuts it to maxLabel bytes.
func cleanHostname(s string) string {
	return cleanLabel(s, func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_'
	})
}

// cleanSoftware keeps visible ASCII (a version such as
// "v1.2.0-3-gabc123+dirty" or "(devel)"), replacing anything else.
func cleanSoftware(s string) string {
	return cleanLabel(s, func(r rune) bool { return r > ' ' && r < 0x7f })
}

func cleanLabel(s string, ok func(rune) bool) string {
	s = strings.TrimSpace(s)
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= maxLabel {
			break
		}
		if !ok(r) {
			r = '-'
		}
		b.WriteRune(r)
	}
	return b.String()
}
