package database

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenMigratesAndReopens(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "outpost.db")
	db, err := Open(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	var v int
	db.QueryRow("PRAGMA user_version").Scan(&v)
	if v != SchemaVersion() || v == 0 {
		t.Fatalf("user_version %d, want %d", v, SchemaVersion())
	}
	var mode string
	db.QueryRow("PRAGMA journal_mode").Scan(&mode)
	if mode != "wal" {
		t.Fatalf("journal_mode %q, want wal", mode)
	}
	// Every pooled connection must carry the pragmas, not just the first.
	conns := make([]interface{ Close() error }, 0, 3)
	for range 3 {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var fk, sync int
		c.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk)
		c.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync)
		if fk != 1 || sync != 2 {
			t.Fatalf("connection has foreign_keys=%d synchronous=%d, want 1 and 2 (FULL)", fk, sync)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Close()
	}
	db.Close()

	// Reopening applies nothing twice.
	db, err = Open(ctx, file)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	// A database from a newer binary is refused with advice, not mangled.
	db.Exec("PRAGMA user_version = 999")
	db.Close()
	if _, err := Open(ctx, file); err == nil || !strings.Contains(err.Error(), "upgrade outpost") {
		t.Fatalf("opening a newer schema: %v", err)
	}
}

func TestMigrationsAreNumberedWithoutGaps(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.version != i+1 {
			t.Fatalf("%s has number %d, want %d", m.name, m.version, i+1)
		}
	}
}

// TestUpgradeFromEachVersion: a box that stopped at any earlier schema
// opens with this binary and reaches the latest one.
func TestUpgradeFromEachVersion(t *testing.T) {
	ctx := context.Background()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	for stop := 1; stop < len(ms); stop++ {
		file := filepath.Join(t.TempDir(), "old.db")
		db, err := sql.Open("sqlite", "file:"+file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms[:stop] {
			if _, err := db.Exec(m.sql); err != nil {
				t.Fatalf("apply %s: %v", m.name, err)
			}
		}
		db.Exec(fmt.Sprintf("PRAGMA user_version = %d", stop))
		db.Close()
		db, err = Open(ctx, file)
		if err != nil {
			t.Fatalf("upgrade from schema %d: %v", stop, err)
		}
		var v int
		db.QueryRow("PRAGMA user_version").Scan(&v)
		db.Close()
		if v != len(ms) {
			t.Fatalf("upgrade from %d reached %d, want %d", stop, v, len(ms))
		}
	}
}
