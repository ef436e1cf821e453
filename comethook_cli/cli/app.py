"""The Typer classes every comethook command is built from: help laid out for the terminal's width, and
click's usage errors (a bad number, an unknown option) said like every other error, with a hint, exit 2; and the
error funnel every command is wrapped in.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import math
import sys
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any, ClassVar, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

from comethook_cli.errors import ComethookError, ExitCode, InvalidSetting, SettingText

#: click's Context, which Typer's own classes take (typer.Context is a subclass; click's class itself lives in Typer's
#: private module, so the overrides below take any).
Context = Any


def _click_class(name: str) -> Any:
    """One of click's exception classes, found above typer.BadParameter (Typer 0.24 and later carry click inside, in a
    private module; before, click is a package of its own: either way BadParameter derives from them)."""
    return next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == name)


UsageError: Any = _click_class("UsageError")
ClickException: Any = _click_class("ClickException")
BadParameter = typer.BadParameter
F = TypeVar("F", bound=Callable[..., Any])
#: The hint of an error that brings none of its own: every error says what to do next.
DEFAULT_HINTS = {
    ExitCode.USAGE: "Run the command with --help to see what each option takes.",
    ExitCode.ASSERTION: "The output above shows what came back; --json gives it as data.",
    ExitCode.UNREACHABLE: "Is the endpoint running and the URL right?",
    ExitCode.FAILURE: "Run the command with -v (where it has one) to see more.",
}
#: The flag of each setting (errors.InvalidSetting) that is not `--` + the setting's name with dashes.
#: (how the message names it, how the hint's example does).
FLAGS: dict[str, tuple[str | None, str | None]] = {
    "retention": ("--history-max-mb and --history-max-age", None),
    "tunnel_region": ("--region", None),
    "forward_to": ("URL", "--forward-to"),  # "Unsupported URL 'ftp://x'.", as for every URL comethook is given
    "region": ("region", "--region"),  # "Unknown region 'mars'.": --region, COMETCHAT_REGION, a file key, one message
    "header": ("header", "-H"),
    "mention": ("mention", "--mention"),  # a scenario step's key too: the message names it bare
    "users": ("users", "--users"),
}
#: The context of the command whose parameters click is resolving now (see Command.parse_args).
_parsing: contextvars.ContextVar[Any] = contextvars.ContextVar("parsing", default=None)


def funnel(command: F) -> F:
    """The one place that turns errors into a message, a hint and the documented exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("json_out"))
        try:
            return command(*args, **kwargs)
        except ComethookError as error:
            from comethook_cli.outputs.terminal import Renderer

            message, hint = said(error)
            hint = hint or DEFAULT_HINTS.get(error.exit_code, DEFAULT_HINTS[ExitCode.FAILURE])
            if as_json and not error.reported:
                error_record(message, int(error.exit_code), hint)
            Renderer().error(message, hint)
            raise typer.Exit(int(error.exit_code)) from None
        except KeyboardInterrupt:
            from comethook_cli.outputs.terminal import Renderer

            if as_json:
                error_record("Interrupted.", int(ExitCode.INTERRUPTED), None)
            Renderer().note("Interrupted.", style="yellow")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None

    return wrapper  # type: ignore[return-value]


def error_record(message: str, exit_code: int, hint: str | None) -> None:
    """With --json, the error also as one `error` record on stdout (the agent contract: a reader of the NDJSON sees
    why the command ended, with its exit code and hint). A reader already gone costs nothing."""
    from comethook_cli.outputs.wire import Error, encode

    with contextlib.suppress(OSError, ValueError):
        sys.stdout.write(encode(Error(message, exit_code, hint)) + "\n")
        sys.stdout.flush()


def _path_of(ctx: Context) -> tuple[str, ...]:
    """The command's path below the root, e.g. ("history", "list") (the program's own name may be `python -m ...`)."""
    path: list[str] = []
    while ctx.parent is not None:
        path.append(ctx.info_name or "")
        ctx = ctx.parent
    return tuple(reversed(path))


@contextlib.contextmanager
def reader_may_leave() -> Iterator[None]:
    """A reader that closes early (`comethook payloads list | head -5`) ends the command as `send --json | head -1`
    does: exit 0 and nothing on stderr, since what was read was all that was wanted. (click itself would exit 1.)"""
    try:
        yield
    except BrokenPipeError:
        from comethook_cli.outputs.stream import silence

        silence(sys.stdout)
        raise typer.Exit(0) from None


