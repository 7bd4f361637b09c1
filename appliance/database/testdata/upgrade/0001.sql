-- Rows a box held at schema 1: one course of one lesson with a video and
-- its transcript, their files and blocks, a search row and a quarantined
-- file. Every migration after this one must carry them.
INSERT INTO files(sha256, size, block_size, stored_at) VALUES
    ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 200000, 131072, 1700000000),
    ('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 12, 131072, 1700000000);
INSERT INTO blocks(file_sha256, offset, size, hash, weak_hash) VALUES
    ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 0, 131072, x'01', 11),
    ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 131072, 68928, x'02', 12),
    ('bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 0, 12, x'03', 13);
INSERT INTO courses(id, current_version) VALUES ('seed-course', 3);
INSERT INTO course_versions(course_id, version, title, description, language, subjects, grades, manifest, manifest_sha256, imported_at)
    VALUES ('seed-course', 3, 'Seed course', 'Carried through every migration', 'en', '["science"]', '["5"]',
            CAST('{"id":"seed-course","version":3}' AS BLOB), 'eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee', 1700000001);
INSERT INTO course_subjects(course_id, version, subject) VALUES ('seed-course', 3, 'science');
INSERT INTO lessons(course_id, version, idx, lesson_id, title) VALUES ('seed-course', 3, 0, 'lesson-1', 'Lesson one');
INSERT INTO items(course_id, version, lesson_idx, idx, item_id, kind, title, path, sha256, size, mime, entry)
    VALUES ('seed-course', 3, 0, 0, 'video-1', 'video', 'Rain', 'video/rain.webm', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 200000, 'video/webm', '');
INSERT INTO version_files(course_id, version, path, sha256, size) VALUES
    ('seed-course', 3, 'video/rain.webm', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 200000),
    ('seed-course', 3, 'video/rain.vtt', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', 12);
INSERT INTO search(course_id, version, item_id, title, body) VALUES ('seed-course', 3, 'video-1', 'Rain', 'evaporation condensation');
INSERT INTO quarantine(sha256, path, reason, detected_at) VALUES ('cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc', 'store/quarantine/cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc', 'hash mismatch', 1700000002);
-- check
SELECT count(*) = 2 FROM files WHERE sha256 IN ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb');
SELECT count(*) = 3 FROM blocks WHERE file_sha256 IN ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb');
SELECT current_version = 3 FROM courses WHERE id = 'seed-course';
SELECT title = 'Seed course' AND language = 'en' AND imported_at = 1700000001 FROM course_versions WHERE course_id = 'seed-course' AND version = 3;
SELECT count(*) = 1 FROM course_subjects WHERE course_id = 'seed-course' AND subject = 'science';
SELECT title = 'Lesson one' FROM lessons WHERE course_id = 'seed-course' AND version = 3 AND idx = 0;
SELECT path = 'video/rain.webm' AND sha256 = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' AND mime = 'video/webm' FROM items WHERE course_id = 'seed-course' AND item_id = 'video-1';
SELECT count(*) = 2 FROM version_files WHERE course_id = 'seed-course' AND version = 3;
SELECT count(*) = 1 FROM search WHERE search MATCH 'condensation' AND item_id = 'video-1';
SELECT count(*) = 1 FROM quarantine WHERE sha256 = 'cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc';
SELECT manifest = CAST('{"id":"seed-course","version":3}' AS BLOB) FROM course_manifests WHERE course_id = 'seed-course' AND version = 3;
SELECT manifest_sha256 = 'eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee' FROM course_versions WHERE course_id = 'seed-course' AND version = 3;
SELECT v.item_count = (SELECT count(*) FROM items i WHERE i.course_id = v.course_id AND i.version = v.version) AND v.item_count > 0 FROM course_versions v WHERE course_id = 'seed-course' AND version = 3;
SELECT bytes = 200012 FROM course_versions WHERE course_id = 'seed-course' AND version = 3;
