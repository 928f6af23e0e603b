-- Documents of tens of megabytes travel and rest in parts (each sealed on its own under the
-- document's key, bound to its document, holder and place), so that no message and no step
-- holds the whole document. A document is whole in `content`, or in `parts` parts.
ALTER TABLE documents
    ALTER COLUMN nonce DROP NOT NULL,
    ALTER COLUMN content DROP NOT NULL,
    ADD COLUMN parts integer CHECK (parts >= 1),
    ADD CONSTRAINT documents_whole_or_in_parts CHECK (
        (parts IS NULL AND content IS NOT NULL AND nonce IS NOT NULL)
        OR (parts IS NOT NULL AND content IS NULL AND nonce IS NULL)
    );

-- A part of a document being uploaded (its upload's id is the document's id to be) or stored.
CREATE TABLE document_parts (
    document_id uuid NOT NULL,
    index       integer NOT NULL CHECK (index >= 0),
    nonce       bytea NOT NULL CHECK (length(nonce) = 12),
    sealed      bytea NOT NULL,
    sha256      bytea NOT NULL,   -- of the part's bytes: the same part sent twice is recognised
    PRIMARY KEY (document_id, index)
);

-- An upload in progress: what the document will be, sealed title and wrapped key included.
CREATE TABLE uploads (
    upload_id    uuid PRIMARY KEY,
    ins          text NOT NULL,
    actor_id     text NOT NULL,
    document_type text NOT NULL,
    title_nonce  bytea NOT NULL,
    title_sealed bytea NOT NULL,
    media_type   text,
    size         bigint NOT NULL,
    sha256       bytea NOT NULL,
    parts        integer NOT NULL,
    part_bytes   integer NOT NULL,
    key_id       text NOT NULL,
    key_nonce    bytea NOT NULL,
    wrapped_key  bytea NOT NULL,
    held_back    boolean NOT NULL,
    replaces     uuid,
    on_behalf_of text,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);
CREATE INDEX uploads_expired ON uploads (expires_at);
