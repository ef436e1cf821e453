"""Production's known quirks: what live CometChat does that its docs do not say, reproduced by `emulate` so a handler
that passes in CI meets in CI what it will meet in production. All are on by default; `--no-quirk NAME` turns one off
(engine.restvalues.quirks_off checks the names given against this table).

One table: a quirk's name, what it does, and the evidence for it (`emulate --help` and docs/reference/cli/emulate.md print this).
"""

from __future__ import annotations

from dataclasses import dataclass


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


def help_text() -> str:
    """The quirks as `emulate --help` lists them: name, what it does, evidence."""
    return " ".join(f"{q.name}: {q.does}; {q.evidence}." for q in QUIRKS.values())
