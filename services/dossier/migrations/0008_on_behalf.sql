-- DOC_03: a document deposited on behalf of its author names who deposited it.
ALTER TABLE documents
    ADD COLUMN deposited_by_id   text,
    ADD COLUMN deposited_by_name text;
