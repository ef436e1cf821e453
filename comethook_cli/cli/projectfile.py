"""The project file in the CLI: its keys checked against the option declarations, its values as click defaults.

Precedence (flag > environment variable > file > default) is click's own order for a parameter's value
(command line > envvar > `default_map` > default): the root callback reads the file, checks every key,
type and value against the option a key names, and sets `ctx.default_map`. A key is the long flag name,
so a flag and its key can never disagree about types or limits, and an option added to a command is a
file key without more code. `comethook config show` re-parses a command line the same way and reports
where each value came from (cli/config.py); `comethook init` writes a commented starter file (cli/init.py).
"""

from __future__ import annotations

import difflib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from comethook_cli.cli import project
from comethook_cli.cli.options import BUILDER, DELIVERING, HISTORY, TUNNEL
from comethook_cli.cli.project import CommandPath, Loaded
from comethook_cli.engine import configfile, trust
from comethook_cli.engine.configfile import ProjectFile, Setting
from comethook_cli.errors import UsageError
from comethook_cli.models import REDACTED

Path_ = CommandPath
#: Which commands each section configures, and which of their options (None: all of them). The first is the one
#: `config show` reads a section's values from.
TARGETS: dict[str, tuple[tuple[Path_, frozenset[str] | None], ...]] = {
    "listen": ((("listen",), None),),
    "tunnel": ((("listen",), frozenset(TUNNEL)),),
    "history": ((("listen",), frozenset(HISTORY)), (("history", "list"), None), (("history", "show"), None),
                (("history", "export"), None)),
    "send": ((("send",), None), (("replay",), frozenset(DELIVERING)), (("payloads", "show"), frozenset({*BUILDER, "legacy"}))),
    "check": ((("check",), None),),
    # The quirks and moderation only: the rest of emulate's options (a webhook URL, a bind address, a state file)
    # would need trust gates.
    "emulate": ((("emulate",), frozenset({"quirk", "no_quirk", "moderation", "fixtures"})),),
    # The project's fixtures directory, for every command that finds fixtures (it is read, and `save` writes there).
    "payloads": tuple((path, frozenset({"fixtures"})) for path in (("payloads", "list"), ("payloads", "show"),
                      ("payloads", "save"), ("send",), ("check",), ("emulate",))),
}  # fmt: skip
#: Options of a command whose section takes all of them that belong to another section: listen's [tunnel] and
#: [history] options, and the fixtures directory ([payloads]).
ELSEWHERE = {"listen": frozenset(TUNNEL) | frozenset(HISTORY), "send": frozenset({"fixtures"}),
             "check": frozenset({"fixtures"})}  # fmt: skip
#: Keys whose literal value is a secret: a warning when it sits in a file inside a git repository.
SECRETS = frozenset({"basic-auth", "ngrok-authtoken"})
#: Keys that name a file: a relative path is relative to the project file, not to where comethook runs.
PATHS = frozenset({"rules", "basic-auth-file", "ngrok-path", "junit", "body", "output", "moderation", "fixtures"})
#: Variables that options read without click knowing (the tunnel reads NGROK_AUTHTOKEN itself): they beat the file.
IMPLICIT_ENV = {"ngrok_authtoken": "NGROK_AUTHTOKEN", "basic_auth_file": "COMETHOOK_BASIC_AUTH"}


@dataclass(frozen=True)
class Key:
    """One file key of one command: the option it sets, and whether it is the option's --no- form."""

    path: Path_
    param: Any  # typer's click Option
    positive: bool = True


# --- reading and checking ----------------------------------------------------------------------------


def command_at(ctx: typer.Context, path: Path_) -> Any:
    """The click command at a path below the root group (`("history", "list")`)."""
    command: Any = ctx.find_root().command
    for part in path:
        command = command.get_command(ctx, part)
    return command


