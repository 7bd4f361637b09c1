// Package upstream is the box's side of sync: enrolment with the hub, and
// the sync loop that asks for changes, assembles every new file from blocks
// the box already holds, hub-computed patches and fetched blocks, and
// switches each course version in only once all its files are verified.
package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/syncthing/syncthing/lib/protocol"

	"outpost/appliance/atomicfile"
	"outpost/appliance/identity"
	"outpost/sync/wire"
)

// LinkFile is where an enrolled box keeps its link to the hub.
const LinkFile = "upstream.json"

// Link is what enrolment established: where the hub is, which hub it is
// (pinned), and where the box belongs.
type Link struct {
	URL      string   `json:"url"`
	HubID    string   `json:"hub_id"`
	DeviceID string   `json:"device_id"`
	Site     string   `json:"site"`
	Channels []string `json:"channels"`
	// Enrolled tells enrolments apart: a box enrolled again (another
	// site, other channels) must ask for every change from the start.
	Enrolled time.Time `json:"enrolled"`
}

// generation names the enrolment a cursor belongs to.
func (l *Link) generation() string { return l.HubID + "@" + l.Enrolled.UTC().Format(time.RFC3339Nano) }

// ErrNotEnrolled is returned when the box has no link yet.
var ErrNotEnrolled = errors.New("this box is not enrolled with a hub; run `outpost serve --upstream URL --enrol-file FILE` with the token `outpost hub token create` printed in FILE")

// LoadLink reads DATA/upstream.json.
func LoadLink(dataDir string) (*Link, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, LinkFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotEnrolled
	}
	if err != nil {
		return nil, fmt.Errorf("read upstream link: %w", err)
	}
	var l Link
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("read upstream link %s: %w; enrol again to rewrite it", filepath.Join(dataDir, LinkFile), err)
	}
	if _, err := protocol.DeviceIDFromString(l.HubID); err != nil {
		return nil, fmt.Errorf("read upstream link: hub ID: %w", err)
	}
	return &l, nil
}

func (l *Link) hubID() protocol.DeviceID {
	id, _ := protocol.DeviceIDFromString(l.HubID)
	return id
}

func saveLink(dataDir string, l *Link) error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dataDir, LinkFile), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save upstream link: %w", err)
	}
	return nil
}

// NormaliseURL is how a hub address given by a person is stored: it
// accepts "host:port" or a full https URL.
func NormaliseURL(raw string) (string, error) { return normaliseURL(raw) }

func normaliseURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("upstream %q is not a URL; give it as https://HOST:PORT", raw)
	}
	if u.Scheme != "https" {
		return "", fmt.Errorf("upstream %q: sync uses mutual TLS, so the URL must start with https://", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// Enrol joins the hub at hubURL with a one-time token and saves the link.
// hubID pins the hub when the token does not carry its ID (or overrides a
// mismatch: it must then agree with the token's). A box already enrolled
// with the same hub keeps its link and does not spend the token again.
func Enrol(ctx context.Context, dataDir string, id *identity.Identity, hubURL, token, hubID, software string) (*Link, error) {
	u, err := normaliseURL(hubURL)
	if err != nil {
		return nil, fmt.Errorf("enrol: %w", err)
	}
	secret, tokHub, err := wire.ParseToken(token)
	if err != nil {
		return nil, fmt.Errorf("enrol: %w", err)
	}
	pin := tokHub
	if hubID != "" {
		p, err := protocol.DeviceIDFromString(hubID)
		if err != nil {
			return nil, fmt.Errorf("enrol: --hub-id: %w", err)
		}
		if tokHub != protocol.EmptyDeviceID && tokHub != p {
			return nil, fmt.Errorf("enrol: the token is for hub %s but --hub-id says %s; use the token that hub printed", tokHub, p)
		}
		pin = p
	}
	if pin == protocol.EmptyDeviceID {
		return nil, errors.New("enrol: the token does not name its hub; pass --hub-id (printed by `outpost hub token create`)")
	}
	if old, err := LoadLink(dataDir); err == nil && old.HubID == pin.String() && old.URL == u {
		return old, nil
	}
	host, _ := os.Hostname()
	body, err := wire.Marshal(&wire.EnrolRequest{Token: secret, Hostname: host})
	if err != nil {
		return nil, fmt.Errorf("enrol: %w", err)
	}
	hc := newHTTPClient(id, pin)
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u+wire.PathEnrol, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("enrol: %w", err)
	}
	req.Header.Set("Content-Type", wire.ContentTypeJSON)
	req.Header.Set("Content-Encoding", "zstd")
	req.Header.Set(wire.HeaderSoftware, software)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("enrol with %s: %w", u, explainNetErr(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("enrol with %s: %w", u, wire.ReadError(resp))
	}
	var er wire.EnrolResponse
	if err := wire.Decode(resp.Body, &er); err != nil {
		return nil, fmt.Errorf("enrol with %s: %w", u, err)
	}
	link := &Link{URL: u, HubID: pin.String(), DeviceID: id.DeviceID.String(), Site: er.Site, Channels: er.Channels, Enrolled: time.Now()}
	if err := saveLink(dataDir, link); err != nil {
		return nil, err
	}
	return link, nil
}

// SetURL moves an enrolled box's link to the hub's new address, keeping
// everything enrolment established: the pinned hub ID (every connection
// still checks it), the site, the channels, and so the cursor. With check,
// it first connects to the new address and refuses it unless the hub there
// is the pinned one (wire.ErrWrongPeer) or when nothing answers; without,
// the pin is only checked by the next pass. A running daemon uses the new
// address from its next pass.
func SetURL(ctx context.Context, dataDir string, id *identity.Identity, rawURL string, check bool) (*Link, error) {
	link, err := LoadLink(dataDir)
	if err != nil {
		return nil, err
	}
	u, err := normaliseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("set upstream: %w", err)
	}
	if check {
		if err := checkHub(ctx, id, link.hubID(), u); err != nil {
			return nil, err
		}
	}
	l := *link
	l.URL = u
	if err := saveLink(dataDir, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// checkHub connects to the hub at u and completes a TLS handshake, which
// fails unless the hub there holds the pinned identity.
func checkHub(ctx context.Context, id *identity.Identity, pin protocol.DeviceID, u string) error {
	pu, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("set upstream: %w", err)
	}
	host := pu.Host
	if pu.Port() == "" {
		host = net.JoinHostPort(pu.Hostname(), "443")
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: wire.ClientTLS(id.Cert, pin)}
	conn, err := d.DialContext(ctx, "tcp", host)
	if errors.Is(err, wire.ErrWrongPeer) {
		return fmt.Errorf("set upstream: the hub at %s is not the hub this box enrolled with: %w; a box only moves to its own hub's new address (enrol again with a token from the other hub to change hubs)", u, err)
	}
	if err != nil {
		return fmt.Errorf("set upstream: cannot reach %s to check it is this box's hub: %w; try again when it is reachable, or pass --no-check (the next sync still refuses any other hub)", u, explainNetErr(err))
	}
	return conn.Close()
}
