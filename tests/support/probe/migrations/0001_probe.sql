-- The probe's effects. Deliberately NOT unique by event: applying an event twice would show as
-- two rows, so "one row per event" proves the inbox did its job (not a primary key refusing it).
CREATE TABLE effects (
    seq      bigserial PRIMARY KEY,
    event_id uuid NOT NULL,
    key      text NOT NULL,
    n        integer NOT NULL,
    pid      integer NOT NULL
);

-- Every delivery the probe sees, written OUTSIDE the handler's transaction (autocommit, before
-- it opens), so a delivery whose transaction rolled back or whose process died still shows.
CREATE TABLE deliveries (
    seq            bigserial PRIMARY KEY,
    message_id     text,
    delivery_count integer,
    pid            integer NOT NULL,
    at             timestamptz NOT NULL DEFAULT clock_timestamp()
);
