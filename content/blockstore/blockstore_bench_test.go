package blockstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/syncthing/syncthing/lib/protocol"
	"github.com/syncthing/syncthing/lib/scanner"

	"outpost/appliance/database/databasetest"
)

// benchSize is one large media file's worth: enough for the 128 KiB-block
// regime syncthing uses at this size, small enough to stay in cache.
const benchSize = 64 << 20

func benchData(b *testing.B) []byte {
	b.Helper()
	buf := make([]byte, benchSize)
	var seed [32]byte
	rand.NewChaCha8(seed).Read(buf)
	return buf
}

// BenchmarkHashCopy is import's hashing path without the disk: the whole-file
// SHA-256 and the block map, as Put computes them, into io.Discard.
// scripts/bench.sh compares its MB/s with sha256sum and openssl.
func BenchmarkHashCopy(b *testing.B) {
	buf := benchData(b)
	ctx := context.Background()
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := hashCopy(ctx, io.Discard, bytes.NewReader(buf), benchSize, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// The benchmarks below take hashCopy apart, so a slow figure can be pinned
// on one of its pieces.

// BenchmarkSHA256 is the floor: crypto/sha256 alone over the same bytes.
func BenchmarkSHA256(b *testing.B) {
	buf := benchData(b)
	b.SetBytes(benchSize)
	for b.Loop() {
		sha256.Sum256(buf)
	}
}

// BenchmarkBlockHashes is syncthing's block hasher alone, as hashCopy runs
// it (with weak hashes), reading the bytes directly rather than through a
// pipe.
func BenchmarkBlockHashes(b *testing.B) {
	buf := benchData(b)
	ctx := context.Background()
	bs := protocol.BlockSize(benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		if _, err := scanner.Blocks(ctx, bytes.NewReader(buf), bs, -1, nil, true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBlockHashesStrongOnly is the block hasher without the adler32
// weak hashes, to show what they cost.
func BenchmarkBlockHashesStrongOnly(b *testing.B) {
	buf := benchData(b)
	ctx := context.Background()
	bs := protocol.BlockSize(benchSize)
	b.SetBytes(benchSize)
	for b.Loop() {
		if _, err := scanner.Blocks(ctx, bytes.NewReader(buf), bs, -1, nil, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPut is a whole Put into a store on the test's temporary disk:
// hashing, writing, fsync, rename and the block-map transaction. Each
// iteration stores different bytes (the first 8 are the iteration number),
// since Put skips content the store already holds.
func BenchmarkPut(b *testing.B) {
	buf := benchData(b)
	ctx := context.Background()
	dir := b.TempDir()
	db := databasetest.Open(b)
	s, err := Open(filepath.Join(dir, "store"), db)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	var i uint64
	for b.Loop() {
		i++
		for j := range 8 {
			buf[j] = byte(i >> (8 * j))
		}
		b.StopTimer()
		sum := sha256.Sum256(buf)
		b.StartTimer()
		if _, err := s.Put(ctx, bytes.NewReader(buf), Expect{SHA256: hex.EncodeToString(sum[:]), Size: benchSize}, nil); err != nil {
			b.Fatal(err)
		}
	}
}
