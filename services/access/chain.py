"""Traces no one can rewrite (ACC_03): each holder's traces form a hash chain, pure functions.

A trace's leaf is the SHA-256 of its canonical form (its fields, in `TRACE_FIELDS` order, as
compact JSON); the chain's hash at trace n is SHA-256(hash at n-1 || leaf n), from 32 zero
bytes. Editing a trace changes its leaf; deleting one leaves a gap in `seq` or breaks the link
of the next; deleting the newest leaves the chain short of its head. `verify` says where.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

GENESIS = bytes(32)
TRACE_FIELDS = (
    "trace_id",
    "decision_id",
    "ins",
    "at",
    "actor_kind",
    "actor_id",
    "actor_name",
    "actor_profession",
    "action",
    "document_type",
    "outcome",
    "rule",
    "reason",
    "matrix_version",
    "emergency",
    "purpose",
    "correlation_id",
)


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def trace_leaf(trace: Mapping[str, Any]) -> bytes:
    form = json.dumps(
        [_canonical(trace[f]) for f in TRACE_FIELDS], separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(form.encode()).digest()


def link(previous: bytes, leaf: bytes) -> bytes:
    return hashlib.sha256(previous + leaf).digest()


@dataclass(frozen=True)
class Break:
    """Where a holder's chain stops being what was written."""

    ins: str
    seq: int
    problem: str

    def __str__(self) -> str:
        return f"{self.ins}: trace {self.seq}: {self.problem}"


def verify(
    ins: str, traces: Iterable[Mapping[str, Any]], head_seq: int, head_hash: bytes
) -> Break | None:
    """The first break in a holder's chain (traces in `seq` order), or None if intact."""
    previous, expected = GENESIS, 1
    for trace in traces:
        seq = trace["seq"]
        if seq != expected:
            return Break(ins, expected, f"missing (the chain jumps to {seq})")
        if link(previous, trace_leaf(trace)) != trace["hash"]:
            return Break(ins, seq, "altered (its content no longer matches its hash)")
        previous, expected = trace["hash"], seq + 1
    if expected - 1 != head_seq:
        return Break(ins, expected, f"missing (the chain ends before its head at {head_seq})")
    if previous != head_hash:
        return Break(ins, head_seq, "altered (the chain's head does not match its last trace)")
    return None
