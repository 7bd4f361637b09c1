package blockstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/syncthing/syncthing/lib/protocol"

	"outpost/appliance/database/databasetest"
	"outpost/content/blockstore"
)

func newStore(t *testing.T) *blockstore.Store {
	t.Helper()
	dir := t.TempDir()
	db := databasetest.Open(t)
	s, err := blockstore.Open(filepath.Join(dir, "store"), db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

func TestPutStoresWholeFileAndBlockMap(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := randomBytes(1, 3*protocol.MinBlockSize+777)
	obj, err := s.Put(ctx, bytes.NewReader(data), blockstore.Expect{SHA256: sum(data), Size: int64(len(data))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(s.Path(obj.SHA256))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stored bytes differ (err %v)", err)
	}
	blocks, err := s.Blocks(ctx, obj.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 4 {
		t.Fatalf("want 4 blocks, got %d", len(blocks))
	}
	for _, b := range blocks {
		h := sha256.Sum256(data[b.Offset : b.Offset+int64(b.Size)])
		if !bytes.Equal(h[:], b.Hash) {
			t.Fatalf("block at %d: hash mismatch", b.Offset)
		}
		loc, err := s.FindBlock(ctx, b.Hash)
		if err != nil || loc.SHA256 != obj.SHA256 || loc.Offset != b.Offset {
			t.Fatalf("block map lookup at %d: %+v %v", b.Offset, loc, err)
		}
	}
	// A second Put of known content must not read the reader at all.
	if _, err := s.Put(ctx, errReader{}, blockstore.Expect{SHA256: obj.SHA256, Size: obj.Size}, nil); err != nil {
		t.Fatalf("dedup put read its input: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("must not be read") }

func TestPutRejectsLies(t *testing.T) {
	ctx := context.Background()
	data := randomBytes(2, 5000)
	for name, want := range map[string]blockstore.Expect{
		"hash":  {SHA256: sum([]byte("other")), Size: int64(len(data))},
		"short": {SHA256: sum(data), Size: int64(len(data)) + 10},
		"long":  {SHA256: sum(data), Size: int64(len(data)) - 10},
	} {
		t.Run(name, func(t *testing.T) {
			s := newStore(t)
			_, err := s.Put(ctx, bytes.NewReader(data), want, nil)
			if !errors.Is(err, blockstore.ErrMismatch) {
				t.Fatalf("want ErrMismatch, got %v", err)
			}
			all, _ := s.List(ctx)
			tmp, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp"))
			if len(all) != 0 || len(tmp) != 0 {
				t.Fatalf("a rejected put left %d objects and %d temp files", len(all), len(tmp))
			}
		})
	}
}

func TestVerifyQuarantinesCorruptObject(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	data := randomBytes(3, 200_000)
	obj, err := s.Put(ctx, bytes.NewReader(data), blockstore.Expect{Size: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := blockstore.Stored{SHA256: obj.SHA256, Size: obj.Size}
	if err := s.Verify(ctx, st, nil); err != nil {
		t.Fatalf("fresh object fails verify: %v", err)
	}
	// Flip one byte on disk, as a failing SD card would.
	p := s.Path(obj.SHA256)
	os.Chmod(p, 0o644)
	data[1234] ^= 0xff
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx, st, nil); !errors.Is(err, blockstore.ErrMismatch) {
		t.Fatalf("want ErrMismatch, got %v", err)
	}
	if err := s.Quarantine(ctx, obj.SHA256, "test"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(ctx, obj.SHA256); ok {
		t.Fatal("quarantined object still indexed")
	}
	q, _ := s.Quarantined(ctx)
	if len(q) != 1 || q[0].SHA256 != obj.SHA256 {
		t.Fatalf("quarantine list: %+v", q)
	}
	if _, err := os.Stat(q[0].Path); err != nil {
		t.Fatalf("quarantined file not kept: %v", err)
	}
}

func TestSweepDiskRemovesLeftovers(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	kept, err := s.Put(ctx, bytes.NewReader([]byte("kept")), blockstore.Expect{Size: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// What a crash between write and index leaves: a temp file and an
	// object file with no row.
	os.WriteFile(filepath.Join(s.Dir(), "tmp", "put-123"), []byte("partial"), 0o644)
	orphan := sum([]byte("orphan"))
	os.MkdirAll(filepath.Dir(s.Path(orphan)), 0o755)
	os.WriteFile(s.Path(orphan), []byte("orphan"), 0o644)

	n, b, err := s.SweepDisk(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || b != int64(len("partial")+len("orphan")) {
		t.Fatalf("swept %d files, %d bytes; want 2 files, 13 bytes", n, b)
	}
	if _, err := os.Stat(s.Path(kept.SHA256)); err != nil {
		t.Fatalf("sweep removed an indexed object: %v", err)
	}
}

func TestEmptyFile(t *testing.T) {
	s := newStore(t)
	obj, err := s.Put(context.Background(), bytes.NewReader(nil), blockstore.Expect{SHA256: sum(nil), Size: 0}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if obj.Size != 0 {
		t.Fatalf("size %d", obj.Size)
	}
}
