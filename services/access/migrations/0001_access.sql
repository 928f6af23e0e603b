-- What access knows of each space (from identity's events).
CREATE TABLE spaces (
    ins        text PRIMARY KEY,
    status     text NOT NULL CHECK (status IN ('announced', 'open', 'closed')),
    changed_at timestamptz NOT NULL
);

-- The holder's consents (ACC_05), permanent or time-limited (ACC_14).
CREATE TABLE authorizations (
    ins           text NOT NULL,
    rpps          text NOT NULL,
    granted_at    timestamptz NOT NULL,
    until         timestamptz,
    granted_by    text NOT NULL,
    PRIMARY KEY (ins, rpps)
);

-- Blocked professionals (ACC_08).
CREATE TABLE blocks (
    ins        text NOT NULL,
    rpps       text NOT NULL,
    blocked_at timestamptz NOT NULL,
    PRIMARY KEY (ins, rpps)
);

-- The declared treating physician (ACC_04).
CREATE TABLE treating_physicians (
    ins          text PRIMARY KEY,
    rpps         text NOT NULL,
    declared_at  timestamptz NOT NULL
);

-- Every decision, granted or denied, with the rule that took it (ACC_03, ACC_18).
CREATE TABLE traces (
    trace_id         uuid PRIMARY KEY,
    decision_id      uuid NOT NULL UNIQUE,
    ins              text NOT NULL,
    at               timestamptz NOT NULL,
    actor_kind       text NOT NULL,
    actor_id         text NOT NULL,
    actor_name       text NOT NULL,
    actor_profession text,
    action           text NOT NULL,
    document_type    text,
    outcome          text NOT NULL CHECK (outcome IN ('granted', 'denied')),
    rule             text NOT NULL,
    reason           text NOT NULL,
    correlation_id   text
);
CREATE INDEX traces_by_holder ON traces (ins, at DESC, trace_id);
