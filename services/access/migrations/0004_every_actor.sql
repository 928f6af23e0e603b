-- ACC_05 / ACC_11: how the consent was given: expressly after information (ACC_11), or collected
-- by another professional on the holder's behalf, with the reason shown to the holder.
ALTER TABLE authorizations
    ADD COLUMN express      boolean NOT NULL DEFAULT false,
    ADD COLUMN collected_by text,
    ADD COLUMN reason_code  text,
    ADD COLUMN reason       text;

-- ACC_08 / ACC_14: establishments authorized or blocked by the holder (by FINESS).
CREATE TABLE establishment_authorizations (
    ins        text NOT NULL,
    finess     text NOT NULL,
    granted_at timestamptz NOT NULL,
    until      timestamptz,
    granted_by text NOT NULL,
    PRIMARY KEY (ins, finess)
);

CREATE TABLE establishment_blocks (
    ins        text NOT NULL,
    finess     text NOT NULL,
    blocked_at timestamptz NOT NULL,
    PRIMARY KEY (ins, finess)
);

-- Who works where, as identity tells it (StaffJoined / StaffLeft): the later change wins.
CREATE TABLE establishment_staff (
    finess     text NOT NULL,
    rpps       text NOT NULL,
    present    boolean NOT NULL,
    changed_at timestamptz NOT NULL,
    PRIMARY KEY (finess, rpps)
);
CREATE INDEX establishment_staff_by_rpps ON establishment_staff (rpps) WHERE present;

-- ACC_06: care-team episodes the establishments declared (CareTeamDeclared / CareTeamEnded).
-- An end heard before its declaration is kept (members still unknown: nobody is let in).
CREATE TABLE care_teams (
    episode_id uuid PRIMARY KEY,
    ins        text NOT NULL,
    finess     text,
    members    text[] NOT NULL DEFAULT '{}',
    starts_at  timestamptz,
    ends_at    timestamptz,
    ended_at   timestamptz
);
CREATE INDEX care_teams_by_member ON care_teams USING gin (members);
CREATE INDEX care_teams_by_ins ON care_teams (ins);

-- ACC_09: the holder's objection to access in an emergency, and the break-the-glass accesses in
-- progress (24 hours each).
CREATE TABLE emergency_objections (
    ins         text PRIMARY KEY,
    objected_at timestamptz NOT NULL
);

CREATE TABLE emergency_accesses (
    decision_id uuid PRIMARY KEY,
    ins         text NOT NULL,
    actor_id    text NOT NULL,
    started_at  timestamptz NOT NULL,
    until       timestamptz NOT NULL,
    purpose     text
);
CREATE INDEX emergency_accesses_by_actor ON emergency_accesses (ins, actor_id, until);

-- ACC_15: the catalogue as identity tells it, and what each holder lets each service see.
CREATE TABLE catalogue_services (
    service_id text PRIMARY KEY,
    categories text[] NOT NULL,
    referenced boolean NOT NULL,
    changed_at timestamptz NOT NULL
);

CREATE TABLE app_grants (
    ins        text NOT NULL,
    service_id text NOT NULL,
    categories text[] NOT NULL,
    changed_at timestamptz NOT NULL,
    PRIMARY KEY (ins, service_id)
);

-- ACC_03: traces no one can rewrite. Each holder's traces form a chain: `hash` is
-- sha256(previous hash || sha256(the trace's canonical form)), `seq` its place; `trace_heads`
-- keeps each chain's last link, and its row lock orders the decisions of one holder across
-- replicas. Traces written before the chain keep NULLs (reported, not verifiable).
ALTER TABLE traces
    ADD COLUMN seq            bigint,
    ADD COLUMN hash           bytea,
    ADD COLUMN matrix_version text,
    ADD COLUMN emergency      boolean NOT NULL DEFAULT false,
    ADD COLUMN purpose        text;
CREATE UNIQUE INDEX traces_chain ON traces (ins, seq);

CREATE TABLE trace_heads (
    ins  text PRIMARY KEY,
    seq  bigint NOT NULL,
    hash bytea NOT NULL,
    leaf bytea NOT NULL
);

-- The history, newest first, by keyset (ACC_03; libs/paging's position: time, then insertion
-- number): by holder, and by holder and actor.
ALTER TABLE traces ADD COLUMN n bigserial;
DROP INDEX traces_by_holder;
CREATE INDEX traces_newest ON traces (ins, at, n);
CREATE INDEX traces_by_actor ON traces (ins, actor_id, at, n);

-- Append-only: no UPDATE, and no DELETE except by the purge of a holder's data (RET_01),
-- which says so in its own transaction.
CREATE FUNCTION traces_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('dmp.purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'access traces are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER traces_append_only BEFORE UPDATE OR DELETE ON traces
    FOR EACH ROW EXECUTE FUNCTION traces_append_only();
CREATE TRIGGER traces_no_truncate BEFORE TRUNCATE ON traces
    FOR EACH STATEMENT EXECUTE FUNCTION traces_append_only();

-- ACC_04: "at the holder's request the treating physician may do what the holder may do": the
-- holder's standing request, which they lift at any time.
CREATE TABLE treating_delegations (
    ins          text PRIMARY KEY,
    delegated_at timestamptz NOT NULL
);
