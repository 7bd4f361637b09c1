package catalog

import (
	"context"
	"fmt"
	"time"
)

// Pending files are stored (or being assembled) for work not yet visible:
// the course versions a sync pass is bringing in. No version references
// them, so without this record gc would reclaim what an interrupted sync
// already downloaded. Each owner's set is replaced whole when its work
// changes, and carries the time the owner last renewed it, so abandoned
// work can be let go.

// SetPending replaces owner's pending files with shas, renewed at now. An
// empty shas forgets owner's files.
func (c *Catalog) SetPending(ctx context.Context, owner string, shas []string, now time.Time) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record pending files: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM pending_files WHERE owner = ?`, owner); err != nil {
		return fmt.Errorf("record pending files: %w", err)
	}
	if len(shas) > 0 {
		st, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO pending_files(sha256, owner, touched) VALUES (?, ?, ?)`)
		if err != nil {
			return fmt.Errorf("record pending files: %w", err)
		}
		defer st.Close()
		for _, sha := range shas {
			if _, err := st.ExecContext(ctx, sha, owner, now.Unix()); err != nil {
				return fmt.Errorf("record pending files: %w", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record pending files: %w", err)
	}
	return nil
}

// ExpirePending forgets pending files not renewed since before; it returns
// how many it forgot.
func (c *Catalog) ExpirePending(ctx context.Context, before time.Time) (int, error) {
	res, err := c.db.ExecContext(ctx, `DELETE FROM pending_files WHERE touched < ?`, before.Unix())
	if err != nil {
		return 0, fmt.Errorf("expire pending files: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// Pending returns the set of pending files, of every owner.
func (c *Catalog) Pending(ctx context.Context) (map[string]bool, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT DISTINCT sha256 FROM pending_files`)
	if err != nil {
		return nil, fmt.Errorf("list pending files: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("list pending files: %w", err)
		}
		out[s] = true
	}
	return out, rows.Err()
}
