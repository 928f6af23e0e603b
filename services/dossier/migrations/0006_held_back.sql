-- DOC_07: a document a professional made provisionally inaccessible to the holder until an
-- announcement consultation; released by the consultation or, a month on, by retention.
ALTER TABLE documents
    ADD COLUMN held_back      boolean NOT NULL DEFAULT false,
    ADD COLUMN released_at    timestamptz,
    ADD COLUMN release_reason text CHECK (release_reason IN ('consultation', 'one_month'));
CREATE INDEX documents_held_back ON documents (ins) WHERE held_back AND released_at IS NULL;
