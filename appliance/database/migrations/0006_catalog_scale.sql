-- Page views cost the same whatever the size of the course. Measured with a
-- course of 50,000 pages, every item and course page paid for the whole
-- course three ways; each is fixed here, carrying existing rows over.

-- 1. The manifest (16 MB at 50,000 items) sat in the middle of the
-- course_versions row, so reading the columns after it (imported_at,
-- manifest_sha256) walked its overflow pages on every page view. It moves
-- to a table of its own, read only by export and sync.
CREATE TABLE course_manifests (
    course_id TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    manifest  BLOB    NOT NULL, -- the manifest as imported, for export
    PRIMARY KEY (course_id, version),
    FOREIGN KEY (course_id, version) REFERENCES course_versions(course_id, version) ON DELETE CASCADE
) STRICT;
INSERT INTO course_manifests(course_id, version, manifest)
    SELECT course_id, version, manifest FROM course_versions;
ALTER TABLE course_versions DROP COLUMN manifest;

-- 2. A course's item count and size were a count(*) over its items and a
-- sum over its files on every page; a version never changes once
-- committed, so they are computed once, at commit.
ALTER TABLE course_versions ADD COLUMN item_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE course_versions ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE course_versions SET
    item_count = (SELECT count(*) FROM items i WHERE i.course_id = course_versions.course_id AND i.version = course_versions.version),
    bytes = (SELECT coalesce(sum(size), 0) FROM version_files f WHERE f.course_id = course_versions.course_id AND f.version = course_versions.version);

-- 3. An item's place in the whole course (0, 1, 2 … in lesson order), so
-- its neighbours are one equality lookup each and a window of a long course
-- starts at its first item instead of skipping the ones before it (a
-- "(lesson_idx, idx) < (?, ?)" condition or an OFFSET walks them all).
ALTER TABLE items ADD COLUMN pos INTEGER NOT NULL DEFAULT 0;
UPDATE items SET pos = o.n - 1
    FROM (SELECT rowid AS rid, row_number() OVER (PARTITION BY course_id, version ORDER BY lesson_idx, idx) AS n FROM items) AS o
    WHERE items.rowid = o.rid;
CREATE UNIQUE INDEX items_pos ON items(course_id, version, pos);
DROP INDEX items_order;
