-- Every deadline of the system (RET_04): one row per timer, fired once by the sweep.
CREATE TABLE deadlines (
    deadline_id    uuid PRIMARY KEY,
    ins            text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('space_opening', 'space_purge')),
    due_at         timestamptz NOT NULL,
    created_at     timestamptz NOT NULL,
    fired_at       timestamptz,
    cancelled_at   timestamptz,
    cause_event_id uuid NOT NULL,               -- the event that set the deadline
    correlation_id text NOT NULL,               -- carried on to the due event
    CHECK (fired_at IS NULL OR cancelled_at IS NULL)
);

-- At most one pending deadline of a kind per space (a reactivated then re-closed space gets a
-- new purge once the first one is cancelled, so fired and cancelled rows are not constrained).
CREATE UNIQUE INDEX deadlines_one_pending
    ON deadlines (ins, kind) WHERE fired_at IS NULL AND cancelled_at IS NULL;

-- What the sweep reads.
CREATE INDEX deadlines_due ON deadlines (due_at) WHERE fired_at IS NULL AND cancelled_at IS NULL;

CREATE INDEX deadlines_by_ins ON deadlines (ins, created_at);
