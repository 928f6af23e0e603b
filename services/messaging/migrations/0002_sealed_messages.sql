-- Subjects and bodies are health data ("Résultats de votre biopsie"): sealed at rest with
-- AES-256-GCM under messaging's own key, each under its own nonce, with associated data binding
-- it to its message, its holder and its being a subject or a body.
--
-- No data is migrated: there is no production data yet, and SQL cannot seal (the key is only in
-- messaging's environment). The clear columns are dropped; a message written before this
-- migration (only demo or test databases have them) lists with a null subject and body. Every
-- message from now on is written sealed.
ALTER TABLE messages DROP COLUMN subject, DROP COLUMN body;
ALTER TABLE messages
    ADD COLUMN subject_nonce bytea,
    ADD COLUMN subject_sealed bytea,
    ADD COLUMN body_nonce bytea,
    ADD COLUMN body_sealed bytea,
    ADD CONSTRAINT messages_sealed_whole CHECK (
        (subject_nonce IS NULL AND subject_sealed IS NULL
            AND body_nonce IS NULL AND body_sealed IS NULL)
        OR (length(subject_nonce) = 12 AND subject_sealed IS NOT NULL
            AND length(body_nonce) = 12 AND body_sealed IS NOT NULL
            AND subject_nonce <> body_nonce)
    );
