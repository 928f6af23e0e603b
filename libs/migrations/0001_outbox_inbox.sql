-- Applied in every service's schema: the transactional outbox and the consumer inbox.

CREATE TABLE outbox (
    event_id       uuid PRIMARY KEY,
    seq            bigserial NOT NULL,          -- order of writing, for ordering only
    routing_key    text NOT NULL,
    body           bytea NOT NULL,
    correlation_id text,
    created_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    claimed_until  timestamptz,                 -- lease of the relay that is publishing it
    attempts       integer NOT NULL DEFAULT 0,
    last_error     text,
    sent_at        timestamptz
);
CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL;

CREATE TABLE inbox (
    consumer    text NOT NULL,
    message_id  text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (consumer, message_id)
);
