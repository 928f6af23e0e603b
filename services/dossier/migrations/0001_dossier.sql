-- The lifecycle of each space as identity announced it (only what the dossier needs: RET_05).
CREATE TABLE spaces (
    ins        text PRIMARY KEY,
    status     text NOT NULL CHECK (status IN ('open', 'closed')),
    changed_at timestamptz NOT NULL     -- when identity changed it (the event's own time)
);

-- Documents: metadata in clear, content sealed with AES-256-GCM (DOC_11). The associated data
-- binds each ciphertext to its document id and holder, so a ciphertext copied onto another row
-- or another holder fails to open.
CREATE TABLE documents (
    document_id   uuid PRIMARY KEY,
    seq           bigserial NOT NULL,   -- order of deposit, to break ties between equal times
    ins           text NOT NULL,
    document_type text NOT NULL,
    title         text NOT NULL,
    media_type    text NOT NULL,
    author_kind   text NOT NULL,
    author_id     text NOT NULL,
    author_name   text NOT NULL,
    decision_id   uuid NOT NULL,        -- the access decision that let it in (ACC_18)
    decision_rule text NOT NULL,
    deposited_at  timestamptz NOT NULL,
    masked        boolean NOT NULL DEFAULT false,   -- DOC_06
    nonce         bytea NOT NULL CHECK (length(nonce) = 12),
    content       bytea NOT NULL        -- ciphertext followed by the 16-byte GCM tag
);
CREATE INDEX documents_by_holder ON documents (ins, deposited_at DESC, seq DESC);
