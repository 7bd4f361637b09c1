package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/syncthing/syncthing/lib/protocol"

	"outpost/appliance/identity"
	"outpost/sync/hub"
	"outpost/sync/wire"
)

// The admin verbs (hub token, hub boxes, hub revoke, content publish) talk
// to a hub's admin API over HTTPS. On the hub machine --data is enough: the
// admin token and the hub's device ID are read from the hub's data dir.
// From elsewhere, pass --hub, --admin-token and --hub-id.

const (
	defaultHubURL  = "https://127.0.0.1" + defaultHubListen
	adminTokenEnv  = "OUTPOST_ADMIN_TOKEN"
	hubDialTimeout = 20 * time.Second
	// hubHeaderTimeout is how long a request may wait for the hub's answer
	// once sent: publish imports the whole pack before answering.
	hubHeaderTimeout = 5 * time.Minute
)

// hubTransportHook, when set (by tests), wraps the admin client's
// transport, to count or cut what goes over the wire.
var hubTransportHook func(http.RoundTripper) http.RoundTripper

// hubFlags are the flags that say which hub to talk to and how.
type hubFlags struct {
	url        string
	adminToken string
	hubID      string
}

// addHubFlags registers --hub, --admin-token and --hub-id on cmd.
func addHubFlags(cmd *cobra.Command, f *hubFlags) {
	cmd.Flags().StringVar(&f.url, "hub", defaultHubURL, "the hub's URL, https://HOST:PORT")
	cmd.Flags().StringVar(&f.adminToken, "admin-token", "", "the hub's admin token (default: $"+adminTokenEnv+", else read from --data DIR/hub/admin-token)")
	cmd.Flags().StringVar(&f.hubID, "hub-id", "", "the hub's device ID, which its TLS certificate must match (default: read from --data DIR/identity)")
}

// hubClient calls one hub's admin API.
type hubClient struct {
	base     string // https://HOST:PORT, no trailing slash
	token    string
	tokenSrc string // where the token came from, for error messages
	pin      protocol.DeviceID
	pinSrc   string
	http     *http.Client
}

// hubClient builds the admin client the flags describe.
func (g *globals) hubClient(f *hubFlags) (*hubClient, error) {
	base, err := normaliseHubURL(f.url)
	if err != nil {
		return nil, err
	}
	c := &hubClient{base: base}
	if c.token, c.tokenSrc, err = g.findAdminToken(f.adminToken); err != nil {
		return nil, err
	}
	if c.pin, c.pinSrc, err = g.findHubID(f.hubID); err != nil {
		return nil, err
	}
	var rt http.RoundTripper = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: hubDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       wire.AdminTLS(c.pin),
		TLSHandshakeTimeout:   hubDialTimeout,
		ResponseHeaderTimeout: hubHeaderTimeout,
		ExpectContinueTimeout: 2 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
	}
	if hubTransportHook != nil {
		rt = hubTransportHook(rt)
	}
	// No overall timeout: an upload part may take minutes on a slow link,
	// and the command's context (Ctrl-C) ends any request.
	c.http = &http.Client{Transport: rt}
	return c, nil
}

func normaliseHubURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("no hub given; pass --hub https://HOST:PORT")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("--hub %q: %w", s, err)
	}
	if u.Scheme != "https" {
		return "", fmt.Errorf("--hub %q: the hub's admin API is HTTPS only; use https://HOST:PORT", s)
	}
	if u.Host == "" {
		return "", fmt.Errorf("--hub %q has no host; use https://HOST:PORT", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("--hub %q: give only https://HOST:PORT", s)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// findAdminToken returns the admin token and where it came from: the flag,
// the environment, or the hub's data dir (read only: a client never makes
// a token).
func (g *globals) findAdminToken(flag string) (tok, src string, err error) {
	if t := strings.TrimSpace(flag); t != "" {
		return t, "--admin-token", nil
	}
	if t := strings.TrimSpace(os.Getenv(adminTokenEnv)); t != "" {
		return t, "$" + adminTokenEnv, nil
	}
	path := filepath.Join(g.data, "hub", "admin-token")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", "", fmt.Errorf("no admin token: pass --admin-token TOKEN or set %s (the hub keeps it in DATA/hub/admin-token), or on the hub machine pass --data with the hub's data directory (%s does not exist)", adminTokenEnv, path)
	}
	if err != nil {
		return "", "", fmt.Errorf("read the admin token: %w; run as the user the hub runs as, or pass --admin-token TOKEN", err)
	}
	if t := strings.TrimSpace(string(b)); t != "" {
		return t, path, nil
	}
	return "", "", fmt.Errorf("no admin token: %s is empty; start the hub once to create it, or pass --admin-token TOKEN", path)
}

// findHubID returns the device ID to pin and where it came from.
func (g *globals) findHubID(flag string) (protocol.DeviceID, string, error) {
	if s := strings.TrimSpace(flag); s != "" {
		id, err := protocol.DeviceIDFromString(s)
		if err != nil {
			return protocol.EmptyDeviceID, "", fmt.Errorf("--hub-id %q is not a device ID: %w", s, err)
		}
		return id, "--hub-id", nil
	}
	dir := filepath.Join(g.data, "identity")
	id, err := identity.Load(dir)
	if errors.Is(err, os.ErrNotExist) {
		return protocol.EmptyDeviceID, "", fmt.Errorf("the hub's device ID is unknown: pass --hub-id DEVICE-ID (the hub logs it as hub_id when it starts; `outpost status --data DIR` on the hub prints it), or on the hub machine pass --data with the hub's data directory (%s holds no identity)", dir)
	}
	if err != nil {
		return protocol.EmptyDeviceID, "", fmt.Errorf("read the hub's device ID: %w; or pass --hub-id DEVICE-ID", err)
	}
	return id.DeviceID, dir, nil
}

// hubAPIError is a failed admin request: the hub's status and message.
type hubAPIError struct {
	Status int
	Msg    string
	Offset *int64 // where the hub's copy of an upload ends, when it says
}

// Error is the hub's message, which the hub chose (and which may quote a
// pack author's file names): made safe for a terminal.
func (e *hubAPIError) Error() string { return "hub: " + terminalSafe(e.Msg) }

// retryable says whether repeating the request may succeed.
func (e *hubAPIError) retryable() bool {
	return e.Status >= 500 || e.Status == http.StatusConflict || e.Status == http.StatusRequestTimeout ||
		e.Status == http.StatusTooManyRequests || e.Offset != nil
}

// do sends one request and decodes a 2xx JSON answer into out (if not nil).
func (c *hubClient) do(ctx context.Context, method, path string, body io.Reader, size int64, hdr http.Header, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("hub request: %w", err)
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "outpost/"+version)
	resp, err := c.http.Do(req)
	if err != nil {
		return c.explainTransport(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("read the hub's answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return c.apiError(resp, raw)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("the hub's answer to %s %s is not what this tool expects (%v); is --hub a hub of the same version?", method, path, err)
	}
	return nil
}

func (c *hubClient) getJSON(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, 0, nil, out)
}

func (c *hubClient) postJSON(ctx context.Context, path string, in, out any) error {
	var body io.Reader
	var size int64
	hdr := http.Header{}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("hub request: %w", err)
		}
		body, size = bytes.NewReader(b), int64(len(b))
		hdr.Set("Content-Type", "application/json")
	}
	return c.do(ctx, http.MethodPost, path, body, size, hdr, out)
}

func (c *hubClient) apiError(resp *http.Response, raw []byte) error {
	var ae hub.AdminError
	if json.Unmarshal(raw, &ae) != nil || ae.Error == "" {
		snippet := strings.TrimSpace(string(raw))
		if len(snippet) > 200 {
			snippet = snippet[:200] + "…"
		}
		return &hubAPIError{Status: resp.StatusCode, Msg: fmt.Sprintf("%s answered %s (%q); is --hub the hub's admin address?", c.base, resp.Status, snippet)}
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return &hubAPIError{Status: resp.StatusCode, Msg: fmt.Sprintf("the hub refused the admin token from %s: it is wrong or missing. The token is in the hub's DATA/hub/admin-token: on the hub pass --data DATA, elsewhere pass --admin-token TOKEN or set %s", c.tokenSrc, adminTokenEnv)}
	}
	return &hubAPIError{Status: resp.StatusCode, Msg: ae.Error, Offset: ae.Offset}
}

// explainTransport turns a failed round trip into an error that says what
// to check.
func (c *hubClient) explainTransport(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	if errors.Is(err, wire.ErrWrongPeer) {
		hint := ""
		if c.pinSrc != "--hub-id" {
			hint = fmt.Sprintf(" (the pinned ID was read from %s; pass --hub-id with the hub's ID, or --data with the hub's own data directory)", c.pinSrc)
		}
		return fmt.Errorf("the server at %s is not the pinned hub%s: %w", c.base, hint, err)
	}
	return fmt.Errorf("reach the hub at %s: %w", c.base, err)
}
