-- DOC_11: a key per document, wrapped by a master key named by its id, so that the master key
-- is rotated by re-wrapping 32-byte keys, never the documents. Rows from before are sealed
-- directly under the one master key there was, whose id is the setting's default, 'k1'
-- (key_nonce and wrapped_key NULL); re-wrapping them wraps that key as their data key.
ALTER TABLE documents
    ADD COLUMN key_id      text NOT NULL DEFAULT 'k1',
    ADD COLUMN key_nonce   bytea,
    ADD COLUMN wrapped_key bytea,
    ADD COLUMN size        bigint,   -- of the content as deposited (NULL before this column)
    ADD CONSTRAINT documents_key_wrapped_whole CHECK (
        (key_nonce IS NULL AND wrapped_key IS NULL)
        OR (length(key_nonce) = 12 AND length(wrapped_key) = 48)
    );
ALTER TABLE documents ALTER COLUMN key_id DROP DEFAULT;
CREATE INDEX documents_by_key ON documents (key_id);
