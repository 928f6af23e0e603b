"""What identity deletes for a purged holder (RET_01): the person, their space, their proxies
(and the proxies' sign-in state), contacts, requests, physician and care-team records.

Afterwards the INS is unknown here and can be registered again, as a new person.
"""

from __future__ import annotations

from datetime import datetime

from libs.db import Conn
from libs.purge import Purge

# The sign-in subjects of the holder and of their proxies (`proxy:<id>`, see service.issue_code).
_SUBJECTS = "(SELECT $1::text UNION ALL SELECT 'proxy:' || proxy_id FROM proxies WHERE ins = $1)"


async def newer_space(conn: Conn, ins: str, closed_at: datetime) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM spaces WHERE ins = $1"
            " AND (status <> 'closed' OR closed_at > $2))",
            ins,
            closed_at,
        )
    )


PURGE = Purge(
    tables=(
        ("sign_in_codes", f"DELETE FROM sign_in_codes WHERE subject IN {_SUBJECTS}"),
        ("challenges", f"DELETE FROM challenges WHERE subject IN {_SUBJECTS}"),
        (
            "rate_windows",
            f"DELETE FROM rate_windows WHERE key IN (SELECT 'ins:' || s FROM {_SUBJECTS} s(s))",
        ),
        ("sign_in_guards", f"DELETE FROM sign_in_guards WHERE ins IN {_SUBJECTS}"),
        ("personal_contacts", "DELETE FROM personal_contacts WHERE ins = $1"),
        ("access_requests", "DELETE FROM access_requests WHERE ins = $1"),
        ("treating_physicians", "DELETE FROM treating_physicians WHERE ins = $1"),
        ("care_teams", "DELETE FROM care_teams WHERE ins = $1"),
        ("proxies", "DELETE FROM proxies WHERE ins = $1"),
        ("spaces", "DELETE FROM spaces WHERE ins = $1"),
        ("persons", "DELETE FROM persons WHERE ins = $1"),
    ),
    newer_space=newer_space,
)
