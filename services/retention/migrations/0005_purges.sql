-- RET_01: the purge of a holder's data ten years after closure, and its proof of deletion.
CREATE TABLE purges (
    purge_id          uuid PRIMARY KEY,     -- the space_purge deadline that started it
    ins               text,                 -- kept only until every service has answered
    ins_key           text NOT NULL,        -- HMAC-SHA256 of the INS: the proof names no one
    closed_at         timestamptz NOT NULL, -- the closure the ten years ran from
    requested_at      timestamptz NOT NULL,
    last_requested_at timestamptz NOT NULL,
    requests          integer NOT NULL DEFAULT 1,
    completed_at      timestamptz
);
CREATE INDEX purges_unanswered ON purges (last_requested_at) WHERE completed_at IS NULL;
CREATE INDEX purges_by_key ON purges (ins_key);

-- Each service's answer: how many rows it deleted, by table (retention's own part included).
CREATE TABLE purge_answers (
    purge_id    uuid NOT NULL REFERENCES purges (purge_id),
    service     text NOT NULL,
    rows        jsonb NOT NULL,
    skipped     text,                       -- why nothing was deleted (a newer space)
    purged_at   timestamptz NOT NULL,       -- the service's time of deletion
    received_at timestamptz NOT NULL,
    PRIMARY KEY (purge_id, service)
);
