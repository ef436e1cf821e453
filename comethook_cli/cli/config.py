"""`comethook config show`: each setting in effect and where it came from, for every section or for one command line
(cli/projectfile.py reads the file; this re-parses a command line the same way and reports each value's source).

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from comethook_cli.cli.app import App, funnel
from comethook_cli.cli.options import JsonOut
from comethook_cli.cli.project import Loaded, active
from comethook_cli.cli.projectfile import IMPLICIT_ENV, TARGETS, Key, Path_, implicit_env, keys, redact, without_unset
from comethook_cli.engine import configfile
from comethook_cli.errors import UsageError

app = App()  # what the root group takes this command from
config_app = App(help="The project file (comethook.toml): what is in effect, and from where.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command(
    "show", context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "allow_interspersed_args": False}
)
@funnel
def config_show(
    ctx: typer.Context,
    command: Annotated[
        list[str] | None,
        typer.Argument(metavar="[COMMAND [FLAGS]]...", help="A command line, e.g. `listen --port 9000`: its settings only."),
    ] = None,
    json_out: JsonOut = False,
    changed: Annotated[bool, typer.Option("--changed", help="Only the settings that are not at their default.")] = False,
) -> None:
    """Show each setting in effect and where it came from: flag, env, file:line or default (secrets redacted)."""
    show(ctx, [*(command or []), *ctx.args], json_out, changed)


# --- the rows ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One effective setting: where it is set in the file, its value, and where that value came from."""

    section: str
    key: str
    value: Any
    source: str


def rows(ctx: typer.Context, args: Sequence[str]) -> list[Row]:
    """Every file key's effective value and source, for every section (no args) or for one command line."""
    loaded = active() or Loaded()
    known = keys(ctx)
    found: list[Row] = []
    seen: set[tuple[str, str]] = set()
    wanted: Path_ | None = None
    command_args: list[str] = []
    if args:
        wanted, command_args = _split_command(ctx, list(args))
    parsed: dict[Path_, Any] = {}
    for section, table in known.items():
        for key, targets in table.items():
            for target in targets:
                if wanted is not None and target.path != wanted:
                    continue
                if (section, key) in seen or not target.positive:
                    continue
                if target.path not in parsed:
                    parsed[target.path] = _parse(ctx, target.path, command_args if target.path == wanted else [])
                seen.add((section, key))
                found.append(_row(section, key, target, parsed[target.path], loaded))
    if loaded.inline_rules is not None and wanted in (None, ("listen",)) and loaded.file and loaded.rules_setting:
        where = loaded.file.where(loaded.rules_setting)
        inline = Row("listen", "rules", f"{len(loaded.inline_rules)} inline rule(s)", where)
        found = [inline if r.section == "listen" and r.key == "rules" and r.source == "default" else r for r in found]
    if loaded.inline_moderation is not None and wanted in (None, ("emulate",)) and loaded.file and loaded.moderation_setting:
        where = loaded.file.where(loaded.moderation_setting)
        words = Row("emulate", "moderation", f"{len(loaded.inline_moderation)} inline rule(s)", where)
        found = [words if r.section == "emulate" and r.key == "moderation" and r.source == "default" else r for r in found]
    return found


def _split_command(ctx: typer.Context, args: list[str]) -> tuple[Path_, list[str]]:
    """`listen --port 9` → (("listen",), ["--port", "9"]); `history list -n 5` → (("history", "list"), [...])."""
    command: Any = ctx.find_root().command
    path: list[str] = []
    while args and hasattr(command, "get_command"):
        name = args[0]
        sub = command.get_command(ctx, name)
        if sub is None:
            names = list(command.list_commands(ctx))
            close = difflib.get_close_matches(name, names, n=1)
            raise UsageError(f"Unknown command {' '.join([*path, name])!r}.",
                             f"Did you mean {close[0]!r}?" if close else f"Commands: {', '.join(names)}.")  # fmt: skip
        path.append(name)
        args = args[1:]
        command = sub
    configured = {p for targets in TARGETS.values() for p, _ in targets}
    if tuple(path) not in configured:
        shown = ", ".join(" ".join(p) for p in sorted(configured))
        raise UsageError(f"`comethook {' '.join(path)}` takes no settings from the project file.", f"These do: {shown}.")
    return tuple(path), args


def _parse(ctx: typer.Context, path: Path_, args: list[str]) -> typer.Context:
    """A command line parsed as the command would parse it (values and their sources), without running anything."""
    parent: Any = ctx.find_root()
    command: Any = parent.command
    defaults: Any = without_unset(parent.default_map or {})
    for depth, part in enumerate(path):
        command = command.get_command(parent, part)
        last = depth == len(path) - 1
        defaults = defaults.get(part) if isinstance(defaults, dict) else None
        parent = command.make_context(
            part, args if last else [], parent=parent, default_map=defaults, resilient_parsing=not last or not args
        )
    return parent  # type: ignore[no-any-return]


def _row(section: str, key: str, target: Key, parsed: Any, loaded: Loaded) -> Row:
    name = target.param.name
    value = parsed.params.get(name)
    source = parsed.get_parameter_source(name)
    kind = source.name if source is not None else "DEFAULT"
    if kind == "COMMANDLINE":
        where = "flag"
    elif kind == "ENVIRONMENT":
        envvar = target.param.envvar
        where = f"env {envvar if isinstance(envvar, str) else ', '.join(envvar or [])}"
    elif kind == "DEFAULT_MAP" and (target.path, name) in loaded.origins and loaded.file is not None:
        setting = loaded.origins[(target.path, name)]
        where = loaded.file.where(setting) + (f" (env {setting.env})" if setting.env else "")
    elif name == "ngrok_authtoken" and implicit_env(name):
        value, where = os.environ[IMPLICIT_ENV[name]], f"env {IMPLICIT_ENV[name]}"
    else:
        where = "default"
    unset = [s for s in loaded.unset if s.section == section and s.key == key]
    if unset and where == "default" and loaded.file is not None:
        where = f"{loaded.file.where(unset[0])} (env {unset[0].env} is not set)"
    gated = [g for g in loaded.gated if g.setting.section == section and g.setting.key == key]
    if gated and where == "default" and loaded.file is not None:
        return Row(section, key, gated[0].shown, f"{loaded.file.where(gated[0].setting)} (not trusted: {gated[0].command})")
    return Row(section, key, redact(key, value), where)


def show(ctx: typer.Context, args: Sequence[str], json_out: bool, changed: bool = False) -> None:
    """`comethook config show [COMMAND [FLAGS]]`: each setting, its value and its source."""
    from comethook_cli.outputs import wire
    from comethook_cli.outputs.escapes import safe
    from comethook_cli.outputs.terminal import Renderer

    found = [row for row in rows(ctx, args) if not changed or row.source != "default"]
    loaded = active()
    if json_out:
        for row in found:
            typer.echo(wire.encode(wire.Setting(row.section, row.key, row.value, row.source)))
        return
    file = loaded.file if loaded is not None else None
    Renderer().note(f"Project file: {configfile.display_path(file.path)}" if file else "No project file (comethook.toml).")
    width = max((len(f"[{r.section}] {r.key}") for r in found), default=0)
    for row in found:
        text = "-" if row.value is None else _text(row.value)
        typer.echo(f"{f'[{row.section}] {row.key}':<{width}}  {safe(text):<24}  {row.source}")


def _text(value: Any) -> str:
    if value == "":
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value) or "-"
    return str(value)
