-- DOC_07: a held-back document's two-week notice and one-month release, one deadline each per
-- document (`subject`: the document's id).
ALTER TABLE deadlines DROP CONSTRAINT deadlines_kind_check;
ALTER TABLE deadlines ADD CONSTRAINT deadlines_kind_check
    CHECK (kind IN ('space_opening', 'space_purge', 'proxy_end', 'held_back_notice',
                    'held_back_release'));