def keys(ctx: typer.Context) -> dict[str, dict[str, list[Key]]]:
    """Section → file key → the options it sets, from the commands' own declarations."""
    found: dict[str, dict[str, list[Key]]] = {}
    for section, targets in TARGETS.items():
        table = found.setdefault(section, {})
        for path, names in targets:
            command = command_at(ctx, path)
            excluded = ELSEWHERE.get(section, frozenset()) if path == (section,) and names is None else frozenset()
            for param in command.params:
                if param.param_type_name != "option" or param.name in excluded or (names is not None and param.name not in names):
                    continue
                # An option's first long name is its key; an alias (`--yes` for --install-ngrok) is not a second one.
                for opt in [o for o in param.opts if o.startswith("--") and o != "--help"][:1]:
                    table.setdefault(opt[2:], []).append(Key(path, param))
                for opt in param.secondary_opts:
                    if opt.startswith("--"):
                        table.setdefault(opt[2:], []).append(Key(path, param, positive=False))
    return found


def load(ctx: typer.Context, config: str | None, no_config: bool) -> Loaded:
    """Find and read the project file, check it against the option declarations, build the default_map."""
    if no_config:
        return Loaded()
    skipped: list[Path] = []
    path = Path(config).expanduser() if config else configfile.find(skipped=skipped)
    if path is None:
        return Loaded(skipped=skipped)
    if config and not path.is_file():
        raise UsageError(f"--config {config!r}: no such file.", "Check the path, or run `comethook init` to write one.")
    try:
        file = configfile.read(path)
    except UsageError as error:  # not TOML, not UTF-8, an unknown section: every command that reads the file says it
        return Loaded(blocked=blocked_commands({"*": _with_way_out(error)}), skipped=skipped)
    loaded = Loaded(file, trusted=trust.is_trusted(file.path, file.digest) or trust.ci_trusted(), found=not config)
    broken: dict[str, Exception] = {}
    _apply_all(ctx, loaded, file, broken)
    loaded.blocked = blocked_commands(broken)
    return loaded


def _apply_all(ctx: typer.Context, loaded: Loaded, file: ProjectFile, broken: dict[str, Exception]) -> None:
    """Apply every setting; a bad one marks its section broken (the first error in each section is kept)."""
    known = keys(ctx)
    for setting in file.settings:
        try:
            _apply(ctx, loaded, file, known, setting)
        except UsageError as error:
            broken.setdefault(setting.section, _with_way_out(error))
        except RecursionError:  # a value nested deeper than a check (or json.dumps of an inline rule) follows
            broken.setdefault(setting.section, _with_way_out(configfile.too_deep(file.path)))


def _with_way_out(error: UsageError) -> UsageError:
    """The file's error, with the way to run without the file in its hint."""
    hint = (error.hint or "").rstrip()
    return UsageError(error.message, f"{hint} Or leave the file out: comethook --no-config COMMAND ...".strip())


def blocked_commands(broken: dict[str, Exception]) -> dict[Path_, Exception]:
    """The commands that read a broken section (all that read the file, for "*"), each with the error to say."""
    blocked: dict[Path_, Exception] = {}
    for section, targets in TARGETS.items():
        error = broken.get(section) or broken.get("*")
        for target, _ in targets:
            if error is not None:
                blocked.setdefault(target, error)
    if broken:
        blocked[("config", "show")] = next(iter(broken.values()))
    return blocked


