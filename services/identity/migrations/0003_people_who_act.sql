-- Everyone who may act for a holder, the holder's contacts and choices, activation, death.
-- docs/identity.md tells the model.

-- Sign-in codes for any subject: a holder (its INS) or a proxy (`proxy:<id>`). The codes in
-- flight at the upgrade stay valid.
ALTER TABLE holder_codes RENAME TO sign_in_codes;
ALTER TABLE sign_in_codes DROP CONSTRAINT holder_codes_ins_fkey;
ALTER TABLE sign_in_codes RENAME COLUMN ins TO subject;
ALTER INDEX holder_codes_expiry RENAME TO sign_in_codes_expiry;

-- SPC_03 / SPC_06 / NTF_04: the holder's choices. Alerts go by the listed channels that have an
-- address (none: alerts stay in the space); codes by `code_channel`.
ALTER TABLE persons
    ADD COLUMN code_channel   text NOT NULL DEFAULT 'email' CHECK (code_channel IN ('email', 'sms')),
    ADD COLUMN alert_channels text[] NOT NULL DEFAULT '{email,sms}',
    ADD COLUMN died_on        date,
    ADD COLUMN death_recorded_at timestamptz;

-- SPC_03: the activation code sent with the announcement (single use, expiring); SPC_01 / RET_01
-- reactivation.
ALTER TABLE spaces
    ADD COLUMN activation_code_hash text,
    ADD COLUMN activation_expires_at timestamptz,
    ADD COLUMN activated_at timestamptz,
    ADD COLUMN reactivated_at timestamptz;

-- A proxy: a person without a professional card who acts for a holder, signing in with a code
-- sent to the contact the operator verified. A representative of a living holder (SPC_04 legal
-- representative of a minor, SPC_05 person in charge of a protection measure) or, after death, a
-- requester whose access request the operator validated (ACC_13).
CREATE TABLE proxies (
    proxy_id          uuid PRIMARY KEY,
    ins               text NOT NULL REFERENCES persons (ins),
    kind              text NOT NULL CHECK (kind IN ('representative', 'requester')),
    role              text NOT NULL CHECK (role IN (
                          'legal_representative', 'protection_representative',
                          'heir', 'unmarried_partner', 'civil_union_partner', 'court_expert')),
    first_name        text,
    last_name         text,
    email             text,
    phone             text,
    measure_reference text,
    starts_at         timestamptz NOT NULL,
    ends_at           timestamptz,
    ended_at          timestamptz,
    end_reason        text,
    appointed_by      text NOT NULL,
    CHECK (email IS NOT NULL OR phone IS NOT NULL)
);
CREATE INDEX proxies_by_holder ON proxies (ins);
CREATE INDEX proxies_by_email ON proxies (lower(email));

-- SPC_07: the trusted person and the people to contact in an emergency.
CREATE TABLE personal_contacts (
    ins        text NOT NULL REFERENCES persons (ins),
    position   integer NOT NULL,  -- 0: the trusted person; 1..n: emergency contacts in order
    first_name text NOT NULL,
    last_name  text NOT NULL,
    relation   text,
    phone      text,
    email      text,
    PRIMARY KEY (ins, position)
);

-- SPC_07 / ACC_04: the treating physician, declared by the holder (pending until the physician
-- accepts) or by the physician (in effect at once). One current, at most one pending.
CREATE TABLE treating_physicians (
    ins          text NOT NULL REFERENCES persons (ins),
    rpps         text NOT NULL,
    status       text NOT NULL CHECK (status IN ('pending', 'current', 'former')),
    declared_by  text NOT NULL,
    declared_at  timestamptz NOT NULL,
    accepted_at  timestamptz,
    ended_at     timestamptz
);
CREATE UNIQUE INDEX one_current_treating_physician
    ON treating_physicians (ins) WHERE status = 'current';
CREATE UNIQUE INDEX one_pending_treating_physician
    ON treating_physicians (ins) WHERE status = 'pending';

-- ACC_13: access requests after death, filed by anyone, validated or refused by the operator.
CREATE TABLE access_requests (
    request_id   uuid PRIMARY KEY,
    ins          text NOT NULL,  -- as filed: not necessarily a registered person
    relation     text NOT NULL,
    first_name   text NOT NULL,
    last_name    text NOT NULL,
    email        text,
    phone        text,
    reason       text NOT NULL,
    filed_at     timestamptz NOT NULL,
    status       text NOT NULL CHECK (status IN ('pending', 'validated', 'refused')),
    decided_at   timestamptz,
    decided_by   text,
    decision_note text,
    proxy_id     uuid REFERENCES proxies (proxy_id)
);
CREATE INDEX access_requests_pending ON access_requests (filed_at) WHERE status = 'pending';
