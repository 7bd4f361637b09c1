package database

import (
	"context"
	"database/sql"
	"fmt"
	"os"
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

// TestUpgradeFromEachVersion: a box that stopped at any earlier schema,
// holding rows in every table it had, opens with this binary, reaches the
// latest schema, and still holds those rows.
//
// Each migration NNNN comes with testdata/upgrade/NNNN.sql: statements that
// insert rows into what that schema has, then, after a "-- check" line,
// queries written against the latest schema that each return 1 when those
// rows survived. A migration that reshapes a table updates the checks of
// the seeds before it: that is the point.
func TestUpgradeFromEachVersion(t *testing.T) {
	ctx := context.Background()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	seeds := make([]upgradeSeed, len(ms))
	for i, m := range ms {
		seeds[i] = readUpgradeSeed(t, m.version)
	}
	for stop := 1; stop <= len(ms); stop++ {
		t.Run(fmt.Sprintf("from %d", stop), func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "old.db")
			db, err := sql.Open("sqlite", "file:"+file+"?_pragma=foreign_keys(1)")
			if err != nil {
				t.Fatal(err)
			}
			// Migration k, then seed k: each seed meets the schema it
			// was written for, as a box's rows met the binary it ran.
			for k, m := range ms[:stop] {
				if _, err := db.Exec(m.sql); err != nil {
					t.Fatalf("apply %s: %v", m.name, err)
				}
				if _, err := db.Exec(seeds[k].insert); err != nil {
					t.Fatalf("seed rows at schema %d: %v", m.version, err)
				}
			}
			if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", stop)); err != nil {
				t.Fatal(err)
			}
			db.Close()

			db, err = Open(ctx, file)
			if err != nil {
				t.Fatalf("upgrade from schema %d: %v", stop, err)
			}
			defer db.Close()
			var v int
			db.QueryRow("PRAGMA user_version").Scan(&v)
			if v != len(ms) {
				t.Fatalf("upgrade from %d reached %d, want %d", stop, v, len(ms))
			}
			for _, pragma := range []string{"PRAGMA integrity_check", "PRAGMA foreign_key_check"} {
				rows, err := db.Query(pragma)
				if err != nil {
					t.Fatal(err)
				}
				var problems []string
				for rows.Next() {
					cols, _ := rows.Columns()
					vals := make([]any, len(cols))
					ptrs := make([]any, len(cols))
					for i := range vals {
						ptrs[i] = &vals[i]
					}
					rows.Scan(ptrs...)
					if s := fmt.Sprint(vals...); s != "ok" {
						problems = append(problems, s)
					}
				}
				rows.Close()
				if len(problems) > 0 {
					t.Fatalf("%s after upgrading from %d: %v", pragma, stop, problems)
				}
			}
			for k := range stop {
				for _, q := range seeds[k].checks {
					var ok sql.NullBool
					if err := db.QueryRow(q).Scan(&ok); err != nil || !ok.Bool {
						t.Errorf("rows seeded at schema %d, upgraded from %d: %s\n  = %v (%v)", k+1, stop, q, ok, err)
					}
				}
			}
		})
	}
}

type upgradeSeed struct {
	insert string
	checks []string
}

func readUpgradeSeed(t *testing.T, version int) upgradeSeed {
	t.Helper()
	name := filepath.Join("testdata", "upgrade", fmt.Sprintf("%04d.sql", version))
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("migration %d has no seed rows: %v; write %s (see TestUpgradeFromEachVersion)", version, err, name)
	}
	insert, check, ok := strings.Cut(string(b), "\n-- check\n")
	if !ok {
		t.Fatalf("%s has no \"-- check\" line before its check queries", name)
	}
	var s upgradeSeed
	s.insert = insert
	for q := range strings.SplitSeq(check, ";\n") {
		if q = strings.TrimSpace(q); q != "" {
			s.checks = append(s.checks, q)
		}
	}
	if strings.TrimSpace(insert) == "" || len(s.checks) == 0 {
		t.Fatalf("%s must insert rows and check them", name)
	}
	return s
}
