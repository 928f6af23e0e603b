-- Contact details leave the notifier: it keeps which channels a holder has (a coarse fact from
-- ContactChanged v2) and asks identity for the address when it sends (GetAlertContact).
ALTER TABLE contacts ADD COLUMN channels text[] NOT NULL DEFAULT '{}';
UPDATE contacts SET channels = array_remove(
    ARRAY[CASE WHEN email IS NOT NULL THEN 'email' END, CASE WHEN phone IS NOT NULL THEN 'sms' END],
    NULL);
ALTER TABLE contacts DROP COLUMN display_name, DROP COLUMN email, DROP COLUMN phone;

-- The mail outbox keeps no address, subject or body: they are built when the mail is sent,
-- from the alert and identity's answer. A finished row records its outcome and is deleted
-- `mail_retention_days` after (see docs/sign-in-and-contacts.md); the alert itself stays.
ALTER TABLE mails DROP COLUMN to_address, DROP COLUMN subject, DROP COLUMN body;
ALTER TABLE mails ADD COLUMN outcome text CHECK (outcome IN ('sent', 'no_address'));
UPDATE mails SET outcome = 'sent' WHERE sent_at IS NOT NULL;
CREATE INDEX mails_finished ON mails (sent_at) WHERE sent_at IS NOT NULL;