def _apply(
    ctx: typer.Context, loaded: Loaded, file: ProjectFile, known: dict[str, dict[str, list[Key]]], setting: Setting
) -> None:
    where = f"{file.where(setting)}: {file.label(setting.section)} {setting.key}"
    table = known[setting.section]
    if setting.section == "listen" and setting.key == "rules" and isinstance(setting.value, list):
        _inline_rules(loaded, file, setting)
        return
    if setting.section == "emulate" and setting.key == "moderation" and isinstance(setting.value, list):
        from comethook_cli.cometchat.moderation import parse_moderation

        parse_moderation(setting.value, f"{file.where(setting)}: {file.label('emulate')} moderation")  # UsageError, exit 2
        loaded.inline_moderation, loaded.moderation_setting = list(setting.value), setting
        return
    if setting.key not in table:
        raise UsageError(f"{file.where(setting)}: unknown key {setting.key!r} in {file.label(setting.section)}.",
                         _hint(setting, table, known))  # fmt: skip
    if setting.key in SECRETS and setting.env is None and _has_secret(setting) and configfile.in_git_repository(file.path):
        loaded.warnings.append(
            f"{where} holds a literal secret in a file inside a git repository: anyone with the repository can read it. "
            f'Read it from the environment instead: {setting.key} = {{ env = "NAME" }}.'
        )
    if setting.unset:
        loaded.unset.append(setting)
    for key in table[setting.key]:
        if implicit_env(key.param.name):
            continue  # the environment beats the file
        if setting.unset:
            value: Any = Unset(where, setting)
        else:
            value = _checked(command_at(ctx, key.path), key, setting, where)
        if setting.key in PATHS and isinstance(value, str) and value != "-":
            value = str((file.path.parent / Path(value).expanduser()).resolve())
        elif setting.key == "respond" and isinstance(value, str) and value.startswith("inject:@"):
            value = "inject:@" + str((file.path.parent / Path(value[8:]).expanduser()).resolve())
        if not setting.unset and not loaded.trusted:
            value = _gate(loaded, file, setting, value)
        node = loaded.default_map
        for part in key.path:
            node = node.setdefault(part, {})
        node[key.param.name] = value
        loaded.origins[(key.path, key.param.name)] = setting


def _gate(loaded: Loaded, file: ProjectFile, setting: Setting, value: Any) -> Any:
    """The value, or an Untrusted marker in its place when it needs a trust this file does not have."""
    if not trust.needs_trust(setting.key, value, file.path.parent.resolve(), literal=setting.env is None):
        return value
    gate = next((g for g in loaded.gated if g.setting is setting), None)
    if gate is None:
        used = value if isinstance(value, str) and value != setting.value else None  # a path, made absolute
        place = f"{file.where(setting)}: {file.label(setting.section)}"
        gate = Untrusted(place, setting, redact(setting.key, setting.value), trust_command(file.path, loaded.found), used)
        loaded.gated.append(gate)
    return gate


def trust_command(path: Path, found: bool) -> str:
    """`comethook trust`, with the file's path when it is not the one found from here (--config, or named)."""
    import shlex

    return "comethook trust" if found else f"comethook trust {shlex.quote(configfile.display_path(path))}"


class Deferred:
    """A default_map entry that click calls only when neither a flag nor the option's own variable gave a value."""


class Untrusted(Deferred):
    """The default of an option whose file value needs the user's trust (engine/trust.py): used, it is a usage error
    that names the key, shows the value (secrets redacted) and the command that trusts the file; overridden by a flag
    or a variable, it is never looked at."""

    def __init__(self, where: str, setting: Setting, shown: Any, command: str, resolved: str | None = None) -> None:
        self.where = where
        self.setting = setting
        #: The value as written (URL passwords and secrets redacted), and the path it names when that differs.
        self.shown = shown
        self.resolved = resolved
        self.command = command

    def describe(self) -> str:
        """`key = "value"` (and the path it resolves to) and what it would do."""
        value = json.dumps(self.shown, ensure_ascii=False, default=str)
        where = f" ({self.resolved})" if self.resolved and self.setting.env is None else ""
        return f"{self.setting.key} = {value}{where} {self.reason}"

    def _unused(self) -> bool:
        """Whether what was already parsed makes the value moot: no tunnel (the agent and its token are never used), or
        Basic credentials given on the command line (they beat a basic-auth-file in the file, see project.prefer_given).
        click resolves the options given on the command line first, and these before the ones they make moot."""
        from comethook_cli.cli.app import current_context

        ctx = current_context()
        params = ctx.params if ctx is not None else {}
        if self.setting.key in ("ngrok-path", "ngrok-authtoken"):
            return params.get("tunnel") is False
        return self.setting.key == "basic-auth-file" and bool(params.get("basic_auth"))

    @property
    def reason(self) -> str:
        """What the key would do, in words."""
        return trust.GATED[self.setting.key]

    def __call__(self) -> Any:
        from comethook_cli.cli.app import HintedUsageError

        if self._unused():
            return None  # the option's own default (None for each key _unused names)
        raise HintedUsageError(
            f"{self.where} {self.describe()}, and this project file is not trusted.",
            f"Read the file; if you trust it, run `{self.command}` (it lists what the file asks for). "
            f"Or pass --{self.setting.key} yourself, or run with --no-config.",
        )


