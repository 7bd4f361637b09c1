-- Schema 3 indexes items in lesson order: a third item, out of insertion
-- order, must come back in place.
INSERT INTO lessons(course_id, version, idx, lesson_id, title) VALUES ('seed-course', 3, 1, 'lesson-2', 'Lesson two');
INSERT INTO items(course_id, version, lesson_idx, idx, item_id, kind, title, path, sha256, size, mime, entry, text_path)
    VALUES ('seed-course', 3, 1, 0, 'quiz-1', 'html5', 'Quiz', 'quiz.zip', 'dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd', 4096, 'application/zip', 'index.html', '');
-- check
SELECT group_concat(item_id, ',') = 'video-1,video-2,quiz-1' FROM (SELECT item_id FROM items WHERE course_id = 'seed-course' AND version = 3 ORDER BY lesson_idx, idx);
SELECT entry = 'index.html' FROM items WHERE course_id = 'seed-course' AND item_id = 'quiz-1';
SELECT group_concat(item_id || ':' || pos, ',') = 'video-1:0,video-2:1,quiz-1:2' FROM (SELECT item_id, pos FROM items WHERE course_id = 'seed-course' AND version = 3 ORDER BY pos);
