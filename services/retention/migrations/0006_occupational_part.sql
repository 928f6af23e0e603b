-- RET_03: the occupational health part's own deadline (forty years after the last visit, ten
-- years after death).
ALTER TABLE deadlines DROP CONSTRAINT deadlines_kind_check;
ALTER TABLE deadlines ADD CONSTRAINT deadlines_kind_check
    CHECK (kind IN ('space_opening', 'space_purge', 'proxy_end', 'held_back_notice',
                    'held_back_release', 'occupational_part'));
