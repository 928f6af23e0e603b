-- The bench consumer's effect: one row per event applied (with the inbox row, one transaction).
CREATE TABLE ticks (
    event_id uuid NOT NULL,
    i        integer NOT NULL
);