def flagged(error: InvalidSetting) -> tuple[str, str | None]:
    """An invalid setting's (message, hint), naming it as the flag a CLI user gives it (`--status 700`)."""
    name, example = FLAGS.get(error.setting, (None, None))
    return error.named("flag", name, example)


def said(error: ComethookError) -> tuple[str, str | None]:
    """An error's (message, hint) as the CLI says them: each setting named as the flag a CLI user gives it."""
    if isinstance(error, InvalidSetting):
        return flagged(error)
    return as_flags(error.message), as_flags(error.hint) if error.hint is not None else None


def as_flags(text: str) -> str:
    """A text that names settings (errors.SettingText) with their flags; any other text as it is."""
    return text.said("flag") if isinstance(text, SettingText) else text


def flag_warnings(show: Callable[[str], None]) -> Callable[[str], None]:
    """`show` for warnings that name settings (errors.SettingText) as the flags a CLI user gives them."""
    return lambda message: show(as_flags(message))


def current_context() -> typer.Context | None:
    """The context of the command whose parameters are being resolved (a default callable reads what is parsed so far)."""
    found: typer.Context | None = _parsing.get()
    return found


#: Metavars click would print for a value of this type when the option declares none.
_TYPE_NAMES = {"integer": "N", "integer range": "N", "float": "NUMBER", "float range": "NUMBER", "text": "TEXT"}
#: Panels in the order a reader meets them: what the command is about first, the general options last but one.
PANEL_ORDER = ("Arguments", "Options", "Listener", "Answers", "Forwarding", "Tunnel", "History")


def _metavar(param: Any, ctx: Context) -> str:
    """What an option takes (nothing for a flag), or an argument's name: never `<bool>` or `<int range>`."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    if param.metavar:
        return str(param.metavar)
    if param.param_type_name == "argument":
        return (param.name or "").upper()
    kind = str(param.type.name if hasattr(param, "type") else param.display_type(ctx).strip("<>"))
    kind = {"int": "integer", "int range": "integer range", "str": "text"}.get(kind, kind)
    return _TYPE_NAMES.get(kind, kind.upper())


def _help_of(param: Any, ctx: Context) -> str:
    """The help text, then the env var and the default in brackets (as Typer shows them)."""
    text = " ".join((getattr(param, "help", None) or "").split())
    extras = []
    envvar = getattr(param, "envvar", None)
    if envvar and getattr(param, "show_envvar", False):
        extras.append(f"env var: {envvar}")
    default = param.default
    flag = getattr(param, "is_flag", False)
    shown = getattr(param, "show_default", True) is not False and default not in (None, "", (), []) and not flag
    if shown and not callable(default):
        value = f"{default:g}" if isinstance(default, float) else str(default)  # 30, not 30.0
        extras.append(f"default: {value.replace(',', ', ')}")
    return " ".join([text, *(f"[{extra}]" for extra in extras)]).strip()


def _rows(params: Sequence[Any], ctx: Context) -> list[tuple[str, str, str]]:
    """(panel, names and metavar, help) for every parameter shown in help."""
    rows = []
    for param in params:
        if getattr(param, "hidden", False):
            continue
        metavar = _metavar(param, ctx)
        if param.param_type_name == "argument":
            names = metavar
            panel = "Arguments"
        else:
            names = ", ".join(sorted(param.opts, key=lambda o: o.startswith("--")))
            if param.secondary_opts:
                names += " / " + ", ".join(param.secondary_opts)
            if metavar:
                names += f" {metavar}"
            panel = getattr(param, "rich_help_panel", None) or "Options"
        rows.append((panel, names, _help_of(param, ctx)))
    return rows


class Command(TyperCommand):
    """A command whose --help is laid out for the terminal: options grouped in panels, names beside their help
    when there is room and above it when not, every line wrapped at words."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        """click's parsing, then a usage error for inf or nan in any number option (flag, variable or file): click's
        ranges let inf through and every comparison with nan is false, and the int() of either later raises."""
        token = _parsing.set(ctx)
        try:
            rest = super().parse_args(ctx, args)
        finally:
            _parsing.reset(token)
        from comethook_cli.cli.project import refuse_broken

        try:
            refuse_broken(_path_of(ctx))
        except ComethookError as error:  # a broken section of the project file this command reads
            raise HintedUsageError(error.message, error.hint or "") from None
        for param in self.params:
            value = ctx.params.get(param.name or "")
            values = value if isinstance(value, (list, tuple)) else [value]
            if any(isinstance(v, float) and not math.isfinite(v) for v in values):
                raise BadParameter(f"expected a finite number, got {value!r}.", ctx=ctx, param=param)  # type: ignore[arg-type, unused-ignore]
        return rest

    def format_help(self, ctx: Context, formatter: Any) -> None:
        """Our own help page (outputs.helppage lays it out)."""
        from comethook_cli.outputs.helppage import help_page
        from comethook_cli.outputs.terminal import Renderer

        pieces = self.collect_usage_pieces(ctx)
        rows = _rows(self.get_params(ctx), ctx)
        panels: dict[str, list[tuple[str, str]]] = {}
        for panel, names, text in rows:
            panels.setdefault(panel, []).append((names, text))
        order = [*PANEL_ORDER, *[p for p in panels if p not in PANEL_ORDER]]
        help_page(
            Renderer().out,
            f"{_program(ctx)} {' '.join(pieces)}",
            shown_help(self.help),
            [(name, panels[name]) for name in order if name in panels],
        )


def shown_help(text: str | None) -> str:
    """A command's help as the page shows it: one paragraph of words, without what follows a form feed (click's
    convention: a docstring's notes for maintainers, such as why the function is long, go after `\\f`)."""
    return " ".join((text or "").partition("\f")[0].split())


