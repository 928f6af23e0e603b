-- Who may act for whom, as identity tells it (ProxyAppointed / ProxyEnded): representatives of
-- a living holder (SPC_04, SPC_05) and, after death, validated requesters (ACC_13). An end heard
-- before its appointment is kept (kind and role still unknown: never active).
CREATE TABLE proxies (
    proxy_id  uuid PRIMARY KEY,
    ins       text NOT NULL,
    kind      text,
    role      text,
    starts_at timestamptz,
    ends_at   timestamptz,
    ended_at  timestamptz
);
CREATE INDEX proxies_by_holder ON proxies (ins);

-- Holders whose death identity recorded (HolderDeceased).
CREATE TABLE deceased_holders (
    ins     text PRIMARY KEY,
    died_on date NOT NULL
);
