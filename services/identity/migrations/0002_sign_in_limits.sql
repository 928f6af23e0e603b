-- Holder sign-in (SPC_03): one live code per holder, lockout per holder, rate limits.
-- Pruning schedule: docs/sign-in-and-contacts.md.

-- One live code per holder: a new code replaces the previous one; a used code is deleted at
-- once, an expired one by the janitor. Codes in flight at the upgrade are dropped (they live
-- ten minutes: the holder asks again).
DELETE FROM holder_codes;
ALTER TABLE holder_codes DROP CONSTRAINT holder_codes_pkey;
ALTER TABLE holder_codes DROP COLUMN attempts, DROP COLUMN used_at;
ALTER TABLE holder_codes ADD COLUMN issued_at timestamptz NOT NULL;
ALTER TABLE holder_codes ADD PRIMARY KEY (ins);
CREATE INDEX holder_codes_expiry ON holder_codes (expires_at);

-- Wrong codes and the lock, per holder and across codes. Kept for any INS asked, registered or
-- not, so that the lock tells nothing about who exists.
CREATE TABLE sign_in_guards (
    ins              text PRIMARY KEY,
    failures         integer NOT NULL,
    first_failure_at timestamptz NOT NULL,
    locked_until     timestamptz
);

-- Fixed-window counters of code requests: key `ins:<INS>` or `caller:<broker user>`.
CREATE TABLE rate_windows (
    key          text NOT NULL,
    window_start timestamptz NOT NULL,
    count        integer NOT NULL,
    PRIMARY KEY (key, window_start)
);
CREATE INDEX rate_windows_by_start ON rate_windows (window_start);

-- Card challenges: a used one is deleted when used, an expired one by the janitor.
DELETE FROM challenges WHERE used_at IS NOT NULL;
ALTER TABLE challenges DROP COLUMN used_at;
CREATE INDEX challenges_expiry ON challenges (expires_at);
