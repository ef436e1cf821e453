"""`comethook init`: write the commented starter project file.

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

from pathlib import Path

from comethook_cli.cli.app import App, funnel
from comethook_cli.engine import configfile
from comethook_cli.errors import ComethookError

app = App()  # what the root group takes this command from


@app.command()
@funnel
def init() -> None:
    """Write a commented starter comethook.toml here (never overwrites one)."""
    from comethook_cli.outputs.terminal import Renderer

    path = write_starter(Path.cwd())
    Renderer().note(f"Wrote {path.name}: uncomment what this project needs; `comethook config show` shows the result.")


# --- the starter file ---------------------------------------------------------------------------------------------

STARTER = """\
# comethook.toml: the settings this project uses every day, so no run needs a long list of flags.
#
# Precedence: a flag beats an environment variable, which beats this file, which beats comethook's default.
# Keys are the long flag names (`comethook listen --help` lists them); an unknown key is an error.
# `comethook config show` prints every setting in effect and where it came from.
# Relative paths (rules, basic-auth-file, ngrok-path, junit, body, output) are relative to this file.
# ngrok-path, and a path outside this directory or a URL off this machine, work once you run `comethook trust`.
#
# Secrets do not belong here. Read them from the environment instead:
#     basic-auth = { env = "COMETHOOK_WEBHOOK_AUTH" }
# A literal password or authtoken in a file inside a git repository gets a warning.

[listen]
# port = 8765
# forward-to = ["8000"]              # relay to your app on localhost:8000 (the first is primary, more get copies)
# forward-timeout = 30.0
# fallback = "error"                 # the answer when your app is down: error, pass or drop
# respond = "pass"                   # the canned answer when nothing is forwarded: pass, drop, inject:JSON
# drop-if = "(?i)spam"
# max-body = 1048576
# basic-auth = { env = "COMETHOOK_WEBHOOK_AUTH" }   # USER:PASS every delivery must carry

# Answering rules, first match wins: the same entries as a --rules JSON file.
# [[listen.rules]]
# match = { trigger = "before_message", text = "(?i)buy now" }
# action = "drop"

[tunnel]
# domain = "my-app.ngrok.app"        # a reserved domain keeps the Dashboard URL across restarts
# region = "eu"
# tunnel-timeout = 10.0              # the ngrok authtoken comes from NGROK_AUTHTOKEN or your ngrok config
# public-url = "https://hooks.example.com"   # your own tunnel to this listener instead of ngrok's

[history]
# history-max-mb = 500.0
# history-max-age = 30.0
# limit = 20                         # how many `comethook history list` shows

[send]
# to = "http://localhost:8000/webhook"
# app-id = "2379614bd4db65dd"
# webhook-id = "comethook-dev"
# region = "us"
# sender = "cometchat-uid-1"
# timeout = 10.0

[check]
# to = "http://localhost:8000/webhook"
# triggers = "before_message,after_message,message_sent"
# junit = "check-report.xml"
# timeout = 5.0
"""


def write_starter(directory: Path) -> Path:
    """Write a commented starter comethook.toml in `directory`; never overwrite one."""
    path = directory / configfile.FILE_NAME
    try:
        with path.open("x", encoding="utf-8") as file:
            file.write(STARTER)
    except FileExistsError:
        raise ComethookError(
            f"{configfile.display_path(path)} already exists: not overwritten.",
            "Edit it, or move it aside and run `comethook init` again.",
        ) from None
    except OSError as error:
        raise ComethookError(f"Cannot write {path}: {error.strerror}.", "Check the directory exists and is writable.") from None
    return path
