-- The holder's time zone (ContactChanged.time_zone): alerts tell times in it, with its name.
ALTER TABLE contacts ADD COLUMN time_zone text NOT NULL DEFAULT 'Europe/Paris';

-- Bursts (NTF_01 without flooding, docs/notifier.md): the holder's current window of access
-- alerts, when it began and how many went out one by one in it; past the first few, the
-- window's alerts are folded into its digest, sent once at the window's end.
ALTER TABLE contacts
    ADD COLUMN burst_started_at timestamptz,
    ADD COLUMN burst_sent       integer NOT NULL DEFAULT 0,
    ADD COLUMN burst_digest_id  uuid;

-- Each alert: the instant it tells of and the zone its text tells it in (the inbox shows the
-- same), its SMS words, whether it may be folded (a non-emergency access) and where it was.
ALTER TABLE alerts
    ADD COLUMN occurred_at timestamptz,
    ADD COLUMN time_zone   text NOT NULL DEFAULT 'Europe/Paris',
    ADD COLUMN sms_text    text,
    ADD COLUMN foldable    boolean NOT NULL DEFAULT false,
    ADD COLUMN digest_id   uuid;
CREATE INDEX alerts_by_digest ON alerts (digest_id) WHERE digest_id IS NOT NULL;
-- 'in_digest': told by its burst's digest rather than on its own (it is in the inbox all the same).
ALTER TABLE alerts DROP CONSTRAINT alerts_delivery_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_delivery_check
    CHECK (delivery IN ('in_space', 'pending', 'sent', 'no_address', 'failed', 'in_digest'));

-- One digest per burst that folded anything: due at the window's end; then its words are
-- written (from its alerts, in the holder's zone then) and its mail queued, once (queued_at).
CREATE TABLE digests (
    digest_id  uuid PRIMARY KEY,
    ins        text NOT NULL,
    due_at     timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    text       text,
    sms_text   text,
    queued_at  timestamptz
);
CREATE INDEX digests_due ON digests (due_at) WHERE queued_at IS NULL;
CREATE INDEX digests_by_holder ON digests (ins);

-- The delivery machinery sends a digest as it sends an alert: a mail row is an alert's or a
-- digest's, by its id (the Message-ID and the SMS idempotency key), so it no longer points at
-- alerts only.
ALTER TABLE mails DROP CONSTRAINT mails_alert_id_fkey;
