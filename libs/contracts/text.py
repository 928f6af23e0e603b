"""Free text as it may enter the system: bounded, and free of control characters.

    from libs.contracts.text import Name, NoControlCharacters, Text

    class Rename(Contract):
        first_name: Name            # 1..100 characters
        note: Text | None = None    # 1..300 characters
        bio: Annotated[str, StringConstraints(max_length=2000), NoControlCharacters]

Refused (an `invalid_input` error at the edge): anything longer than the bound, and any control
or invisible formatting character — C0/C1 controls (NUL, CR, LF, TAB, ESC, ...), format
characters (bidi overrides, zero-width), line/paragraph separators, surrogates, private-use and
unassigned code points. Leading and trailing spaces are stripped before the length is checked.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

# Unicode general categories refused in text: Cc control, Cf format, Cs surrogate, Co private
# use, Cn unassigned, Zl line separator, Zp paragraph separator.
_REFUSED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def refuse_control_characters(value: str) -> str:
    for position, char in enumerate(value):
        if unicodedata.category(char) in _REFUSED:
            raise ValueError(
                f"control or invisible character U+{ord(char):04X} at position {position}"
            )
    return value


# For another bound: Annotated[str, StringConstraints(max_length=2000), NoControlCharacters]
NoControlCharacters = AfterValidator(refuse_control_characters)

# 1..300 characters, stripped, no control characters.
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=300),
    NoControlCharacters,
]
# A person's first or last name: 1..100 characters, stripped, no control characters.
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    NoControlCharacters,
]
