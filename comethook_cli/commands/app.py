"""The Typer classes every comethook command is built from: help laid out for the terminal's width, and
click's usage errors (a bad number, an unknown option) said like every other error, with a hint, exit 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

try:  # Typer 0.24 and later carry click inside; before, click is a package of its own
    from typer._click import Context
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover
    from click import Context  # type: ignore[no-redef, assignment, unused-ignore]
    from click.exceptions import ClickException, UsageError  # type: ignore[no-redef, assignment, unused-ignore]

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

    def format_help(self, ctx: Context, formatter: Any) -> None:
        """Our own help page (outputs.terminal renders it)."""
        from comethook_cli.outputs.terminal import Renderer

        pieces = self.collect_usage_pieces(ctx)
        rows = _rows(self.get_params(ctx), ctx)
        panels: dict[str, list[tuple[str, str]]] = {}
        for panel, names, text in rows:
            panels.setdefault(panel, []).append((names, text))
        order = [*PANEL_ORDER, *[p for p in panels if p not in PANEL_ORDER]]
        Renderer().help_page(
            f"{_program(ctx)} {' '.join(pieces)}",
            " ".join((self.help or "").split()),
            [(name, panels[name]) for name in order if name in panels],
        )


def _program(ctx: Context) -> str:
    """`comethook listen`, whatever the program was started as (python -m comethook_cli, a test runner)."""
    words = ctx.command_path.split()
    depth = 0
    node: Context | None = ctx
    while node is not None and node.parent is not None:
        depth += 1
        node = node.parent
    return " ".join(["comethook", *words[len(words) - depth :]]) if depth else "comethook"


class Group(TyperGroup):
    """The command group: help laid out like a command's, and click's usage errors become an `Error:` line and a
    `Hint:` line, exit 2, like every error."""

    def format_help(self, ctx: Context, formatter: Any) -> None:
        """The group's help: usage, description, options, then its commands with their one-line help."""
        from comethook_cli.outputs.terminal import Renderer

        options = [(names, text) for _, names, text in _rows(self.get_params(ctx), ctx)]
        commands = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not getattr(command, "hidden", False):
                commands.append((name, " ".join((command.help or "").split("\n\n")[0].split())))
        Renderer().help_page(
            f"{_program(ctx)} [OPTIONS] COMMAND [ARGS]...",
            " ".join((self.help or "").split()),
            [("Options", options), ("Commands", commands)],
        )

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
                report_usage(error)
            sys.exit(int(error.exit_code))
        except ClickException as error:
            if not standalone_mode:
                raise
            from comethook_cli.outputs.terminal import Renderer

            Renderer().error(error.format_message(), "Run the command with --help to see how it is used.")
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


def report_usage(error: UsageError) -> None:
    """`Error: Invalid value for '--port' …` and `Hint: see comethook listen --help`."""
    from comethook_cli.outputs.terminal import Renderer

    where = _program(error.ctx) if error.ctx is not None else "comethook"
    wanted = "its commands" if error.format_message().startswith("No such command") else "what each option takes"
    hint = f"See `{where} --help` for {wanted}."
    Renderer().error(error.format_message(), hint)


class App(typer.Typer):
    """typer.Typer whose commands and groups are the classes above."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cls=Group, **kwargs)

    def command(self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any) -> Callable[..., Any]:
        """A command with width-aware help (unless another class is asked for)."""
        return super().command(name, cls=cls or Command, **kwargs)
