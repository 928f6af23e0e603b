"""What the notifier deletes for a purged holder (RET_01): their alerts and digests, the
deliveries of both (a delivery still pending is dropped: there is no one left to tell), the
channels and zone they had, and what it knows of the space."""

from __future__ import annotations

from libs import spaces
from libs.purge import Purge

PURGE = Purge(
    tables=(
        (
            "mails",
            "DELETE FROM mails WHERE alert_id IN (SELECT alert_id FROM alerts WHERE ins = $1"
            " UNION ALL SELECT digest_id FROM digests WHERE ins = $1)",
        ),
        ("alerts", "DELETE FROM alerts WHERE ins = $1"),
        ("digests", "DELETE FROM digests WHERE ins = $1"),
        ("contacts", "DELETE FROM contacts WHERE ins = $1"),
        spaces.PURGE_TABLE,
    ),
    newer_space=spaces.opened_since,
)
