-- A new version replaces the old visibly without erasing it: each version points at the one it
-- replaces, and is replaced by at most one.
ALTER TABLE documents
    ADD COLUMN version     integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    ADD COLUMN replaces    uuid,
    ADD COLUMN replaced_by uuid;
CREATE UNIQUE INDEX documents_one_successor ON documents (replaces) WHERE replaces IS NOT NULL;

-- DOC_05: the holder asks the author to delete a document; the author decides. What remains of
-- a document deleted so is this row (no title, no content).
CREATE TABLE deletion_requests (
    document_id  uuid PRIMARY KEY,
    ins          text NOT NULL,
    author_id    text NOT NULL,
    requested_at timestamptz NOT NULL,
    requested_by text NOT NULL,
    decided_at   timestamptz,
    accepted     boolean
);
CREATE INDEX deletion_requests_pending ON deletion_requests (author_id, requested_at)
    WHERE decided_at IS NULL;
