"""What access deletes for a purged holder (RET_01): every authorization, block, proxy and
episode it knows of, and the holder's traces with their chain head.

Traces are append-only; their trigger lets a DELETE through only in a transaction that says it
is a purge (`dmp.purge`, migration 0004), which this one does and nothing else does. The rule's
decision (docs/rules.md, RET_01) is that traces go with the rest: the proof of deletion that
retention keeps says how many there were.
"""

from __future__ import annotations

from libs import spaces
from libs.purge import Purge

PURGE = Purge(
    prepare=("SET LOCAL dmp.purge = 'on'",),
    tables=(
        ("traces", "DELETE FROM traces WHERE ins = $1"),
        ("trace_heads", "DELETE FROM trace_heads WHERE ins = $1"),
        ("authorizations", "DELETE FROM authorizations WHERE ins = $1"),
        ("blocks", "DELETE FROM blocks WHERE ins = $1"),
        ("establishment_authorizations", "DELETE FROM establishment_authorizations WHERE ins = $1"),
        ("establishment_blocks", "DELETE FROM establishment_blocks WHERE ins = $1"),
        ("treating_physicians", "DELETE FROM treating_physicians WHERE ins = $1"),
        ("treating_delegations", "DELETE FROM treating_delegations WHERE ins = $1"),
        ("proxies", "DELETE FROM proxies WHERE ins = $1"),
        ("care_teams", "DELETE FROM care_teams WHERE ins = $1"),
        ("emergency_objections", "DELETE FROM emergency_objections WHERE ins = $1"),
        ("emergency_accesses", "DELETE FROM emergency_accesses WHERE ins = $1"),
        ("app_grants", "DELETE FROM app_grants WHERE ins = $1"),
        ("deceased_holders", "DELETE FROM deceased_holders WHERE ins = $1"),
        spaces.PURGE_TABLE,
    ),
    newer_space=spaces.opened_since,
)