class Unset(Deferred):
    """The default of an option whose file value names an unset variable: click asks for it only when neither a flag
    nor the option's own variable gave a value, and then it is a usage error rather than a silent fall back to none."""

    def __init__(self, where: str, setting: Setting) -> None:
        self.where = where
        self.setting = setting

    def __call__(self) -> Any:
        raise typer.BadParameter(
            f"{self.where} reads ${self.setting.env}, which is not set. "
            f"Set {self.setting.env}, pass --{self.setting.key}, or run with --no-config."
        )


def without_unset(default_map: dict[str, Any]) -> dict[str, Any]:
    """The default_map with the Unset and Untrusted markers left out (`config show` reports them instead of failing)."""
    return {k: without_unset(v) if isinstance(v, dict) else v for k, v in default_map.items() if not isinstance(v, Deferred)}


def implicit_env(name: str) -> str | None:
    """The variable an option reads on its own when it is set (it then beats the file)."""
    variable = IMPLICIT_ENV.get(name)
    return variable if variable is not None and variable in os.environ else None


def _has_secret(setting: Setting) -> bool:
    value = setting.value
    return isinstance(value, str) and bool(value) and (setting.key != "basic-auth" or ":" in value)  # USER alone is no secret


def _hint(setting: Setting, table: dict[str, list[Key]], known: dict[str, dict[str, list[Key]]]) -> str:
    homes = [section for section, keys_ in known.items() if setting.key in keys_ and section != setting.section]
    if homes:
        return f"{setting.key!r} belongs in [{homes[0]}]."
    close = difflib.get_close_matches(setting.key, list(table), n=1, cutoff=0.6)
    known_keys = f"Keys are the long flag names (`comethook {TARGETS[setting.section][0][0][0]} --help`)."
    return f"Did you mean {close[0]!r}? {known_keys}" if close else known_keys


_KINDS = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array", dict: "a table"}


def _kind(value: Any) -> str:
    return next((name for kind, name in _KINDS.items() if isinstance(value, kind)), type(value).__name__)


def _checked(command: Any, key: Key, setting: Setting, where: str) -> Any:
    """The setting's value as the option takes it: its kind checked (TOML is typed: "8000" is no port), then the
    option's own conversion and limits."""
    param, raw = key.param, setting.value
    many = param.multiple or param.nargs == -1
    items = raw if isinstance(raw, list) else [raw]
    if isinstance(raw, list) and not many:
        raise UsageError(f"{where}: expected one value, got an array.", f"Write {setting.key} = VALUE.")
    if not key.positive:
        if not isinstance(raw, bool):
            raise UsageError(f"{where}: expected a boolean, got {_kind(raw)}.", f"Write {setting.key} = true.")
        raw = not raw
    if any(isinstance(item, float) and not math.isfinite(item) for item in items):
        raise _not_finite(where, key, setting, raw)  # before click's int() of inf raises OverflowError
    try:
        value = param.process_value(typer.Context(command), items if many else raw)
    except typer.BadParameter as error:
        raise UsageError(
            f"{where}: {error.message}.", f"See `comethook {' '.join(key.path)} --help` for --{setting.key}."
        ) from None
    converted = list(value) if many else [value]
    if any(isinstance(taken, float) and not math.isfinite(taken) for taken in converted):
        raise _not_finite(where, key, setting, raw)  # `{ env = "NAME" }` holding "inf" or "nan"
    if setting.env is None:  # a variable's value is always a string: the option's conversion is the check
        for given, taken in zip(items if key.positive else [raw], converted, strict=False):
            if _kind(given) != _kind(taken) and not (isinstance(taken, float) and _kind(given) == "an integer"):
                raise UsageError(f"{where}: expected {_kind(taken)}, got {_kind(given)} ({given!r}).",
                                 f"See `comethook {' '.join(key.path)} --help` for --{setting.key}.")  # fmt: skip
    return list(value) if many else value


