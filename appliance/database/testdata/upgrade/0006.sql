-- Schema 6 keeps manifests apart from course_versions, stores each version's
-- item count and size, and numbers items in course order.
INSERT INTO courses(id, current_version) VALUES ('seed-five', 1);
INSERT INTO course_versions(course_id, version, title, description, language, subjects, grades, manifest_sha256, imported_at, item_count, bytes)
    VALUES ('seed-five', 1, 'Seed five', '', 'fr', '[]', '[]', 'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff', 1700000010, 2, 24);
INSERT INTO course_manifests(course_id, version, manifest) VALUES ('seed-five', 1, CAST('{"id":"seed-five","version":1}' AS BLOB));
INSERT INTO lessons(course_id, version, idx, lesson_id, title) VALUES ('seed-five', 1, 0, 'l', 'L');
INSERT INTO items(course_id, version, lesson_idx, idx, pos, item_id, kind, title, path, sha256, size, mime, entry, text_path) VALUES
    ('seed-five', 1, 0, 1, 1, 'b', 'document', 'B', 'b.txt', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 12, 'text/plain; charset=utf-8', '', ''),
    ('seed-five', 1, 0, 0, 0, 'a', 'document', 'A', 'a.txt', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 12, 'text/plain; charset=utf-8', '', '');
-- check
SELECT item_count = 2 AND bytes = 24 FROM course_versions WHERE course_id = 'seed-five';
SELECT length(manifest) > 0 FROM course_manifests WHERE course_id = 'seed-five' AND version = 1;
SELECT group_concat(item_id, ',') = 'a,b' FROM (SELECT item_id FROM items WHERE course_id = 'seed-five' ORDER BY pos);
