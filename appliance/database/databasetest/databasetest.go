// Package databasetest gives tests a real, migrated node database: a SQLite
// file in the test's temporary directory, closed when the test ends. Tests
// use it instead of a fake so they exercise the pragmas and migrations the
// daemon runs with.
package databasetest

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"outpost/appliance/database"
)

// Open returns a migrated database in tb's temporary directory.
func Open(tb testing.TB) *sql.DB {
	tb.Helper()
	db, err := database.Open(context.Background(), filepath.Join(tb.TempDir(), "outpost.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}
