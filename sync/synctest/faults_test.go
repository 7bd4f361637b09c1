package synctest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/syncthing/syncthing/lib/protocol"

	"outpost/appliance/identity"
	"outpost/sync/hub"
	"outpost/sync/upstream"
	"outpost/sync/wire"
)

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != code {
		t.Fatalf("error %v, want code %s", err, code)
	}
	if we.Message == "" {
		t.Fatal("the error carries no message for people")
	}
}

func TestEnrolmentFaults(t *testing.T) {
	var skew atomic.Int64
	h, err := StartHubClock(testCtx(t), t.TempDir(), "127.0.0.1:0", nil, nil, func() time.Time {
		return time.Now().Add(time.Duration(skew.Load()))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	ctx := testCtx(t)
	publish(t, h, "c", 1, Course(5, 0, 0, 1, 200<<10, 2), "science")

	tok, _, err := h.Hub.CreateToken(ctx, "school", []string{"science"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b, err := StartBox(ctx, t.TempDir(), h.URL(), tok, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// The same box enrolling again with its token is harmless (the first
	// answer may have been lost); another box with it is refused.
	if _, err := upstream.Enrol(ctx, t.TempDir(), b.Node.Identity, h.URL(), tok, "", "test"); err != nil {
		t.Fatalf("re-enrol with the same identity: %v", err)
	}
	_, err = StartBox(ctx, t.TempDir(), h.URL(), tok, nil, nil)
	wantCode(t, err, wire.CodeTokenUsed)

	// Expiry is judged by the hub's clock alone.
	tok2, _, err := h.Hub.CreateToken(ctx, "school", []string{"science"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	skew.Store(int64(2 * time.Hour))
	_, err = StartBox(ctx, t.TempDir(), h.URL(), tok2, nil, nil)
	wantCode(t, err, wire.CodeTokenExpired)
	skew.Store(0)

	// A made-up token.
	secret, _ := wire.NewTokenSecret()
	_, err = StartBox(ctx, t.TempDir(), h.URL(), wire.FormatToken(secret, h.Node.Identity.DeviceID), nil, nil)
	wantCode(t, err, wire.CodeTokenUnknown)

	// A token naming another hub: the box refuses to talk to this one.
	_, err = StartBox(ctx, t.TempDir(), h.URL(), wire.FormatToken(secret, protocol.NewDeviceID([]byte("someone else"))), nil, nil)
	if !errors.Is(err, wire.ErrWrongPeer) {
		t.Fatalf("enrol with a token for another hub: %v", err)
	}

	// Revoked: the next pass is refused with a message saying so.
	if err := b.Client.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Hub.Revoke(ctx, b.Node.Identity.DeviceID); err != nil {
		t.Fatal(err)
	}
	err = b.Client.Pass(ctx)
	wantCode(t, err, wire.CodeRevoked)
	st := b.Client.Status()
	if st.State != upstream.StateError || !strings.Contains(st.LastError, "revoked") {
		t.Fatalf("status after revocation: %+v", st)
	}
}

func TestUnknownDevice(t *testing.T) {
	h := startHub(t)
	b := enrolBox(t, h.URL(), h, "science")
	// The box's link, used with a certificate the hub has never seen.
	link, err := upstream.LoadLink(b.Node.Config.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	o := b.Node.SyncOptions()
	o.Identity = freshIdentity(t, 0)
	c := upstream.New(o, link)
	wantCode(t, c.Pass(testCtx(t)), wire.CodeUnknownDevice)
}

func mustToken(t *testing.T, h *Hub) string {
	tok, _, err := h.Hub.CreateToken(testCtx(t), "school", []string{"science"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestClockSkew: a box whose clock is years off (certificate not yet
// valid, or long expired, by anyone's clock) still enrols and syncs: trust
// is the pinned device ID, never a date.
func TestClockSkew(t *testing.T) {
	h := startHub(t)
	files := Course(6, 1, 600<<10, 0, 0, 3)
	publish(t, h, "skew", 1, files, "science")
	for _, skew := range []time.Duration{10 * 365 * 24 * time.Hour, -30 * 365 * 24 * time.Hour} {
		dir := t.TempDir()
		writeIdentity(t, filepath.Join(dir, "identity"), skew)
		b, err := StartBox(testCtx(t), dir, h.URL(), mustToken(t, h), nil, nil)
		if err != nil {
			t.Fatalf("skew %v: %v", skew, err)
		}
		if err := b.Client.Pass(testCtx(t)); err != nil {
			t.Fatalf("skew %v: %v", skew, err)
		}
		assertHolds(t, b, "skew", 1, files)
		b.Close()
	}
}

func freshIdentity(t *testing.T, skew time.Duration) *identityT {
	dir := t.TempDir()
	writeIdentity(t, dir, skew)
	id, err := loadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// writeIdentity writes a key and a certificate made by a box whose clock
// is off by skew: valid from then for one day only.
func writeIdentity(t *testing.T, dir string, skew time.Duration) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	then := time.Now().Add(skew)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "outpost"},
		NotBefore: then, NotAfter: then.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func TestBadBlocksAndStreams(t *testing.T) {
	var mu sync.Mutex
	corrupted, mangled, aborted := map[string]bool{}, map[string]bool{}, map[string]bool{}
	once := func(m map[string]bool, file string, idx int, pick func(int) bool) bool {
		mu.Lock()
		defer mu.Unlock()
		k := blockKey(file, idx)
		if m[k] || !pick(idx) {
			return false
		}
		m[k] = true
		return true
	}
	hooks := &hub.Hooks{
		CorruptBlock: func(f string, i int) bool { return once(corrupted, f, i, func(i int) bool { return i%7 == 3 }) },
		MangleFrame:  func(f string, i int) bool { return once(mangled, f, i, func(i int) bool { return i == 0 }) },
		AbortBefore:  func(f string, i int) bool { return once(aborted, f, i, func(i int) bool { return i == 5 }) },
	}
	h, err := StartHub(testCtx(t), t.TempDir(), "127.0.0.1:0", hooks, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop()
	files := Course(7, 2, 1<<20, 1, 300<<10, 12) // HTML pages compress: their frames are zstd
	publish(t, h, "faults", 1, files, "science")
	b := enrolBox(t, h.URL(), h, "science")
	var fetched fetchCounter
	c, err := b.Through(h.URL(), fetched.hooks(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Pass(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	assertHolds(t, b, "faults", 1, files)
	st := c.Status()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("corrupted %d, mangled %d, aborted %d; status %+v", len(corrupted), len(mangled), len(aborted), st.Totals)
	// A corrupt block is counted when the box reads it; one sent just
	// before a broken frame or an aborted connection may never be read,
	// and is simply fetched again.
	if st.Totals.HashMismatches < 1 || st.Totals.HashMismatches > int64(len(corrupted)) {
		t.Fatalf("%d blocks corrupted, %d mismatches counted", len(corrupted), st.Totals.HashMismatches)
	}
	if st.Totals.BadStreams < 2 || len(aborted) == 0 {
		t.Fatalf("%d frames mangled and %d streams aborted, %d bad streams counted", len(mangled), len(aborted), st.Totals.BadStreams)
	}
	for hash, n := range fetched.counts() {
		if n != 1 {
			t.Fatalf("block %s verified %d times", hash, n)
		}
	}
}

// TestHubRestartMidSync stops the hub while a box is fetching and starts
// it again on the same address: the box's pass carries on.
func TestHubRestartMidSync(t *testing.T) {
	dir := t.TempDir()
	h, err := StartHub(testCtx(t), dir, "127.0.0.1:0", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	files := Course(9, 2, 2<<20, 0, 0, 4)
	publish(t, h, "restart", 1, files, "science")
	b := enrolBox(t, h.URL(), h, "science")
	addr := h.Addr
	restarted := make(chan *Hub, 1)
	var fired atomic.Bool
	var fetched fetchCounter
	c, err := b.Through(h.URL(), fetched.hooks(func(_ []byte, source string) {
		if source != "fetched" || fired.Swap(true) {
			return
		}
		// From inside the box's fetch: the hub goes away and comes back
		// while this batch is still being read.
		go func() {
			h.Stop()
			nh, err := StartHub(testCtx(t), dir, addr, nil, nil)
			if err != nil {
				t.Error(err)
			}
			restarted <- nh
		}()
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	passUntilDone(t, testCtx(t), c, 3)
	nh := <-restarted
	defer nh.Stop()
	assertHolds(t, b, "restart", 1, files)
	for hash, n := range fetched.counts() {
		if n != 1 {
			t.Fatalf("block %s verified %d times", hash, n)
		}
	}
}

type identityT = identity.Identity

func loadIdentity(dir string) (*identity.Identity, error) { return identity.Load(dir) }

// TestFilesOutsideTheBoxsChannels: knowing a file's hash is not enough; a
// box only gets files of courses in its own channels.
func TestFilesOutsideTheBoxsChannels(t *testing.T) {
	h := startHub(t)
	secret := Course(12, 0, 0, 1, 200<<10, 1)
	publish(t, h, "staff-only", 1, secret, "staff")
	publish(t, h, "open", 1, Course(13, 0, 0, 1, 100<<10, 1), "science")
	b := enrolBox(t, h.URL(), h, "science")
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: wire.ClientTLS(b.Node.Identity.Cert, h.Node.Identity.DeviceID)}}
	defer hc.CloseIdleConnections()
	ask := func(path string, req any) *http.Response {
		body, err := wire.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Post(h.URL()+path, wire.ContentTypeJSON, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := ask(wire.PathFiles, &wire.FilesRequest{Files: []string{sha256hex(secret[0].Data)}})
	err := wire.ReadError(resp)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("block list of another channel's file: %s", resp.Status)
	}
	wantCode(t, err, wire.CodeNotFound)

	resp = ask(wire.PathBlocks, &wire.BlocksRequest{Want: []wire.WantBlocks{{File: sha256hex(secret[0].Data), Indexes: []int{0}}}})
	defer resp.Body.Close()
	br, err := wire.NewBlockReader(resp.Body, []int{128 << 10})
	if err != nil {
		t.Fatal(err)
	}
	blk, err := br.Next()
	if err != nil || !blk.Missing {
		t.Fatalf("a block of another channel's file: %+v %v", blk, err)
	}
}
