-- The trace an event was written in (W3C `traceparent`), so the relay continues it when it
-- publishes (libs/telemetry.py). Nullable: rows written without tracing publish as before.
ALTER TABLE outbox ADD COLUMN trace_context text;