def _not_finite(where: str, key: Key, setting: Setting, raw: Any) -> UsageError:
    return UsageError(
        f"{where}: expected a finite number, got {raw!r}.",
        f"Write a number such as 30 or 0.5 (inf and nan mean nothing here); see `comethook {' '.join(key.path)} --help`.",
    )


def _inline_rules(loaded: Loaded, file: ProjectFile, setting: Setting) -> None:
    """[[listen.rules]] parsed once, here, so an error names the file and line (UsageError, exit 2)."""
    from comethook_cli.engine import values

    loaded.inline_rules = values.rules(setting.value, f"{file.where(setting)}: [[{file.prefix}listen.rules]]")
    loaded.rules_setting = setting


def apply(ctx: typer.Context, config: str | None, no_config: bool) -> None:
    """The root callback's part: read the project file into ctx.default_map (UsageError for any bad key or value)."""
    project.activate(None)
    loaded = load(ctx, config, no_config)
    if loaded.warnings or loaded.skipped:
        from comethook_cli.outputs.terminal import Renderer

        for warning in loaded.warnings:
            Renderer().warning(warning)
        for directory in loaded.skipped:
            Renderer().note(skipped_note(directory))
    ctx.default_map = {**(ctx.default_map or {}), **loaded.default_map}
    project.activate(loaded)


def skipped_note(directory: Path) -> str:
    """The one line for a project file the search passed over (a shared /tmp, another user's directory)."""
    import shlex

    named = directory / configfile.FILE_NAME
    if not named.is_file():
        named = directory / configfile.PYPROJECT
    try:
        why = "anyone may write there" if directory.stat().st_mode & 0o002 else "another user owns that directory"
    except OSError:
        why = "that directory cannot be looked at"
    return f"Not reading {named}: {why} (`comethook --config {shlex.quote(str(named))}` would)."


URLS = frozenset({"to", "forward-to", "route", "api-base"})


def redact(key: str, value: Any) -> Any:
    """A value as `config show` (and a trust refusal) may print it: secrets, credential headers and URL passwords hidden."""
    if isinstance(value, (tuple, list)):
        return [redact(key, item) for item in value]
    if not isinstance(value, str) or not value:
        return value
    if key in SECRETS:
        user, sep, _ = value.partition(":")
        return f"{user}:{REDACTED}" if key == "basic-auth" and sep else (value if key == "basic-auth" else REDACTED)
    if key == "header":
        from comethook_cli.models import is_secret_header

        name, sep, _ = value.partition(":")
        return f"{name}: {REDACTED}" if sep and is_secret_header(name.strip()) else value
    if key in URLS:
        from comethook_cli.engine.urls import redact_url

        trigger, sep, url = value.partition("=") if key == "route" else ("", "", value)
        return f"{trigger}{sep}{redact_url(url)}"
    return value


# --- trust --------------------------------------------------------------------------------------------


def requests(ctx: typer.Context, path: Path, found: bool) -> tuple[ProjectFile, list[Untrusted]]:
    """A project file and what in it needs trust (read as if it had none): for `comethook trust`."""
    file = configfile.read(path)
    loaded = Loaded(file, found=found)
    broken: dict[str, Exception] = {}
    _apply_all(ctx, loaded, file, broken)
    if broken:  # trust is asked for the file as a whole: a broken one is fixed first
        raise next(iter(broken.values()))
    return file, list(loaded.gated)