def _program(ctx: Context) -> str:
    """`comethook listen`, whatever the program was started as (python -m comethook_cli, a test runner)."""
    return " ".join(["comethook", *_path_of(ctx)])


class Group(TyperGroup):
    """The command group: help laid out like a command's, and click's usage errors become an `Error:` line and a
    `Hint:` line, exit 2, like every error."""

    def format_help(self, ctx: Context, formatter: Any) -> None:
        """The group's help: usage, description, options, then its commands with their one-line help."""
        from comethook_cli.outputs.helppage import help_page
        from comethook_cli.outputs.terminal import Renderer

        options = [(names, text) for _, names, text in _rows(self.get_params(ctx), ctx)]
        help_page(
            Renderer().out,
            f"{_program(ctx)} [OPTIONS] COMMAND [ARGS]...",
            shown_help(self.help),
            [("Options", options), ("Commands", self.summaries(ctx))],
        )

    def make_context(self, info_name: str | None, args: list[str], parent: Context | None = None, **extra: Any) -> Any:
        """Parse the arguments (this prints --help and --version), ending quietly when stdout's reader is gone."""
        with reader_may_leave():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: Context) -> Any:
        """Run the command, ending quietly when stdout's reader is gone."""
        with reader_may_leave():
            return super().invoke(ctx)

    def summaries(self, ctx: Context) -> list[tuple[str, str]]:
        """Each shown command's name and one-line help, in the order declared."""
        found = [(name, self.summary(ctx, name)) for name in self.list_commands(ctx)]
        return [(name, text) for name, text in found if text is not None]

    def summary(self, ctx: Context, name: str) -> str | None:
        """A command's one-line help (the first paragraph of its help); None for a hidden one."""
        command = self.get_command(ctx, name)
        if command is None or getattr(command, "hidden", False):
            return None
        return shown_help((command.help or "").split("\n\n")[0])

    def main(  # type: ignore[override, unused-ignore]
        self, args: Any = None, prog_name: Any = None, complete_var: Any = None, standalone_mode: bool = True, **kwargs: Any
    ) -> Any:
        """Run the command; report a usage error through the same output as the error funnel."""
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **kwargs)
        except UsageError as error:  # BadParameter, NoSuchOption, MissingParameter ... are UsageErrors
            if not standalone_mode:
                raise
            if type(error).__name__ == "NoArgsIsHelpError":  # `comethook` alone: the help, as click shows it
                error.show()
            else:
                report_usage(error, "--json" in (sys.argv[1:] if args is None else list(args)))
            sys.exit(int(error.exit_code))
        except ClickException as error:
            if not standalone_mode:
                raise
            from comethook_cli.outputs.terminal import Renderer

            hint = "Run the command with --help to see how it is used."
            if "--json" in (sys.argv[1:] if args is None else list(args)):
                error_record(error.format_message(), int(error.exit_code), hint)
            Renderer().error(error.format_message(), hint)
            sys.exit(int(error.exit_code))
        except typer.Abort:
            if not standalone_mode:
                raise
            from comethook_cli.outputs.terminal import Renderer

            Renderer().note("Interrupted.", style="yellow")
            sys.exit(130)
        if standalone_mode:
            sys.exit(result if isinstance(result, int) else 0)
        return result


