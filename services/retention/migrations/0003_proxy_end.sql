-- The end of a proxy's appointment (SPC_04: a minor's eighteenth birthday; SPC_05: a protection
-- measure's end date): one deadline per proxy, named by `subject` (the proxy's id). The space's
-- own deadlines have no subject ('').
ALTER TABLE deadlines ADD COLUMN subject text NOT NULL DEFAULT '';
ALTER TABLE deadlines DROP CONSTRAINT deadlines_kind_check;
ALTER TABLE deadlines ADD CONSTRAINT deadlines_kind_check
    CHECK (kind IN ('space_opening', 'space_purge', 'proxy_end'));
DROP INDEX deadlines_one_pending;
CREATE UNIQUE INDEX deadlines_one_pending
    ON deadlines (ins, kind, subject) WHERE fired_at IS NULL AND cancelled_at IS NULL;
