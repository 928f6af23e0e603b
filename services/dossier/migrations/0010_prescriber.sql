-- MSG_02: the professional who prescribed what a document reports, when the deposit names one
-- (their identifier): the deposit is sent to them by secure messaging too. Kept with the
-- document (and with an upload until it completes), as the deposit said it.
ALTER TABLE documents ADD COLUMN prescriber_id text;
ALTER TABLE uploads ADD COLUMN prescriber_id text;
