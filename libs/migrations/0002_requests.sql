-- Idempotent commands: the first reply to each request id, written in the same transaction as
-- the command's effects, so that a retried or redelivered request changes nothing and gets the
-- first reply again. Pruned after a retention period (libs.maintenance).
CREATE TABLE requests (
    request_key text PRIMARY KEY,      -- who asked (caller and actor) and the id they chose
    command     text NOT NULL,
    fingerprint text NOT NULL,         -- of the command and its payload: an id is for one request
    reply       jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX requests_by_age ON requests (created_at);
CREATE INDEX outbox_sent_by_age ON outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX inbox_by_age ON inbox (received_at);
