-- The directory: establishments by FINESS, their staff, care-team episodes (ACC_06),
-- professionals of other EU states (ACC_16), catalogue services (ACC_15). docs/identity.md.

-- ACC_16: a professional of another EU or EEA state, identified `<country>-<national id>`.
ALTER TABLE professionals ADD COLUMN country text;

CREATE TABLE establishments (
    finess        text PRIMARY KEY,
    name          text NOT NULL,
    category      text NOT NULL,
    registered_at timestamptz NOT NULL
);

CREATE TABLE establishment_staff (
    finess    text NOT NULL REFERENCES establishments (finess),
    rpps      text NOT NULL REFERENCES professionals (rpps),
    joined_at timestamptz NOT NULL,
    PRIMARY KEY (finess, rpps)
);

CREATE TABLE care_teams (
    episode_id  uuid PRIMARY KEY,
    ins         text NOT NULL REFERENCES persons (ins),
    finess      text NOT NULL REFERENCES establishments (finess),
    members     text[] NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz,
    ended_at    timestamptz,
    declared_by text NOT NULL
);
CREATE INDEX care_teams_by_holder ON care_teams (ins);

CREATE TABLE catalogue_services (
    service_id      text PRIMARY KEY,
    name            text NOT NULL,
    categories      text[] NOT NULL,
    public_key      text NOT NULL,
    referenced_at   timestamptz NOT NULL,
    dereferenced_at timestamptz
);
