-- Titles are health data ("Suivi VIH - charge virale"): sealed at rest like the content (DOC_11),
-- AES-256-GCM under their own nonce (never the content's), with associated data binding each to
-- its document, its holder and its being a title.
--
-- No data is migrated: there is no production data yet, and SQL cannot seal (the key is only in
-- the dossier's environment). The clear column is dropped; a document deposited before this
-- migration (only demo or test databases have them) keeps its sealed content and reads with a
-- null title. Every deposit from now on writes a sealed title.
ALTER TABLE documents DROP COLUMN title;
ALTER TABLE documents
    ADD COLUMN title_nonce bytea,
    ADD COLUMN title_sealed bytea,
    ADD CONSTRAINT documents_title_sealed_whole CHECK (
        (title_nonce IS NULL AND title_sealed IS NULL)
        OR (length(title_nonce) = 12 AND title_sealed IS NOT NULL)
    );
