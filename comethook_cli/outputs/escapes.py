"""Text from the network made inert for a terminal: `safe()` shows every character that could drive one escaped.

The human display, `config show` and `check --github` pass everything a delivery, an answer or a file supplies through
it, with one compiled regex. No rich here (the `--json` outputs never import it).
"""

from __future__ import annotations

import re

from comethook_cli.outputs.wire import INVISIBLE

# What a terminal must never receive raw from the network: C0 controls (ESC starts CSI/OSC sequences,
# CR rewrites the line), DEL, C1 controls (0x9b is a one-byte CSI on some terminals), the bidi
# controls that reorder what is shown (U+202E ...), the line/paragraph separators, and lone
# surrogates (which cannot even be encoded). Zero-width joiners and variation selectors stay:
# emoji need them, and they cannot move the cursor or reorder text.
_UNSAFE_LINE = re.compile(f"[\x00-\x1f{INVISIBLE}]")
_UNSAFE_BLOCK = re.compile(f"[\x00-\x08\x0b-\x1f{INVISIBLE}]")  # newline and tab keep their meaning
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def safe(text: str, multiline: bool = False) -> str:
    """Text from the network made inert for a terminal: control and bidi characters shown escaped (`\\x1b`).

    One-line layouts escape newline and tab too; `multiline` (bodies) keeps them. A backslash is left
    as it is (doubling every one would garble paths and regexes): `--json` is the exact form."""
    return (_UNSAFE_BLOCK if multiline else _UNSAFE_LINE).sub(_escape, text)
