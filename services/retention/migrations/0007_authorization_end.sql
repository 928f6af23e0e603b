-- ACC_14: the end of a time-limited authorization, a deadline the holder sees.
ALTER TABLE deadlines DROP CONSTRAINT deadlines_kind_check;
ALTER TABLE deadlines ADD CONSTRAINT deadlines_kind_check
    CHECK (kind IN ('space_opening', 'space_purge', 'proxy_end', 'held_back_notice',
                    'held_back_release', 'occupational_part', 'authorization_end'));
