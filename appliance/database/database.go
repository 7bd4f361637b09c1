// Package database is the one place a node opens its SQLite database: it
// fixes the pragmas every connection gets and applies the embedded, numbered
// schema migrations before anyone else touches the file.
package database

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver; the appliance stays cgo-free
)

//go:embed migrations/*.sql
var migrations embed.FS

// Open opens (creating if needed) the database at file and migrates it to the
// latest schema.
//
// Pragmas travel in the DSN so that every pooled connection gets them, not
// just the first: WAL lets the portal read while an import writes;
// synchronous=FULL because records live here and "nothing filed is ever
// lost" outweighs the fsync per commit; busy_timeout turns writer contention
// into waiting instead of SQLITE_BUSY errors; foreign keys are off by default
// in SQLite and the catalog relies on ON DELETE CASCADE.
func Open(ctx context.Context, file string) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range []string{
		"journal_mode(WAL)",
		"synchronous(FULL)",
		"busy_timeout(10000)",
		"foreign_keys(1)",
	} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + file + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", file, err)
	}
	// SQLite allows one writer at a time; a handful of connections is enough
	// for concurrent portal reads and keeps memory small on a 1 GB Pi.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", file, err)
	}
	if err := Migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		if !ok {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", e.Name())
		}
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", e.Name(), err)
		}
		body, err := migrations.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", e.Name(), err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected number %d; migrations must be numbered without gaps", m.name, i+1)
		}
	}
	return ms, nil
}

// Migrate applies every embedded migration newer than the database's
// user_version, each in its own transaction together with the version bump,
// so a crash leaves the schema at a whole step.
func Migrate(ctx context.Context, db *sql.DB) error {
	return MigrateTo(ctx, db, SchemaVersion())
}

// MigrateTo applies the embedded migrations up to schema version target and
// no further. Upgrade tests use it to build a database as an older release
// left it, with rows, before Migrate takes it the rest of the way.
func MigrateTo(ctx context.Context, db *sql.DB, target int) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	if target < 0 || target > len(ms) {
		return fmt.Errorf("migrate to schema %d: this binary knows schemas 0 to %d", target, len(ms))
	}
	var current int
	if err := db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(ms) {
		return fmt.Errorf("database schema version %d is newer than this binary knows (%d): upgrade outpost", current, len(ms))
	}
	if current >= target {
		return nil
	}
	for _, m := range ms[current:target] {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", m.version)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: set version: %w", m.name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %s: commit: %w", m.name, err)
		}
	}
	return nil
}

// SchemaVersion reports the schema version the embedded migrations reach.
func SchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil {
		return 0
	}
	return len(ms)
}
