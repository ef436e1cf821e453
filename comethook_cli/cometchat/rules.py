"""Canned answers for `listen` when no app is forwarded to: an action, a drop-if pattern, rules, a delay, a status.

Pure functions over data: no file is read here. The adapters read a rules file or `inject:@FILE` and hand over
the parsed JSON; engine/values.py turns what a user writes into these types.

Order: the first matching rule wins; then the drop-if pattern (before_message only); then the action for
before_message. Every other trigger is answered 200 `{}`. The delay and the status apply to every
answer a rule does not set itself.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import re2  # type: ignore[import-untyped]  # google-re2 ships no type hints

from comethook_cli.cometchat.events import get, message_of
from comethook_cli.cometchat.verdict import DROP_ACTION
from comethook_cli.errors import InvalidSetting
from comethook_cli.models import Answer, AnsweredBy, Incoming, replace_surrogates

PASS_BODY = b"{}"
DROP_BODY = json.dumps({"action": DROP_ACTION}).encode()


@dataclass(frozen=True)
class Action:
    """How to answer: a body, and optionally a status and a delay of its own."""

    body: bytes
    label: str
    status: int | None = None
    delay_ms: float | None = None


@dataclass(frozen=True)
class Rule:
    """Match on trigger, sender, receiver and a text regex (all optional, all must hold), then act."""

    action: Action
    trigger: frozenset[str] | None = None
    sender: str | None = None
    receiver: str | None = None
    text: Regex | None = None

    def matches(self, incoming: Incoming, message: dict[str, Any] | None) -> bool:
        """Whether this rule applies to the delivery (`message`: its message_of(), found once for every rule)."""
        if self.trigger is not None and incoming.info.trigger not in self.trigger:
            return False
        if self.sender is not None and get(message, "sender") != self.sender:
            return False
        if self.receiver is not None and get(message, "receiver") != self.receiver:
            return False
        if self.text is not None:
            text = get(message, "data.text")
            return isinstance(text, str) and self.text.search(text)
        return True


#: The most of a message's text a pattern is matched against. CometChat's own message limit is about 64 KB, so a real
#: message is matched whole; a longer text (a stranger's, to a listener on a public tunnel) is matched on its start only.
MATCH_LIMIT = 64 * 1024

#: RE2's own error text → (the construct it lacks, what to write instead), for the message a user sees.
_MISSING = (
    (
        re.compile(r"invalid escape sequence: \\[1-9]|invalid perl operator: \(\?P$"),
        "a backreference (\\1, (?P=name))",
        "match the repeated text itself, or write one rule per case.",
    ),
    (
        re.compile(r"invalid perl operator: \(\?<?[=!]"),
        "a lookahead or lookbehind ((?=, (?!, (?<=, (?<!)",
        "match the text itself; to make an exception, put a rule for it first (the first matching rule wins).",
    ),
    (
        re.compile(r"invalid perl operator: \(\?>|bad repetition operator: [*+?]\+"),
        "an atomic group or possessive repeat",
        "write a plain group or repeat: RE2 never backtracks, so it needs neither.",
    ),
    (re.compile(r"invalid escape sequence: \\Z"), "\\Z", "write \\z for the end of the text."),
    (re.compile(r"invalid perl operator: \(\?[x#]"), "verbose mode or (?#...) comments", "write the pattern without them."),
)


@dataclass(frozen=True)
class Regex:
    """A user's pattern, compiled by RE2: matching takes time linear in the text whatever the pattern, so a
    sender's text can never stall the listener (Python's re backtracks: `(a+)+$` on 28 characters took seconds)."""

    pattern: str
    compiled: Any = field(repr=False, compare=False)

    def search(self, text: str) -> bool:
        """Whether the pattern matches anywhere in the text (in its first MATCH_LIMIT characters)."""
        # RE2 matches UTF-8, which cannot hold a lone surrogate (JSON can: "\ud800"): it is matched as U+FFFD.
        return self.compiled.search(replace_surrogates(text[:MATCH_LIMIT])) is not None


def compile_regex(pattern: str, where: str) -> Regex:
    """A regex in RE2's syntax (Python's, less backreferences and lookaround), or an InvalidSetting that says where it
    came from (`where`, as the adapter names it)."""
    options = re2.Options()
    options.log_errors = False  # RE2 would print its own line on stderr; the usage error says it once
    try:
        return Regex(pattern, re2.compile(replace_surrogates(pattern), options))
    except re2.error as error:
        shown = repr(pattern[:80]) + ("…" if len(pattern) > 80 else "")  # a pattern can be as long as its file
        reason = error.args[0].decode("utf-8", "replace") if error.args and isinstance(error.args[0], bytes) else str(error)
        for found, construct, instead in _MISSING:
            if found.search(reason):
                raise _invalid(
                    where,
                    f": {shown} uses {construct}, which comethook's regex engine (RE2) does not support.",
                    f"RE2 matches in linear time so a sender's text cannot stall the listener; {instead}",
                ) from None
        raise _invalid(
            where,
            f": invalid regular expression {shown}: {reason[:200]}.",
            "Check the pattern's syntax (RE2, close to Python's re: https://github.com/google/re2/wiki/Syntax).",
        ) from None


def parse_rules(entries: Any, where: str) -> list[Rule]:
    """Rules from their JSON entries (a --rules file's list, or [[listen.rules]] written inline); `where` names them in
    errors as the adapter does (InvalidSetting of the `rules` setting)."""
    if not isinstance(entries, Sequence) or isinstance(entries, (str, bytes)):
        raise _invalid(where, " must hold a JSON list of rules.", "The rules file format: docs/guides/moderation.md.")
    return [_rule(entry, f"{where} rule {n}") for n, entry in enumerate(entries, start=1)]


def canned(spec: str) -> Action | None:
    """The action `pass` or `drop` names (the `respond` setting's and a rule's); None for any other text."""
    return _PASS if spec == "pass" else _DROP if spec == "drop" else None


def http_status(code: object, where: str | None = None) -> int:
    """An HTTP status code (100-599) for a canned answer: the `status` setting's, or the `status` key of the rule
    `where` names. InvalidSetting otherwise."""
    if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
        if where is None:
            raise InvalidSetting(
                "status", " is not an HTTP status code.", "Use 100-599, e.g. {example}.", value=code, example=503
            )
        raise _invalid(where, ": status must be an HTTP status code (100-599).", 'e.g. {"status": 503}')
    return code


def _invalid(where: str, problem: str, hint: str) -> InvalidSetting:
    """A bad rule: the `rules` setting, named as the adapter named the rule (`--rules hooks.json rule 2`)."""
    return InvalidSetting("rules", problem, hint, label=where)


def _rule(entry: Any, where: str) -> Rule:
    if not isinstance(entry, dict) or "action" not in entry or not isinstance(entry.get("match", {}), dict):
        raise _invalid(where, ': needs an object with "match" (object) and "action".', 'e.g. {"match": {}, "action": "pass"}')
    match = entry.get("match", {})
    unknown = set(match) - {"trigger", "sender", "receiver", "text"}
    if unknown:
        raise _invalid(
            where, f": unknown match key(s) {', '.join(sorted(unknown))}.", "Match on trigger, sender, receiver, text."
        )
    trigger = match.get("trigger")
    triggers = frozenset([trigger] if isinstance(trigger, str) else trigger) if trigger is not None else None
    text = compile_regex(match["text"], where) if isinstance(match.get("text"), str) else None
    return Rule(_action(entry["action"], where), triggers, match.get("sender"), match.get("receiver"), text)


def _action(spec: Any, where: str) -> Action:
    if isinstance(spec, str):
        named = canned(spec)
        if named is None:
            raise _invalid(where, f": unknown action {spec!r}.", 'Use pass, drop, or an object such as {"inject": {...}}.')
        return named
    if not isinstance(spec, dict):
        raise _invalid(where, ": the action must be a string or an object.", 'e.g. "drop" or {"status": 500}')
    unknown = set(spec) - {"pass", "drop", "inject", "body", "status", "delay_ms"}
    if unknown:
        raise _invalid(
            where, f": unknown action key(s) {', '.join(sorted(unknown))}.", "Use pass, drop, inject, body, status, delay_ms."
        )
    if "inject" in spec:
        if not isinstance(spec["inject"], dict):
            raise _invalid(where, ": inject needs a JSON object.", 'e.g. {"inject": {"flag": true}}')
        base = Action(json.dumps(spec["inject"]).encode(), "inject")
    elif spec.get("drop"):
        base = _DROP
    elif "body" in spec:
        body = spec["body"]
        base = Action(body.encode() if isinstance(body, str) else json.dumps(body).encode(), "body")
    else:
        base = _PASS
    status = spec.get("status")
    if status is not None:
        http_status(status, where)
    delay = spec.get("delay_ms")
    if delay is not None and (not isinstance(delay, (int, float)) or delay < 0):
        raise _invalid(where, ": delay_ms must be a number of milliseconds.", 'e.g. {"delay_ms": 2500}')
    return Action(base.body, base.label, status, delay)


#: The answer to a delivery nothing else decides.
_PASS = Action(PASS_BODY, "pass")
_DROP = Action(DROP_BODY, "drop")
#: How many answers a Responder keeps made (one per rule and status is the most a session uses).
ANSWERS_KEPT = 64


class Responder:
    """Decides the answer to each delivery from the canned options and rules."""

    def __init__(
        self,
        action: Action | None = None,
        drop_if: Regex | None = None,
        rules: Sequence[Rule] = (),
        delay: float = 0,
        status: int = 200,
    ) -> None:
        self.action = action or Action(PASS_BODY, "pass")
        self.drop_if = drop_if
        self.rules = tuple(rules)
        #: Seconds.
        self.delay = delay
        self.status = status
        self._answers: dict[tuple[str, int], tuple[Action, Answer]] = {}

    def decide(self, incoming: Incoming) -> tuple[Action, str, AnsweredBy]:
        """(action, who decided, as text and as a type) for one delivery."""
        message = message_of(incoming.payload) if self.rules or self.drop_if is not None else None
        for number, rule in enumerate(self.rules, start=1):
            if rule.matches(incoming, message):
                return rule.action, f"rule {number}", AnsweredBy.RULE
        if incoming.info.trigger == "before_message":
            text = get(message, "data.text")
            if self.drop_if is not None and isinstance(text, str) and self.drop_if.search(text):
                return _DROP, "--drop-if", AnsweredBy.CANNED
            return self.action, f"--respond {self.action.label}", AnsweredBy.CANNED
        return _PASS, "default", AnsweredBy.CANNED

    async def __call__(self, incoming: Incoming) -> Answer:
        """The answer, after any configured delay."""
        action, decided_by, outcome = self.decide(incoming)
        delay = action.delay_ms / 1000 if action.delay_ms is not None else self.delay
        if delay:
            await asyncio.sleep(delay)
        status = action.status if action.status is not None else self.status
        # The same few answers go to every delivery: each is made once (an Answer never changes), and made again when
        # its action does (the inspector changes a running session's answers).
        key = (decided_by, status)
        made = self._answers.get(key)
        if made is not None and made[0] is action:
            return made[1]
        answer = Answer(status, action.body, answered_by=f"comethook ({decided_by})", outcome=outcome)
        if len(self._answers) >= ANSWERS_KEPT:
            self._answers.clear()
        self._answers[key] = (action, answer)
        return answer

    def describe(self) -> str:
        """One line for the banner: how before_message gets answered."""
        parts = [f"{self.action.label} ({self.action.body.decode()})"]
        if self.drop_if is not None:
            parts.append(f"drop if text matches /{self.drop_if.pattern}/")
        if self.rules:
            parts.append(f"{len(self.rules)} rule(s) first")
        if self.delay:
            parts.append(f"after {self.delay * 1000:g} ms")
        if self.status != 200:
            parts.append(f"with HTTP {self.status}")
        return ", ".join(parts)
