-- Files that work in progress needs but no installed course version
-- references yet: the course versions a sync pass is bringing in. gc keeps
-- them (and the partial files being assembled for them) so an interrupted
-- sync does not lose what it already downloaded, until the work is
-- installed, replaced by newer work, or abandoned (not renewed for a while).
CREATE TABLE pending_files (
    sha256  TEXT    NOT NULL,
    owner   TEXT    NOT NULL, -- who needs it ("sync")
    touched INTEGER NOT NULL, -- unix seconds the owner last said it needs it
    PRIMARY KEY (sha256, owner)
) STRICT, WITHOUT ROWID;
CREATE INDEX pending_files_by_owner ON pending_files(owner);
