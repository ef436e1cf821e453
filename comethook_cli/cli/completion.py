"""Shell completion (`comethook --install-completion`): trigger names, history ids and payload option values.

Every callback imports what it needs when it runs, so declaring them costs `--help` nothing. A callback
never raises: a broken history file or an odd command line completes nothing instead of printing a traceback
into the user's shell.
"""

from __future__ import annotations

from typing import Any

import typer

Completions = list[tuple[str, str]]


def _matching(incomplete: str, choices: Completions) -> Completions:
    return [(value, help_) for value, help_ in choices if value.startswith(incomplete)]


def triggers(incomplete: str) -> Completions:
    """Trigger names of the catalog, with what each one means."""
    from comethook_cli.cometchat.payloads import catalog

    seen: dict[str, str] = {}
    for template in catalog():
        seen.setdefault(template.trigger, template.description)
    return _matching(incomplete, sorted(seen.items()))


def trigger_list(incomplete: str) -> Completions:
    """`check --triggers`: legacy, current, all, or names separated by commas (the last one is completed)."""
    head, comma, last = incomplete.rpartition(",")
    prefix = head + comma
    choices = [(prefix + name, help_) for name, help_ in triggers(last)]
    if not comma:
        groups = [("legacy", "every legacy trigger"), ("current", "every current trigger"), ("all", "the whole catalog")]
        choices = _matching(incomplete, groups) + choices
    return choices


def history_ids(incomplete: str) -> Completions:
    """Ids of stored exchanges, newest first, with their one-line summary (nothing when there is no history)."""
    try:
        from comethook_cli.engine.history.files import default_path
        from comethook_cli.engine.history.reader import History

        if not default_path().exists():
            return []
        with History() as history:
            page, _ = history.page(None, 200)
    except Exception:  # a damaged or locked history completes nothing rather than breaking the shell
        return []
    return [(e.id, f"{e.info.trigger}: {e.info.summary}"[:80]) for e in page if e.id.startswith(incomplete)]


def message_types(incomplete: str) -> Completions:
    """--type values."""
    from comethook_cli.cometchat.payloads import MESSAGE_TYPES

    return _matching(incomplete, [(kind, "message type") for kind in MESSAGE_TYPES])


def regions(incomplete: str) -> Completions:
    """--region values of an app (send, payloads show)."""
    from comethook_cli.cometchat.payloads import REGIONS

    return _matching(incomplete, [(region, "CometChat app region") for region in REGIONS])


def expectations(incomplete: str) -> Completions:
    """--expect values."""
    from comethook_cli.engine.runs import EXPECTATIONS

    return _matching(incomplete, [(e, "assert the verdict" if e != "ok" else "assert every answer is 2xx") for e in EXPECTATIONS])


def answers(incomplete: str) -> Completions:
    """--respond values."""
    return _matching(
        incomplete, [("pass", "answer {}"), ("drop", "answer do_not_propagate"), ("inject:", "inject:JSON or inject:@FILE")]
    )


def fallbacks(incomplete: str) -> Completions:
    """--fallback values."""
    return _matching(incomplete, [("error", "answer 502"), ("pass", "answer {}"), ("drop", "answer do_not_propagate")])


def export_formats(incomplete: str) -> Completions:
    """history export --format values."""
    return _matching(incomplete, [("ndjson", "one JSON object per line"), ("curl", "curl commands"), ("har", "a HAR file")])


def set_paths(ctx: typer.Context, incomplete: str) -> Completions:
    """--set PATH=: the dotted paths of the body the command line's trigger builds."""
    if "=" in incomplete:
        return []
    try:
        from comethook_cli.cometchat.payloads import BuildOptions, build, find_template, trigger_names

        known = set(trigger_names())
        trigger = next((word for word in _typed_words(ctx) if word in known), None)
        if trigger is None:
            return []
        body = build(find_template(trigger, bool(ctx.params.get("legacy"))), BuildOptions())
    except Exception:  # an odd command line completes nothing
        return []
    return [(path + "=", "set this value") for path in _paths(body) if path.startswith(incomplete)]


def _typed_words(ctx: typer.Context) -> list[str]:
    """The words typed before the `--set` being completed. Click's parse of the command line stops at that `--set`,
    still waiting for its value, before it assigns the arguments: the trigger is in what it left over (ctx.args),
    not in ctx.params (unless it was parsed as the argument after all)."""
    given = ctx.params.get("trigger")
    return [*(word for word in ctx.args if isinstance(word, str)), *([given] if isinstance(given, str) else [])]


def _paths(node: Any, prefix: str = "") -> list[str]:
    if not isinstance(node, dict):
        return []
    found: list[str] = []
    for key, value in node.items():
        path = f"{prefix}{key}"
        found.append(path)
        found += _paths(value, path + ".")
    return found
