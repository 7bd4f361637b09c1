-- Hub side. A hub is a node like any other (its published courses live in
-- the same catalog and block store); these tables say who may sync what.

CREATE TABLE hub_course_channels (
    course_id TEXT NOT NULL,
    channel   TEXT NOT NULL,
    PRIMARY KEY (course_id, channel)
) STRICT;

-- Every version the hub published, kept (the last few per course) so the
-- hub can offer patches from the versions boxes still hold; the catalog
-- itself only keeps the current one.
CREATE TABLE hub_versions (
    course_id    TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    manifest     BLOB    NOT NULL,
    published_at INTEGER NOT NULL,
    PRIMARY KEY (course_id, version)
) STRICT;

-- Every publish or removal appends a change; a box's cursor is the highest
-- seq it has applied, so "changes since" is an index range scan.
CREATE TABLE hub_changes (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    course_id TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    removed   INTEGER NOT NULL,
    at        INTEGER NOT NULL
) STRICT;
CREATE INDEX hub_changes_by_course ON hub_changes(course_id, seq);

-- Only the SHA-256 of an enrolment token is kept: a leaked database does not
-- leak usable tokens.
CREATE TABLE hub_tokens (
    token_sha256 TEXT PRIMARY KEY,
    site         TEXT    NOT NULL,
    channels     TEXT    NOT NULL, -- JSON array
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL, -- unix seconds, hub clock
    used_by      TEXT,             -- device ID that consumed it
    used_at      INTEGER
) STRICT;

CREATE TABLE hub_boxes (
    device_id   TEXT PRIMARY KEY,
    site        TEXT    NOT NULL,
    channels    TEXT    NOT NULL, -- JSON array
    hostname    TEXT    NOT NULL,
    enrolled_at INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    version     TEXT    NOT NULL,  -- the box's software version, as it last said
    cursor      INTEGER NOT NULL,  -- the last change seq the box has applied
    revoked_at  INTEGER
) STRICT;

-- Box side: courses installed from upstream. Only these are removed when
-- the upstream removes them; a course imported from a USB stick stays.
CREATE TABLE sync_courses (
    course_id TEXT PRIMARY KEY,
    version   INTEGER NOT NULL
) STRICT;

-- Box side: small durable sync facts (cursor, last success, counters).
CREATE TABLE sync_state (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
