package hub

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/syncthing/syncthing/lib/protocol"

	"outpost/content/catalog"
	"outpost/content/pack"
)

// The admin API is for people and their tools (the CLI, the console), so
// it speaks plain JSON and authenticates with the hub's admin token.
func (h *Hub) adminRoutes(mux *http.ServeMux) {
	mux.Handle("GET /admin/v1/uploads/{id}", h.admin(h.handleUploadStatus))
	mux.Handle("PUT /admin/v1/uploads/{id}", h.admin(h.handleUploadPart))
	mux.Handle("POST /admin/v1/uploads/{id}/publish", h.admin(h.handlePublish))
	mux.Handle("POST /admin/v1/tokens", h.admin(h.handleTokenCreate))
	mux.Handle("GET /admin/v1/boxes", h.admin(h.handleBoxes))
	mux.Handle("POST /admin/v1/boxes/{id}/revoke", h.admin(h.handleRevoke))
	mux.Handle("GET /admin/v1/courses", h.admin(h.handleCourses))
	mux.Handle("DELETE /admin/v1/courses/{id}", h.admin(h.handleCourseRemove))
}

// AdminError is the JSON body of a failed admin request.
type AdminError struct {
	Error string `json:"error"`
	// Offset is set on an upload conflict: where the hub's copy ends.
	Offset *int64 `json:"offset,omitempty"`
}

// admin authorises a request by the admin token. A source that sent
// wrong tokens too often is answered 429 before its token is even looked
// at; every wrong token is logged (see refused).
func (h *Hub) admin(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.throttled(w, r, false) {
			return
		}
		if !h.checkAdmin(r) {
			h.refused(w, r, "admin_token")
			adminJSON(w, http.StatusUnauthorized, AdminError{Error: "wrong or missing admin token; it is in the hub's DATA/hub/admin-token (pass --data HUB-DIR on the hub, or --admin-token)"})
			return
		}
		next(w, r)
	})
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func adminFail(w http.ResponseWriter, status int, format string, args ...any) {
	adminJSON(w, status, AdminError{Error: fmt.Sprintf(format, args...)})
}

// UploadStatus says how much of an upload the hub holds.
type UploadStatus struct {
	Offset int64 `json:"offset"`
}

// An upload is named by the SHA-256 of the whole pack, so the client can
// resume it after any cut, even from another process, and the hub can
// check it is whole before publishing.
func (h *Hub) uploadPath(r *http.Request) (string, bool) {
	id := strings.ToLower(r.PathValue("id"))
	if len(id) != 64 {
		return "", false
	}
	if _, err := hex.DecodeString(id); err != nil {
		return "", false
	}
	return filepath.Join(h.dataDir, "hub", "uploads", id+".part"), true
}

func (h *Hub) handleUploadStatus(w http.ResponseWriter, r *http.Request) {
	path, ok := h.uploadPath(r)
	if !ok {
		adminFail(w, http.StatusBadRequest, "an upload is named by the pack's SHA-256 (64 hex digits)")
		return
	}
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		adminJSON(w, http.StatusOK, UploadStatus{})
		return
	}
	if err != nil {
		adminFail(w, http.StatusInternalServerError, "upload status: %v", err)
		return
	}
	adminJSON(w, http.StatusOK, UploadStatus{Offset: st.Size()})
}

// MaxPackBytes bounds one upload.
const MaxPackBytes = 64 << 30

