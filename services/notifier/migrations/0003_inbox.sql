-- NTF_04: what became of each alert beyond the inbox, for the holder to read: 'in_space' (no
-- channel: the inbox only, SPC_06), 'pending' (being sent, retried after a failure), 'sent',
-- 'no_address' (the holder had no address by then: the inbox only).
ALTER TABLE alerts ADD COLUMN delivery text NOT NULL DEFAULT 'in_space'
    CHECK (delivery IN ('in_space', 'pending', 'sent', 'no_address'));
UPDATE alerts a SET delivery = coalesce(m.outcome, 'pending')
FROM mails m WHERE m.alert_id = a.alert_id;
