-- When the period of each deadline started (the announcement, the closure): a lifecycle event
-- cancels only deadlines started at or before it, so a late, stale event cancels nothing.
ALTER TABLE deadlines ADD COLUMN starts_at timestamptz;
UPDATE deadlines SET starts_at = CASE kind
    WHEN 'space_opening' THEN due_at - interval '42 days'
    ELSE due_at - interval '10 years' END;
ALTER TABLE deadlines ALTER COLUMN starts_at SET NOT NULL;
