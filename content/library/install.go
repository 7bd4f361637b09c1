package library

import (
	"context"
	"fmt"

	"outpost/content/catalog"
	"outpost/content/pack"
)

// Hold takes the content lock as an import does, for work that stores
// files over a long time before it commits them (a sync pass): gc cannot
// run meanwhile and reclaim them as unreferenced.
func (l *Library) Hold() (release func(), err error) { return l.lock(false) }

// Install makes a course version visible whose files are already in the
// store (a sync brought them block by block). Like Import it is one catalog
// transaction, so the previous version serves until the switch. The caller
// must hold the content lock (Hold).
func (l *Library) Install(ctx context.Context, raw []byte) (*ImportResult, error) {
	m, err := pack.ParseStoredManifest(raw)
	if err != nil {
		return nil, fmt.Errorf("install course: %w", err)
	}
	res := &ImportResult{ID: m.ID, Version: m.Version, Title: m.Title, Files: len(m.Files)}
	if exists, err := l.Catalog.Existing(ctx, m.ID, m.Version, catalog.ManifestSum(raw)); err != nil {
		return nil, fmt.Errorf("install course %s: %w", m.ID, err)
	} else if exists {
		res.AlreadyImported = true
		return res, nil
	}
	for name, f := range m.Files {
		res.Bytes += f.Size
		have, err := l.Store.Has(ctx, f.SHA256)
		if err != nil {
			return nil, fmt.Errorf("install course %s: %w", m.ID, err)
		}
		if !have {
			return nil, fmt.Errorf("install course %s: file %s (%s) is not stored yet", m.ID, name, f.SHA256)
		}
	}
	if res.Replaced, err = l.Catalog.CurrentVersion(ctx, m.ID); err != nil {
		return nil, fmt.Errorf("install course %s: %w", m.ID, err)
	}
	texts, doneTexts, err := l.gatherTexts(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("install course %s: %w", m.ID, err)
	}
	defer doneTexts()
	v, err := l.Catalog.Commit(ctx, m, raw, texts)
	if err != nil {
		return nil, fmt.Errorf("install course %s: %w", m.ID, err)
	}
	res.AlreadyImported = v.Existed
	return res, nil
}
