"""Production's known quirks: what live CometChat does that its docs do not say, reproduced by `emulate` so a handler
that passes in CI meets in CI what it will meet in production. All are on by default; `--no-quirk NAME` turns one off.

One table: a quirk's name, what it does, and the evidence for it (`emulate --help` and docs/reference/cli/emulate.md print this).
"""

from __future__ import annotations

from dataclasses import dataclass

from comethook_cli.errors import UsageError


@dataclass(frozen=True)
class Quirk:
    """One production quirk: its name (the flag's value), what the emulator does, and why it believes so."""

    name: str
    does: str
    evidence: str


QUIRKS: dict[str, Quirk] = {
    q.name: q
    for q in (
        Quirk(
            "ban-actor-in-members",
            "with onBehalfOf, a ban or unban webhook carries the acting user in data.members, not the target",
            "seen live by a third-party QA harness (cometchat-webhook-automation), still on 2026-09-17",
        ),
    )
}


def disabled(on: list[str] | tuple[str, ...], off: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The quirks `--no-quirk` turns off, less those `--quirk` turns back on (so a flag beats comethook.toml);
    UsageError with "did you mean" for an unknown name."""
    import difflib

    for name in (*on, *off):
        if name not in QUIRKS:
            close = difflib.get_close_matches(name, list(QUIRKS), n=1, cutoff=0.6)
            known = ", ".join(QUIRKS)
            raise UsageError(
                f"Unknown quirk {name!r}.", (f"Did you mean {close[0]!r}? " if close else "") + f"The quirks are: {known}."
            )
    return tuple(name for name in QUIRKS if name in off and name not in on)


def help_text() -> str:
    """The quirks as `emulate --help` lists them: name, what it does, evidence."""
    return " ".join(f"{q.name}: {q.does}; {q.evidence}." for q in QUIRKS.values())
