-- Schema 4 adds the hub's tables and the box's sync state.
INSERT INTO hub_course_channels(course_id, channel) VALUES ('seed-course', 'science');
INSERT INTO hub_versions(course_id, version, manifest, published_at) VALUES ('seed-course', 2, CAST('{"id":"seed-course","version":2}' AS BLOB), 1700000003);
INSERT INTO hub_changes(course_id, version, removed, at) VALUES ('seed-course', 2, 0, 1700000003), ('seed-course', 3, 0, 1700000004);
INSERT INTO hub_tokens(token_sha256, site, channels, created_at, expires_at, used_by, used_at)
    VALUES ('dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd', 'school-a', '["science"]', 1700000005, 1700086405, 'DEVICE-A', 1700000006);
INSERT INTO hub_boxes(device_id, site, channels, hostname, enrolled_at, last_seen, version, cursor, revoked_at)
    VALUES ('DEVICE-A', 'school-a', '["science"]', 'pi-school-a', 1700000006, 1700000100, 'v0.3', 2, NULL);
INSERT INTO sync_courses(course_id, version) VALUES ('seed-course', 3);
INSERT INTO sync_state(key, value) VALUES ('cursor', '2');
-- check
SELECT count(*) = 1 FROM hub_course_channels WHERE course_id = 'seed-course' AND channel = 'science';
SELECT published_at = 1700000003 FROM hub_versions WHERE course_id = 'seed-course' AND version = 2;
SELECT group_concat(version, ',') = '2,3' FROM (SELECT version FROM hub_changes WHERE course_id = 'seed-course' ORDER BY seq);
SELECT site = 'school-a' AND used_by = 'DEVICE-A' FROM hub_tokens WHERE token_sha256 = 'dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd';
SELECT hostname = 'pi-school-a' AND cursor = 2 AND revoked_at IS NULL FROM hub_boxes WHERE device_id = 'DEVICE-A';
SELECT version = 3 FROM sync_courses WHERE course_id = 'seed-course';
SELECT value = '2' FROM sync_state WHERE key = 'cursor';
