"""A service gives a large block (a document, its base64) back to the system once freed,
however large the blocks it freed before (`libs.runtime.large_blocks_returned_when_freed`)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.libc_ver()[0] != "glibc", reason="the threshold is glibc's"
)

# Each in a fresh interpreter: one document of 6 MB freed, then the next one: does it get a
# mapping of its own (given back when freed) or a piece of the heap (kept by the process)?
_SECOND_DOCUMENT_MAPPED = """
import ctypes, sys
from libs.runtime import large_blocks_returned_when_freed
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in "arena ordblks smblks hblks hblkhd"
                "  usmblks fsmblks uordblks fordblks keepcost".split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
if sys.argv[1] == "tuned":
    assert large_blocks_returned_when_freed()
first = bytearray(6_000_000)
del first
second = bytearray(6_000_000)
print(libc.mallinfo2().hblkhd >= 6_000_000)
"""


def _second_document_mapped(mode: str) -> bool:
    done = subprocess.run(
        [sys.executable, "-c", _SECOND_DOCUMENT_MAPPED, mode],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip() == "True"


def test_a_service_gives_every_large_block_back_when_freed() -> None:
    assert _second_document_mapped("tuned")


def test_without_it_glibc_keeps_the_second_document_in_its_heap() -> None:
    # What the setting is for: if glibc stops doing this, the setting can go.
    assert not _second_document_mapped("default")
