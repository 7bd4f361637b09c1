package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/syncthing/syncthing/lib/protocol"

	"outpost/appliance/identity"
	"outpost/sync/wire"
)

// stallTimeout cancels a request when no byte arrives for this long: on a
// thin link a block stream may take minutes, but never silence this long.
const stallTimeout = 90 * time.Second

func newHTTPClient(id *identity.Identity, hub protocol.DeviceID) *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:       wire.ClientTLS(id.Cert, hub),
		DialContext:           (&net.Dialer{Timeout: 20 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute, // a first patch is computed before its header
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   2,
		// Bodies are compressed by the protocol itself.
		DisableCompression: true,
	}}
}

// explainNetErr adds what to do to the network failures a box sees.
func explainNetErr(err error) error {
	var opErr *net.OpError
	switch {
	case errors.Is(err, wire.ErrWrongPeer):
		return err
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w (the hub is not listening there; check --upstream and that the hub runs)", err)
	case errors.As(err, &opErr) && opErr.Timeout():
		return fmt.Errorf("%w (the link is down or very slow; sync retries by itself)", err)
	}
	return err
}

// call makes one sync request and decodes a JSON answer into out.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := wire.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sr := newStallReader(resp.Body, cancel)
	defer sr.stop()
	lr := &linkReader{r: sr}
	if err := wire.Decode(lr, out); err != nil {
		if lr.err != nil {
			// The link failed under the answer (a cut, a stall): the
			// message itself may be fine, so this is worth retrying,
			// and says so, rather than "malformed".
			return fmt.Errorf("%s %s: %w: %w", method, path, wire.ErrTruncated, explainNetErr(lr.err))
		}
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// linkReader remembers the first error reading from the connection, so a
// decoding failure can be told apart from the link failing under it.
type linkReader struct {
	r   io.Reader
	err error
}

func (l *linkReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if err != nil && err != io.EOF && l.err == nil {
		l.err = err
	}
	return n, err
}

// do sends a request; a non-2xx answer becomes a *wire.Error.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.link.URL+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", wire.ContentTypeJSON)
		req.Header.Set("Content-Encoding", "zstd")
	}
	req.Header.Set(wire.HeaderSoftware, c.opts.Software)
	req.Header.Set(wire.HeaderFeatures, wire.FeatureBusy)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, explainNetErr(err))
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, fmt.Errorf("%s %s: %w", method, path, wire.ReadError(resp))
	}
	return resp, nil
}

// stallReader cancels its request when reads stop making progress.
type stallReader struct {
	r      io.Reader
	timer  *time.Timer
	cancel context.CancelFunc
	once   sync.Once
}

func newStallReader(r io.Reader, cancel context.CancelFunc) *stallReader {
	s := &stallReader{r: r, cancel: cancel}
	s.timer = time.AfterFunc(stallTimeout, cancel)
	return s
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.timer.Reset(stallTimeout)
	}
	return n, err
}

func (s *stallReader) stop() { s.once.Do(func() { s.timer.Stop() }) }
