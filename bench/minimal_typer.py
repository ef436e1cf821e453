"""The start-up baseline: a minimal two-command Typer app."""

import typer

app = typer.Typer()


@app.command()
def hello(name: str = "world") -> None:
    """Say hello."""
    typer.echo(f"hello {name}")


@app.command()
def bye() -> None:
    """Say goodbye."""
    typer.echo("bye")


def _version(value: bool) -> None:
    if value:
        typer.echo("minimal 0.0.0")
        raise typer.Exit()


@app.callback()
def root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True)) -> None:
    """A minimal app."""


if __name__ == "__main__":
    app()
