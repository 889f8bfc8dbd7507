"""Text read from an upstream API, made fit for every database and log (issue 18 finding 7).

PostgreSQL refuses a NUL character in any text or JSON value (DataError), and no database takes
half of a surrogate pair (a JSON "\\ud800" decodes to one): one such character in a job number
stopped a tenant's runs. SQLite takes NUL, so only PostgreSQL showed it. The parsers apply these
helpers where upstream text enters the program:

* a key (a job number, a KOT employee code or key) with a control character is refused, never
  cleaned: "A\\x000042" cleaned to "A0042" could name another employee. ``has_control`` finds it,
  ``shown`` names it safely; the item is kept, flagged, with its key unusable.
* free text (names, e-mail, remote messages) is cleaned: ``clean``.
"""

from __future__ import annotations

import re

# Unicode's control characters (C0, DEL, C1) and lone surrogates.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
SHOWN_MAX_CHARS = 200


def has_control(value: str) -> bool:
    """Whether ``value`` holds a character no key may hold (see the module docstring)."""
    return _CONTROL.search(value) is not None


def clean(value: str) -> str:
    """Free text without control characters: a tab or line break becomes a space, any other
    control character (NUL included) and a lone surrogate are removed."""
    if not has_control(value):
        return value
    return _CONTROL.sub(lambda m: " " if m.group().isspace() else "", value)


def shown(value: str, limit: int = SHOWN_MAX_CHARS) -> str:
    """A refused key as people may read it: each control character (and the backslash, so two
    keys never look alike) written as an escape, cut to ``limit`` characters."""
    text = re.sub(
        "[\\\\\x00-\x1f\x7f-\x9f\ud800-\udfff]",
        lambda m: "\\\\" if m.group() == "\\" else _escape(m.group()),
        value,
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
