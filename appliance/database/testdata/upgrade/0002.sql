-- Schema 2 records an item's transcript path; items imported before it
-- have none (the default), items imported after it name theirs.
INSERT INTO items(course_id, version, lesson_idx, idx, item_id, kind, title, path, sha256, size, mime, entry, text_path)
    VALUES ('seed-course', 3, 0, 1, 'video-2', 'video', 'Clouds', 'video/rain.webm', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 200000, 'video/webm', '', 'video/rain.vtt');
-- check
SELECT text_path = 'video/rain.vtt' FROM items WHERE course_id = 'seed-course' AND item_id = 'video-2';
SELECT count(*) = 1 FROM items WHERE course_id = 'seed-course' AND item_id = 'video-1' AND text_path = '';