func (h *Hub) handleUploadPart(w http.ResponseWriter, r *http.Request) {
	path, ok := h.uploadPath(r)
	if !ok {
		adminFail(w, http.StatusBadRequest, "an upload is named by the pack's SHA-256 (64 hex digits)")
		return
	}
	defer h.lockUpload(path)()
	off, err := strconv.ParseInt(r.Header.Get("Upload-Offset"), 10, 64)
	if err != nil || off < 0 {
		adminFail(w, http.StatusBadRequest, "Upload-Offset must be the byte offset this part starts at")
		return
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		adminFail(w, http.StatusInternalServerError, "upload: %v", err)
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		adminFail(w, http.StatusInternalServerError, "upload: %v", err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		adminFail(w, http.StatusInternalServerError, "upload: %v", err)
		return
	}
	if st.Size() != off {
		cur := st.Size()
		adminJSON(w, http.StatusConflict, AdminError{Error: fmt.Sprintf("the hub holds %d bytes of this upload, not %d; resume from there", cur, off), Offset: &cur})
		return
	}
	// Bytes written before a cut still count: the copy is flushed and its
	// length reported whatever happens to the request.
	n, copyErr := io.Copy(&offsetWriter{f: f, off: off}, http.MaxBytesReader(w, r.Body, MaxPackBytes-off))
	if err := f.Sync(); err != nil {
		adminFail(w, http.StatusInternalServerError, "upload: %v", err)
		return
	}
	if copyErr != nil {
		cur := off + n
		adminJSON(w, http.StatusBadRequest, AdminError{Error: fmt.Sprintf("upload interrupted: %v", copyErr), Offset: &cur})
		return
	}
	adminJSON(w, http.StatusOK, UploadStatus{Offset: off + n})
}

type offsetWriter struct {
	f   *os.File
	off int64
}

func (o *offsetWriter) Write(p []byte) (int, error) {
	n, err := o.f.WriteAt(p, o.off)
	o.off += int64(n)
	return n, err
}

// PublishResult is what a publish did.
type PublishResult struct {
	Course          string `json:"course"`
	Version         int64  `json:"version"`
	Title           string `json:"title"`
	Channel         string `json:"channel"`
	Files           int    `json:"files"`
	Bytes           int64  `json:"bytes"`
	NewBytes        int64  `json:"new_bytes"`
	AlreadyImported bool   `json:"already_published"`
	Change          int64  `json:"change"`
}

func (h *Hub) handlePublish(w http.ResponseWriter, r *http.Request) {
	path, ok := h.uploadPath(r)
	if !ok {
		adminFail(w, http.StatusBadRequest, "an upload is named by the pack's SHA-256 (64 hex digits)")
		return
	}
	channel := r.URL.Query().Get("channel")
	if channel == "" {
		adminFail(w, http.StatusBadRequest, "publish needs a channel: pass --channel NAME")
		return
	}
	defer h.lockUpload(path)()
	sum, err := fileSHA256(path)
	if errors.Is(err, os.ErrNotExist) {
		adminFail(w, http.StatusNotFound, "no upload %s on the hub; upload the pack first", r.PathValue("id"))
		return
	}
	if err != nil {
		adminFail(w, http.StatusInternalServerError, "publish: %v", err)
		return
	}
	if sum != strings.ToLower(r.PathValue("id")) {
		os.Remove(path)
		adminFail(w, http.StatusConflict, "the uploaded bytes do not hash to %s (the upload was damaged); upload again", r.PathValue("id"))
		return
	}
	// The import goes on if the client gives up waiting (a big pack on a
	// slow disk): running publish again then finds it already published.
	res, err := h.Publish(context.WithoutCancel(r.Context()), path, channel)
	if errors.Is(err, pack.ErrInvalid) {
		adminFail(w, http.StatusUnprocessableEntity, "%v", err)
		return
	}
	if err != nil {
		adminFail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	os.Remove(path)
	adminJSON(w, http.StatusOK, res)
}

// Publish imports a pack (folder or archive) into the hub's catalog and
// offers it to the boxes of channel.
func (h *Hub) Publish(ctx context.Context, path, channel string) (*PublishResult, error) {
	if channel == "" {
		return nil, errors.New("publish: no channel given; pass --channel NAME")
	}
	res, err := h.library.Import(ctx, path, nil)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	raw, err := h.catalog.Manifest(ctx, res.ID)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	seq, err := h.recordPublish(ctx, res.ID, res.Version, raw, channel)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	h.log.Info("course published", "course", res.ID, "version", res.Version, "channel", channel, "new_bytes", res.NewBytes)
	return &PublishResult{Course: res.ID, Version: res.Version, Title: res.Title, Channel: channel,
		Files: res.Files, Bytes: res.Bytes, NewBytes: res.NewBytes, AlreadyImported: res.AlreadyImported, Change: seq}, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	d := sha256.New()
	if _, err := io.Copy(d, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(d.Sum(nil)), nil
}

// TokenRequest asks for an enrolment token.
type TokenRequest struct {
	Site           string   `json:"site"`
	Channels       []string `json:"channels"`
	ExpiresSeconds int64    `json:"expires_seconds"`
}

// TokenResponse carries a new token.
type TokenResponse struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
	HubID   string    `json:"hub_id"`
}

func (h *Hub) handleTokenCreate(w http.ResponseWriter, r *http.Request) {
	var req TokenRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		adminFail(w, http.StatusBadRequest, "token request: %v", err)
		return
	}
	tok, exp, err := h.CreateToken(r.Context(), req.Site, req.Channels, time.Duration(req.ExpiresSeconds)*time.Second)
	if err != nil {
		adminFail(w, http.StatusBadRequest, "%v", err)
		return
	}
	adminJSON(w, http.StatusOK, TokenResponse{Token: tok, Expires: exp.UTC(), HubID: h.DeviceID()})
}

// Box is an enrolled box as `outpost hub boxes` lists it.
type Box struct {
	DeviceID   string     `json:"device_id"`
	Site       string     `json:"site"`
	Channels   []string   `json:"channels"`
	Hostname   string     `json:"hostname"`
	Enrolled   time.Time  `json:"enrolled"`
	LastSeen   time.Time  `json:"last_seen"`
	Software   string     `json:"software"`
	Cursor     int64      `json:"cursor"`
	LagChanges int64      `json:"lag_changes"` // changes on the hub the box has not applied
	LagSeconds int64      `json:"lag_seconds"` // age of the oldest of those
	Revoked    *time.Time `json:"revoked,omitempty"`
}

func (h *Hub) handleBoxes(w http.ResponseWriter, r *http.Request) {
	boxes, err := h.Boxes(r)
	if err != nil {
		adminFail(w, http.StatusInternalServerError, "list boxes: %v", err)
		return
	}
	adminJSON(w, http.StatusOK, boxes)
}

// Boxes lists enrolled boxes with their lag. Lag counts every hub change
// after the box's cursor, including ones outside its channels: it is how far
// behind the hub's log the box is, which is what an operator watches.
func (h *Hub) Boxes(r *http.Request) ([]Box, error) {
	ctx := r.Context()
	rows, err := h.db.QueryContext(ctx, `SELECT b.device_id, b.site, b.channels, b.hostname, b.enrolled_at, b.last_seen, b.version, b.cursor, b.revoked_at,
		(SELECT count(*) FROM hub_changes c WHERE c.seq > b.cursor),
		(SELECT min(at) FROM hub_changes c WHERE c.seq > b.cursor)
		FROM hub_boxes b ORDER BY b.site, b.hostname, b.device_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Box{}
	now := h.now()
	for rows.Next() {
		var b Box
		var channels string
		var enrolled, seen int64
		var revoked, oldest sql.NullInt64
		if err := rows.Scan(&b.DeviceID, &b.Site, &channels, &b.Hostname, &enrolled, &seen, &b.Software, &b.Cursor, &revoked, &b.LagChanges, &oldest); err != nil {
			return nil, err
		}
		json.Unmarshal([]byte(channels), &b.Channels)
		b.Enrolled, b.LastSeen = time.Unix(enrolled, 0).UTC(), time.Unix(seen, 0).UTC()
		if revoked.Valid {
			t := time.Unix(revoked.Int64, 0).UTC()
			b.Revoked = &t
		}
		if oldest.Valid {
			b.LagSeconds = max(0, now.Unix()-oldest.Int64)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

func (h *Hub) handleRevoke(w http.ResponseWriter, r *http.Request) {
	dev, err := protocol.DeviceIDFromString(r.PathValue("id"))
	if err != nil {
		adminFail(w, http.StatusBadRequest, "%q is not a device ID: %v", r.PathValue("id"), err)
		return
	}
	if err := h.Revoke(r.Context(), dev); errors.Is(err, errNoBox) {
		adminFail(w, http.StatusNotFound, "%v", err)
		return
	} else if err != nil {
		adminFail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	adminJSON(w, http.StatusOK, map[string]string{"revoked": dev.String()})
}

var errNoBox = errors.New("no such box")

// Revoke cuts a box off: its next request is refused, whatever it holds.
func (h *Hub) Revoke(ctx context.Context, dev protocol.DeviceID) error {
	res, err := h.db.ExecContext(ctx, `UPDATE hub_boxes SET revoked_at = ? WHERE device_id = ? AND revoked_at IS NULL`, h.now().Unix(), dev.String())
	if err != nil {
		return fmt.Errorf("revoke %s: %w", dev, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("revoke %s: %w: no enrolled, unrevoked box has this ID; see `outpost hub boxes`", dev, errNoBox)
	}
	h.log.Info("box revoked", "device", dev.String())
	return nil
}

// HubCourse is a published course as the admin API lists it.
type HubCourse struct {
	catalog.Course
	Channels []string `json:"channels"`
}

func (h *Hub) handleCourses(w http.ResponseWriter, r *http.Request) {
	courses, err := h.catalog.Courses(r.Context(), catalog.Filter{})
	if err != nil {
		adminFail(w, http.StatusInternalServerError, "list courses: %v", err)
		return
	}
	out := []HubCourse{}
	for _, c := range courses {
		hc := HubCourse{Course: c, Channels: []string{}}
		rows, err := h.db.QueryContext(r.Context(), `SELECT channel FROM hub_course_channels WHERE course_id = ? ORDER BY channel`, c.ID)
		if err != nil {
			adminFail(w, http.StatusInternalServerError, "list courses: %v", err)
			return
		}
		for rows.Next() {
			var ch string
			rows.Scan(&ch)
			hc.Channels = append(hc.Channels, ch)
		}
		rows.Close()
		out = append(out, hc)
	}
	adminJSON(w, http.StatusOK, out)
}

func (h *Hub) handleCourseRemove(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := h.Remove(r.Context(), id); errors.Is(err, catalog.ErrNotFound) {
		adminFail(w, http.StatusNotFound, "%v", err)
		return
	} else if err != nil {
		adminFail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	adminJSON(w, http.StatusOK, map[string]string{"removed": id})
}

// Remove unpublishes a course: boxes remove it on their next sync.
func (h *Hub) Remove(ctx context.Context, id string) error {
	if err := h.catalog.Remove(ctx, id); err != nil {
		return fmt.Errorf("remove course: %w", err)
	}
	if err := h.recordRemove(ctx, id); err != nil {
		return fmt.Errorf("remove course %s: %w", id, err)
	}
	return nil
}

// lockUpload serialises requests on one upload: a publish hashing the file
// while a part is still being written would find it damaged.
func (h *Hub) lockUpload(path string) (unlock func()) {
	h.uploadsMu.Lock()
	l, ok := h.uploads[path]
	if !ok {
		l = &sync.Mutex{}
		h.uploads[path] = l
	}
	h.uploadsMu.Unlock()
	l.Lock()
	return l.Unlock
}
