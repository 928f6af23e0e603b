-- The spaces as identity's lifecycle events tell them (libs/spaces.py), in the schema of each
-- service that opts in: access, dossier, messaging. Not under libs/migrations itself, which every
-- service applies: identity owns the spaces, and the others never read them.
CREATE TABLE space_lifecycle (
    ins        text PRIMARY KEY,
    status     text NOT NULL CHECK (status IN ('open', 'closed')),
    changed_at timestamptz NOT NULL     -- when identity made the change (the event's own time)
);
