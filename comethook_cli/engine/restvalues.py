"""The parsers of engine/values.py for the REST side: what `trigger` asserts (`--expect`) and how `emulate` runs
(`--on-hook-failure`, `--triggers`, the quirks, `--allow-host`). The same contract: user text → domain values, each
checked here once, pure, errors.InvalidSetting naming the setting in domain terms."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from enum import StrEnum

from comethook_cli.errors import InvalidSetting

# --- trigger -----------------------------------------------------------------------------------------------


class TriggerExpectation(StrEnum):
    """What `trigger` asserts came of a call: pass/inject/drop judge the before_message answer; dropped: the message
    was dropped (REST answer or verdict); delivered: every expected webhook arrived; ok: the REST call succeeded (and,
    waiting, all arrived); blocked: moderation blocked the message (moderation_engine_blocked, or ERR_BLOCKED_BY_EXTENSION)."""

    OK = "ok"
    DELIVERED = "delivered"
    PASS = "pass"
    INJECT = "inject"
    DROP = "drop"
    DROPPED = "dropped"
    BLOCKED = "blocked"

    @property
    def needs_deliveries(self) -> bool:
        """Whether only the deliveries in `listen`'s history can tell, so the call must wait for them."""
        return self in (TriggerExpectation.DELIVERED, TriggerExpectation.BLOCKED)


def trigger_expectation(spec: str | None) -> TriggerExpectation | None:
    """`trigger --expect` → what is asserted (None: nothing)."""
    if spec is None:
        return None
    try:
        return TriggerExpectation(spec)
    except ValueError:
        choices = ", ".join(TriggerExpectation)
        raise InvalidSetting("expect", ".", f"Use one of: {choices}.", value=spec, before="Unknown ") from None


# --- emulate -----------------------------------------------------------------------------------------------


class HookFailure(StrEnum):
    """What the emulator does with a message when before_message times out, fails or answers something invalid."""

    PASS = "pass"
    DROP = "drop"


def hook_failure(spec: str) -> HookFailure:
    """pass or drop."""
    try:
        return HookFailure(spec)
    except ValueError:
        raise InvalidSetting("on_hook_failure", ".", "Use pass or drop.", value=spec, before="Unknown ") from None


def ticked_triggers(spec: str | None) -> frozenset[str] | None:
    """`all` or NAME,NAME → the triggers ticked for a webhook in the (emulated) Dashboard (None: all of them); the
    Dashboard's name of a legacy trigger ticks the trigger its deliveries carry."""
    from comethook_cli.cometchat.payloads import TRIGGER_ALIASES, trigger_names

    if not spec or spec.strip() == "all":
        return None
    chosen = frozenset(TRIGGER_ALIASES.get(t.strip(), t.strip()) for t in spec.split(",") if t.strip())
    unknown = sorted(chosen - set(trigger_names()))
    if unknown:
        raise InvalidSetting(
            "triggers", f": {', '.join(unknown)}.", "`comethook payloads list` shows them all.", before="Unknown trigger(s) in "
        )
    return chosen


def quirks_off(on: Iterable[str], off: Iterable[str], known: Iterable[str]) -> tuple[str, ...]:
    """The production quirks `off` turns off, less those `on` turns back on (so a flag beats comethook.toml), in the
    order of `known` (engine/emulator/quirks.py's QUIRKS, given by the adapter: the emulator's package imports the
    configs, so this module cannot import it); "did you mean" for an unknown name (the setting is `quirk`, whichever
    list named it)."""
    on, off, names = tuple(on), tuple(off), list(known)
    for name in (*on, *off):
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
            hint = (f"Did you mean {close[0]!r}? " if close else "") + f"The quirks are: {', '.join(names)}."
            raise InvalidSetting("quirk", ".", hint, value=name, before="Unknown ")
    return tuple(name for name in names if name in off and name not in on)


def allowed_hosts(names: Iterable[str]) -> tuple[str, ...]:
    """Host names the emulator also answers to: bare names (no scheme, port or path), lowercased."""
    names = tuple(names)
    for name in names:
        if not name or not all(c.isalnum() or c in "-._" for c in name):
            raise InvalidSetting(
                "allow_host", " is not a host name.", "Give the name alone, e.g. {example}.", value=name, example="emulator"
            )
    return tuple(name.lower() for name in names)
