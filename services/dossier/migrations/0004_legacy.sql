-- SPC_08: records of the former DMP (before July 2021), imported unchanged from the old
-- system's export, and brought into the space when it is activated.
ALTER TABLE documents
    ADD COLUMN legacy_id      text,      -- the old system's id of the document
    ADD COLUMN legacy_export  text,      -- the export it came in
    ADD COLUMN content_sha256 bytea,     -- of the bytes as they came: "unchanged" is checkable
    ADD COLUMN staged         boolean NOT NULL DEFAULT false;  -- imported, space not activated
CREATE UNIQUE INDEX documents_legacy ON documents (ins, legacy_id) WHERE legacy_id IS NOT NULL;
CREATE INDEX documents_staged ON documents (ins) WHERE staged;

-- Spaces whose activation identity announced (SpaceActivated).
CREATE TABLE activated_spaces (
    ins          text PRIMARY KEY,
    activated_at timestamptz NOT NULL
);
