-- The spaces as messaging knows them (from identity's events): may a message be sent here?
CREATE TABLE spaces (
    ins       text PRIMARY KEY,
    status    text NOT NULL CHECK (status IN ('open', 'closed')),
    status_at timestamptz NOT NULL      -- when the status last changed, to ignore stale events
);

-- Each holder's secure messaging box (MSG_01). The body never leaves this service.
CREATE TABLE messages (
    message_id  uuid PRIMARY KEY,
    seq         bigserial NOT NULL,     -- order of writing, to break ties on sent_at
    ins         text NOT NULL,
    sender_kind text NOT NULL CHECK (sender_kind IN ('holder', 'professional', 'operator')),
    sender_id   text NOT NULL,
    sender_name text NOT NULL,
    subject     text NOT NULL,
    body        text NOT NULL,
    sent_at     timestamptz NOT NULL,
    -- 'message': written by its sender; 'deposit': posted by the system for a deposit (MSG_02)
    origin      text NOT NULL DEFAULT 'message' CHECK (origin IN ('message', 'deposit')),
    document_id uuid UNIQUE             -- the deposit a 'deposit' message is about
);
CREATE INDEX messages_box ON messages (ins, sent_at DESC, seq DESC);
