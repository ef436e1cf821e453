"""`comethook trust`: let a project file's keys that run a program, touch files outside the project or send data
elsewhere take effect (engine/trust.py decides which; cli/config.py reads the file); `--show` and `--revoke`.

Like `mise trust` and `direnv allow`: no prompt (scripts and CI run it as is), and the record is of the file's exact
content, so an edit (a `git pull`) asks again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from comethook_cli.cli import projectfile as project
from comethook_cli.cli.app import App, funnel
from comethook_cli.cli.project import active
from comethook_cli.engine import configfile
from comethook_cli.engine import trust as trusting
from comethook_cli.errors import UsageError

app = App()  # what the root group takes this command from


@app.command()
@funnel
def trust(
    ctx: typer.Context,
    file: Annotated[
        str | None,
        typer.Argument(metavar="FILE", help="The project file (default: the comethook.toml or pyproject.toml found here)."),
    ] = None,
    show: Annotated[bool, typer.Option("--show", help="Only list what the file asks for, and whether it is trusted.")] = False,
    revoke: Annotated[bool, typer.Option("--revoke", help="Forget the trust: its gated keys are refused again.")] = False,
) -> None:
    """Trust this project file as it is now: its keys that run a program, reach outside its directory or send data elsewhere.

    Without trust, such a key is refused (exit 2) and the rest of the file works. The trust is for the file's exact
    content: an edit asks again. In CI, CI=true with COMETHOOK_TRUST_PROJECT=1 trusts the checkout instead.
    """
    # Trust (or with --show only list, or with --revoke forget) the project file found here, or FILE.
    from comethook_cli.outputs.terminal import Renderer

    if show and revoke:
        raise UsageError("--show and --revoke do opposite things.", "Give one of them.")
    path = _target(file)
    shown = configfile.display_path(path)
    if revoke:
        had = trusting.revoke(path)
        Renderer().note(f"{shown} is no longer trusted." if had else f"{shown} was not trusted: nothing to revoke.", "bold")
        return
    loaded = active()
    found = file is None and loaded is not None and loaded.found
    read, asks = project.requests(ctx, path, found)
    before = trusting.trusted_digest(path)
    state = "trusted" if before == read.digest else "changed since you trusted it" if before else "not trusted"
    if show:
        Renderer().note(f"{shown} ({state}){':' if asks else ''}", "bold")
    else:
        trusting.trust(path, read.digest)
        Renderer().note(f"Trusted {shown} as it is now (sha256 {read.digest[:12]}); an edit to it asks again.", "bold")
    for gate in asks:
        typer.echo(f"{read.where(gate.setting)}  {read.label(gate.setting.section)} {gate.describe()}")
    if not asks:
        Renderer().note("Nothing in it runs a program, reaches outside its directory or sends data off this machine.")
    elif show and state != "trusted":
        Renderer().note(f"These take effect once you run `{project.trust_command(path, found)}`.")


def _target(file: str | None) -> Path:
    """FILE, or the project file this run found (or was given with --config)."""
    if file is not None:
        path = Path(file).expanduser()
        if path.is_dir():
            path = path / configfile.FILE_NAME
        if not path.is_file():
            raise UsageError(f"{file!r}: no such file.", "Name a comethook.toml, or a pyproject.toml with [tool.comethook].")
        return path.resolve()
    loaded = active()
    if loaded is None or loaded.file is None:
        raise UsageError(
            "No project file here to trust (comethook.toml, or [tool.comethook] in pyproject.toml).",
            "Run it in the project, or name the file: `comethook trust path/to/comethook.toml`.",
        )
    return loaded.file.path.resolve()
