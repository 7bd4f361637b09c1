-- Files are stored whole, once, by SHA-256. A row here means the object file
-- is on disk, fsynced and verified: the store inserts it only after rename.
CREATE TABLE files (
    sha256     TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    block_size INTEGER NOT NULL,
    stored_at  INTEGER NOT NULL
) STRICT;

-- The block map: every block of every stored file, so a new version (or the
-- delta sync) can reuse a block the box already holds anywhere.
CREATE TABLE blocks (
    file_sha256 TEXT    NOT NULL REFERENCES files(sha256) ON DELETE CASCADE,
    offset      INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    hash        BLOB    NOT NULL,
    weak_hash   INTEGER NOT NULL,
    PRIMARY KEY (file_sha256, offset)
) STRICT, WITHOUT ROWID;
CREATE INDEX blocks_by_hash ON blocks(hash);

-- A course points at exactly one visible version. Switching versions is an
-- update of current_version inside the transaction that inserted the new one.
CREATE TABLE courses (
    id              TEXT PRIMARY KEY,
    current_version INTEGER NOT NULL
) STRICT;

CREATE TABLE course_versions (
    course_id       TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    title           TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    language        TEXT    NOT NULL,
    subjects        TEXT    NOT NULL, -- JSON array
    grades          TEXT    NOT NULL, -- JSON array
    manifest        BLOB    NOT NULL, -- the manifest as imported, for export
    manifest_sha256 TEXT    NOT NULL,
    imported_at     INTEGER NOT NULL,
    PRIMARY KEY (course_id, version)
) STRICT;

CREATE TABLE course_subjects (
    course_id TEXT NOT NULL,
    version   INTEGER NOT NULL,
    subject   TEXT NOT NULL,
    PRIMARY KEY (course_id, version, subject),
    FOREIGN KEY (course_id, version) REFERENCES course_versions(course_id, version) ON DELETE CASCADE
) STRICT;

CREATE TABLE lessons (
    course_id TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    idx       INTEGER NOT NULL,
    lesson_id TEXT    NOT NULL,
    title     TEXT    NOT NULL,
    PRIMARY KEY (course_id, version, idx),
    FOREIGN KEY (course_id, version) REFERENCES course_versions(course_id, version) ON DELETE CASCADE
) STRICT;

CREATE TABLE items (
    course_id   TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    lesson_idx  INTEGER NOT NULL,
    idx         INTEGER NOT NULL,
    item_id     TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    title       TEXT    NOT NULL,
    path        TEXT    NOT NULL,
    sha256      TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    mime        TEXT    NOT NULL,
    entry       TEXT    NOT NULL, -- html5: the page inside the zip to open
    PRIMARY KEY (course_id, version, item_id),
    FOREIGN KEY (course_id, version) REFERENCES course_versions(course_id, version) ON DELETE CASCADE
) STRICT;

-- Every file a version references (items, transcripts, covers): what gc keeps.
CREATE TABLE version_files (
    course_id TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    path      TEXT    NOT NULL,
    sha256    TEXT    NOT NULL,
    size      INTEGER NOT NULL,
    PRIMARY KEY (course_id, version, path),
    FOREIGN KEY (course_id, version) REFERENCES course_versions(course_id, version) ON DELETE CASCADE
) STRICT;
CREATE INDEX version_files_by_sha ON version_files(sha256);

-- Full-text search over course and item titles, descriptions and item text.
CREATE VIRTUAL TABLE search USING fts5(
    course_id UNINDEXED,
    version UNINDEXED,
    item_id UNINDEXED,
    title,
    body,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Files that failed verification, moved aside rather than deleted so an
-- operator (or a later repair from upstream) can look at them.
CREATE TABLE quarantine (
    sha256      TEXT    NOT NULL,
    path        TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    detected_at INTEGER NOT NULL
) STRICT;
