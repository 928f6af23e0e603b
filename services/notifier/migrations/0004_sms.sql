-- NTF_04: an alert goes by every channel the holder chose (e-mail, SMS); each channel is done
-- once (a retry after one channel failed never sends the other again). A channel still failing
-- after the ceiling of attempts gives the alert the delivery 'failed' (it stays in the inbox).
ALTER TABLE mails
    ADD COLUMN email_outcome text CHECK (email_outcome IN ('sent', 'given_up')),
    ADD COLUMN sms_outcome   text CHECK (sms_outcome IN ('sent', 'given_up'));
ALTER TABLE mails DROP CONSTRAINT mails_outcome_check;
ALTER TABLE mails ADD CONSTRAINT mails_outcome_check
    CHECK (outcome IN ('sent', 'no_address', 'failed'));
ALTER TABLE alerts DROP CONSTRAINT alerts_delivery_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_delivery_check
    CHECK (delivery IN ('in_space', 'pending', 'sent', 'no_address', 'failed'));
