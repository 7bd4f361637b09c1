-- Schema 5 adds the files pending work needs (gc keeps them).
INSERT INTO pending_files(sha256, owner, touched)
    VALUES ('eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee', 'sync', 1700000200);
-- check
SELECT owner = 'sync' AND touched = 1700000200 FROM pending_files WHERE sha256 = 'eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee';
