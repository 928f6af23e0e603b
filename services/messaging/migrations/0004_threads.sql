-- The box becomes threads (MSG_01, MSG_03): every message belongs to one thread about one
-- holder's space; only the thread's participants read it. Every table names the holder (`ins`)
-- so that a holder's purge deletes each by it.
CREATE TABLE threads (
    thread_id       uuid PRIMARY KEY,
    seq             bigserial NOT NULL,     -- order of creation, to break ties on last_message_at
    ins             text NOT NULL,
    -- 'conversation': people write in it; 'notices': the deposits told to one reader (MSG_02)
    kind            text NOT NULL CHECK (kind IN ('conversation', 'notices')),
    -- for 'notices': whose ('holder:<ins>' or 'professional:<id>'), one such thread each
    notices_for     text,
    started_at      timestamptz NOT NULL,
    last_message_at timestamptz NOT NULL,
    CHECK ((kind = 'notices') = (notices_for IS NOT NULL)),
    UNIQUE (ins, notices_for)
);
CREATE INDEX threads_by_space ON threads (ins);

-- Who takes part: the holder's side (the holder and their representatives: id = the INS) and
-- professionals (RPPS, ADELI or another EU state's id).
CREATE TABLE thread_participants (
    thread_id uuid NOT NULL REFERENCES threads ON DELETE CASCADE,
    ins       text NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('holder', 'professional')),
    id        text NOT NULL,
    position  smallint NOT NULL,            -- the order they were named in
    PRIMARY KEY (thread_id, kind, id)
);
CREATE INDEX thread_participants_by_party ON thread_participants (kind, id);

-- The messages written before threads: each becomes a thread of its own, with its holder and
-- (a professional's) its sender, as only they could see it; the deposit notices of a holder
-- become their notices thread. Ids are drawn here: nothing refers to these threads yet.
ALTER TABLE messages ADD COLUMN thread_id uuid;

INSERT INTO threads (thread_id, ins, kind, notices_for, started_at, last_message_at)
SELECT gen_random_uuid(), ins, 'notices', 'holder:' || ins, min(sent_at), max(sent_at)
FROM messages WHERE origin = 'deposit' GROUP BY ins;
UPDATE messages m SET thread_id = t.thread_id
FROM threads t WHERE m.origin = 'deposit' AND t.ins = m.ins AND t.notices_for = 'holder:' || m.ins;

UPDATE messages SET thread_id = gen_random_uuid() WHERE thread_id IS NULL;
INSERT INTO threads (thread_id, ins, kind, started_at, last_message_at)
SELECT thread_id, ins, 'conversation', sent_at, sent_at FROM messages WHERE origin = 'message';
INSERT INTO thread_participants (thread_id, ins, kind, id, position)
SELECT thread_id, ins, 'holder', ins, 0 FROM threads;
INSERT INTO thread_participants (thread_id, ins, kind, id, position)
SELECT thread_id, ins, 'professional', sender_id, 1 FROM messages
WHERE origin = 'message' AND sender_kind = 'professional';

ALTER TABLE messages ALTER COLUMN thread_id SET NOT NULL;
ALTER TABLE messages ADD CONSTRAINT messages_thread_id_fkey
    FOREIGN KEY (thread_id) REFERENCES threads ON DELETE CASCADE;
CREATE INDEX messages_thread ON messages (thread_id, sent_at DESC, seq DESC);
-- A deposit is told once to each reader: one notice per deposit in each notices thread.
ALTER TABLE messages DROP CONSTRAINT messages_document_id_key;
ALTER TABLE messages ADD CONSTRAINT messages_one_notice_per_thread UNIQUE (thread_id, document_id);
-- A representative writes for the holder (SPC_04, SPC_05): the message says who wrote.
ALTER TABLE messages DROP CONSTRAINT messages_sender_kind_check;
ALTER TABLE messages ADD CONSTRAINT messages_sender_kind_check
    CHECK (sender_kind IN ('holder', 'representative', 'professional', 'operator'));

-- Files sent with a message: bytes and name sealed at rest (AES-256-GCM, messaging's key), each
-- under its own nonce, with associated data binding it to its message, its place in it and the
-- holder. The SHA-256 is of the bytes as sent, checked again when they are read.
CREATE TABLE attachments (
    attachment_id  uuid PRIMARY KEY,
    message_id     uuid NOT NULL REFERENCES messages ON DELETE CASCADE,
    ins            text NOT NULL,
    position       smallint NOT NULL,
    media_type     text NOT NULL,
    size           integer NOT NULL CHECK (size > 0),
    sha256         bytea NOT NULL CHECK (length(sha256) = 32),
    name_nonce     bytea CHECK (length(name_nonce) = 12),
    name_sealed    bytea,
    content_nonce  bytea NOT NULL CHECK (length(content_nonce) = 12),
    content_sealed bytea NOT NULL,
    UNIQUE (message_id, position),
    CHECK ((name_nonce IS NULL) = (name_sealed IS NULL))
);
CREATE INDEX attachments_by_space ON attachments (ins);

-- Each holder's treating physician, from identity's events (MSG_02: a deposit is sent to them).
-- The latest `since` heard wins, whatever the order of delivery.
CREATE TABLE treating_physicians (
    ins   text PRIMARY KEY,
    rpps  text NOT NULL,
    since timestamptz NOT NULL
);