class HintedUsageError(UsageError):  # type: ignore[misc]
    """A usage error raised while click resolves a parameter, that brings its own hint line."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


def report_usage(error: UsageError, as_json: bool = False) -> None:
    """`Error: Invalid value for '--port' …` and `Hint: see comethook listen --help` (and, with --json, the `error`
    record)."""
    from comethook_cli.outputs.terminal import Renderer

    where = _program(error.ctx) if error.ctx is not None else "comethook"
    wanted = "its commands" if error.format_message().startswith("No such command") else "what each option takes"
    hint = getattr(error, "hint", None) or f"See `{where} --help` for {wanted}."
    longer = _longer_names(error)
    if longer and "Did you mean" not in error.format_message():
        hint = f"Did you mean {' or '.join(longer)}? {hint}"
    if as_json:
        error_record(error.format_message(), int(error.exit_code), hint)
    Renderer().error(error.format_message(), hint)


def _longer_names(error: UsageError) -> list[str]:
    """For an unknown option, the command's options whose name ends with it: `inspect --port` → --inspector-port
    (click's own suggestions only find near spellings)."""
    name = getattr(error, "option_name", None)
    if type(error).__name__ != "NoSuchOption" or not name or error.ctx is None:
        return []
    tail = "-" + name.lstrip("-")
    options = [opt for param in error.ctx.command.params for opt in getattr(param, "opts", ()) if opt.startswith("--")]
    return [opt for opt in options if opt.endswith(tail) and opt != name]


class LazyGroup(Group):
    """A group whose commands are each declared in a module of their own, `<package>.<name>`, imported when the command
    is used (click's "lazily loading subcommands"). What only lists them (--help, a mistyped name's suggestion, the
    completion of names) reads `lazy`, their one-line help, instead: it imports none of them."""

    #: The package of the commands' modules, and each command's one-line help in the order --help lists them.
    package: ClassVar[str] = ""
    lazy: ClassVar[Mapping[str, str]] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._listing = False
        self.commands = _Commands(self.commands, list(self.lazy), self._load)

    def _load(self, name: str) -> Any:
        """The click command `name`, built by Typer from the `app` its module registers it on."""
        module = importlib.import_module(f"{self.package}.{name}")
        return typer.main.get_group(module.app).commands[name]

    def list_commands(self, ctx: Context) -> list[str]:
        """The names alone (TyperGroup's version reads every command, which would import them all)."""
        return list(self.commands)

    def summary(self, ctx: Context, name: str) -> str | None:
        """The table's one-line help for its commands, without importing them."""
        return self.lazy[name] if name in self.lazy else super().summary(ctx, name)

    def get_command(self, ctx: Context, name: str) -> Any:
        """The command `name`; while shell_complete lists names, a stand-in that carries only its one-line help."""
        if self._listing and name in self.lazy:
            return TyperCommand(name, help=self.lazy[name])
        return super().get_command(ctx, name)

    def shell_complete(self, ctx: Context, incomplete: str) -> list[Any]:
        """Command names that start with `incomplete` (with their short help), then the group's options: no imports."""
        self._listing = True
        try:
            return list(super().shell_complete(ctx, incomplete))
        finally:
            self._listing = False


class _Commands(MutableMapping[str, Any]):
    """A group's commands by name: every name known from the start, a command built the first time it is asked for."""

    def __init__(self, built: Mapping[str, Any], names: list[str], load: Callable[[str], Any]) -> None:
        self._built = dict(built)
        self._names = [*built, *(name for name in names if name not in built)]
        self._load = load

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            if name not in self._names:
                raise KeyError(name)
            self._built[name] = self._load(name)
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command
        if name not in self._names:
            self._names.append(name)

    def __delitem__(self, name: str) -> None:
        self._names.remove(name)
        self._built.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._names  # without building it

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._names))

    def __len__(self) -> int:
        return len(self._names)


class App(typer.Typer):
    """typer.Typer whose commands and groups are the classes above. With `lazy` (command name → one-line help), its
    group is a LazyGroup: each command is declared in `package`'s module of that name, imported when it is used."""

    def __init__(self, *, lazy: Mapping[str, str] | None = None, package: str = "", **kwargs: Any) -> None:
        group: type[Group] = Group
        if lazy is not None:
            group = type("Lazy", (LazyGroup,), {"lazy": dict(lazy), "package": package})
        super().__init__(cls=group, **kwargs)

    def command(self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any) -> Callable[..., Any]:
        """A command with width-aware help (unless another class is asked for)."""
        return super().command(name, cls=cls or Command, **kwargs)
