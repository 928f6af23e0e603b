-- Where each holder's alerts go, and the space's lifecycle as notifier knows it.
-- A row may exist before the contact is known (an alert raised first): changed_at is then null.
CREATE TABLE contacts (
    ins          text PRIMARY KEY,
    display_name text,
    email        text,                 -- a minor's: the legal representative's (NTF_04)
    phone        text,
    changed_at   timestamptz,          -- occurred_at of the ContactChanged applied (last wins)
    opened_at    timestamptz,
    closed_at    timestamptz           -- RET_05: pending alerts and mails are still delivered
);

-- The holder's in-space inbox: every alert, whatever the channels (SPC_06).
CREATE TABLE alerts (
    alert_id         uuid PRIMARY KEY,
    seq              bigserial NOT NULL,
    ins              text NOT NULL,
    kind             text NOT NULL,
    -- NTF_01: one alert per cause, never two, even past the inbox.
    cause_event_id   uuid NOT NULL UNIQUE,
    text             text NOT NULL,
    created_at       timestamptz NOT NULL,
    read_at          timestamptz,
    -- Raised before the holder's contact was known: mailed when it becomes known.
    awaiting_contact boolean NOT NULL DEFAULT false
);
CREATE INDEX alerts_by_holder ON alerts (ins, created_at DESC, seq DESC);
CREATE INDEX alerts_awaiting_contact ON alerts (ins) WHERE awaiting_contact;

-- The mail outbox: written with the alert, sent by the delivery worker (claim with a lease).
CREATE TABLE mails (
    alert_id        uuid PRIMARY KEY REFERENCES alerts (alert_id),
    to_address      text NOT NULL,
    subject         text NOT NULL,
    body            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    claimed_until   timestamptz,
    attempts        integer NOT NULL DEFAULT 0,
    last_error      text,
    sent_at         timestamptz
);
CREATE INDEX mails_pending ON mails (next_attempt_at) WHERE sent_at IS NULL;
