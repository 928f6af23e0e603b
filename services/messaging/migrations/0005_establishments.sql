-- MSG_01: a thread with an establishment (by FINESS), read and answered by its staff of the
-- moment, as identity tells them (StaffJoined / StaffLeft).
ALTER TABLE thread_participants DROP CONSTRAINT thread_participants_kind_check;
ALTER TABLE thread_participants ADD CONSTRAINT thread_participants_kind_check
    CHECK (kind IN ('holder', 'professional', 'establishment'));

CREATE TABLE establishment_staff (
    finess     text NOT NULL,
    rpps       text NOT NULL,
    present    boolean NOT NULL,
    changed_at timestamptz NOT NULL,   -- identity's time of the change: the latest wins
    PRIMARY KEY (finess, rpps)
);
CREATE INDEX establishment_staff_by_rpps ON establishment_staff (rpps) WHERE present;
