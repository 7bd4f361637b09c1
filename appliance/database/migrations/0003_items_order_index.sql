-- Pages walk a course's items in lesson order (a window of a long course,
-- an item's previous and next); without this index each is a scan of the
-- course's items, which at 10,000 items is what a page view costs.
CREATE INDEX items_order ON items(course_id, version, lesson_idx, idx);
