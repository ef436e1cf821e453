"""Moderation rules for `emulate --moderation`: words and patterns a message's text is judged by, as CometChat's
rule-based moderation would (the Dashboard's keyword and regex rules; their engine is CometChat's, not this one).

One entry per line of a file, or per item of `[emulate] moderation = [...]` in comethook.toml:

    # a comment, and blank lines, are skipped
    darn                      a word: case-insensitive, matched as a whole word
    /\\b(?:buy|cheap)\\s+pills\\b/   a pattern between slashes: RE2 syntax (as --rules), searched anywhere
    profanity-filter: heck    either one, with the rule's id before `: ` (else the id is rule-N, N its entry number)

The first rule that matches blocks the message and names itself in moderation_engine_blocked. Pure data in, data
out: the adapters read the file (cli/options.read_user_file).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from comethook_cli.cometchat.rules import Regex, compile_regex
from comethook_cli.errors import UsageError

#: A few hundred rules is a large Dashboard; these bound what a hostile project file can make the emulator hold.
MAX_RULES = 1000
MAX_ENTRY_CHARS = 1000
#: RE2's compiled size of all the rules together (`\pL{100}` alone is about 120,000): memory and start-up stay small
#: whatever a project file holds. A thousand word rules take about 2,700,000.
MAX_PROGRAM_SIZE = 4_000_000
_NAMED = re.compile(r"([A-Za-z0-9_-]{1,100}):\s+(\S.*)")
#: Letters, digits and _ in any script: a word rule matches only where neither side continues the word.
_EDGE_BEFORE, _EDGE_AFTER = r"(?:^|[^\pL\pN_])", r"(?:[^\pL\pN_]|$)"


@dataclass(frozen=True)
class ModerationRule:
    """One rule: its id (what moderation_engine_blocked names), the entry as written, and its compiled pattern."""

    id: str
    entry: str
    pattern: Regex

    def matches(self, text: str) -> bool:
        """Whether the text breaks this rule."""
        return self.pattern.search(text)


def entries_of(text: str) -> list[str]:
    """A rules file's entries: its lines, stripped, without blank lines and `#` comments."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def parse_moderation(entries: Any, where: str) -> tuple[ModerationRule, ...]:
    """Rules from their entries (a file's lines, or the project file's list); `where` names them in errors."""
    if not isinstance(entries, Sequence) or isinstance(entries, (str, bytes)):
        raise UsageError(f"{where} must be a list of words and /patterns/.", 'e.g. moderation = ["darn", "/sp[a4]m/"]')
    if len(entries) > MAX_RULES:
        raise UsageError(f"{where} holds {len(entries)} rules, more than {MAX_RULES}.", "Keep the rules a test needs.")
    rules: list[ModerationRule] = []
    size = 0
    for number, entry in enumerate(entries, start=1):
        here = f"{where} rule {number}"
        if not isinstance(entry, str) or not entry.strip() or len(entry) > MAX_ENTRY_CHARS:
            raise UsageError(f"{here}: expected a word or /pattern/ of 1 to {MAX_ENTRY_CHARS} characters.", "e.g. darn")
        named = _NAMED.fullmatch(entry.strip())
        rule_id, body = (named.group(1), named.group(2).strip()) if named else (f"rule-{number}", entry.strip())
        if len(body) >= 2 and body.startswith("/") and body.endswith("/"):
            pattern = compile_regex(body[1:-1], here)
        else:
            pattern = compile_regex(f"(?i){_EDGE_BEFORE}{re.escape(body)}{_EDGE_AFTER}", here)
        size += int(getattr(pattern.compiled, "programsize", 0))
        if size > MAX_PROGRAM_SIZE:
            raise UsageError(
                f"{here}: the rules up to this one compile to more than RE2's budget for them ({MAX_PROGRAM_SIZE:,}).",
                "Use fewer or simpler patterns (a large repeat such as \\pL{400} compiles big).",
            )
        rules.append(ModerationRule(rule_id, body, pattern))
    ids = [rule.id for rule in rules]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise UsageError(f"{where}: the rule id {twice[0]!r} is given twice.", "Give each rule its own id.")
    return tuple(rules)


def first_match(rules: Sequence[ModerationRule], text: Any) -> ModerationRule | None:
    """The first rule the text breaks (None: approved; a message without text breaks none)."""
    if not isinstance(text, str):
        return None
    return next((rule for rule in rules if rule.matches(text)), None)
