-- NTF_01 / NTF_04: the time zone the holder's alerts tell times in (an IANA name, checked by the
-- command), told to the notifier with the channels (`ContactChanged.time_zone`). Overseas
-- holders choose theirs (America/Guadeloupe, Indian/Reunion, …); everyone else reads Paris time.
ALTER TABLE persons ADD COLUMN time_zone text NOT NULL DEFAULT 'Europe/Paris';
