-- The pack path of an item's transcript (its text_file), so the portal
-- offers captions exactly when the pack has WebVTT ones instead of guessing
-- a sibling .vtt. Items imported before this migration have none recorded;
-- importing their pack again fills it in.
ALTER TABLE items ADD COLUMN text_path TEXT NOT NULL DEFAULT '';
