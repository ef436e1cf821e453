"""The `comethook` command (the console script) and `python -m comethook_cli`."""

import sys


def main() -> None:
    """Answer `--version` before anything is imported (scripts call it in loops), else run the Typer app."""
    if sys.argv[1:] == ["--version"]:
        from comethook_cli import __version__

        sys.stdout.write(f"comethook {__version__}\n")
        return
    from comethook_cli.cli import main as run_cli

    run_cli()


if __name__ == "__main__":
    main()
