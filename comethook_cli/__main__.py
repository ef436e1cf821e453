"""The `comethook` command (the console script) and `python -m comethook_cli`."""

import sys


def main() -> None:
    """Answer `--version` before anything is imported (scripts call it in loops), else run the Typer app."""
    if sys.argv[1:] == ["--version"]:
        from comethook_cli import __version__

        sys.stdout.write(f"comethook {__version__}\n")
        return
    import atexit
    import gc

    # Whatever is still alive at exit goes back to the OS with the process: frozen (by the first handler registered, so
    # after every other one), the interpreter's last collections skip it instead of walking typer's, pydantic's and a
    # run's objects one by one (about 20 ms at the end of every command).
    atexit.register(gc.freeze)
    from comethook_cli.cli import main as run_cli

    run_cli()


if __name__ == "__main__":
    main()
