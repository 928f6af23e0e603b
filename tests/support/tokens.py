"""Tokens as identity would sign them, for tests of one service without identity running."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from libs.tokens import issue_for, private_key


def token_for(
    identity_private: str,
    *,
    sub: str,
    kind: Literal["holder", "professional", "operator"],
    now: datetime,
    name: str = "Claire Martin",
    profession: str | None = None,
) -> str:
    return issue_for(
        private_key(identity_private),
        sub=sub,
        kind=kind,
        name=name,
        profession=profession,
        now=now,
        ttl=timedelta(hours=1),
    )
