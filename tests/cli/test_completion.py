"""Shell completion: Typer's --install-completion, and what completes (triggers, history ids, payload options)."""

from __future__ import annotations

import asyncio
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from comethook import Listener, build_payload, deliver
from comethook_cli.cli import app


def complete(line: str, shell: str = "bash") -> list[str]:
    """What the shell would offer for the last word of `line` (empty last word: a trailing space)."""
    words = line.split(" ")
    env = {"_COMETHOOK_COMPLETE": f"complete_{shell}", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
    if shell == "zsh":
        env = {"_COMETHOOK_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": line}
    result = CliRunner().invoke(app, [], env=env, prog_name="comethook")
    assert result.exit_code == 0, result.output
    return result.output.split()


def test_install_and_show_completion_are_on_the_root_command(cli: Any) -> None:
    help_text = cli("--help").stdout
    assert "--install-completion" in help_text and "--show-completion" in help_text
    # Typer finds the shell in the process tree (shellingham), as it does for a user typing this in bash: run it
    # under a real bash, so the test does not depend on what started pytest (a CI runner, a detached job).
    # `; true` keeps bash from exec-ing the command in its own place, which would take bash out of the tree.
    installed = Path(sys.executable).with_name("comethook")  # the console script, as a user runs it
    command = f"{shlex.quote(str(installed))} --show-completion; true"
    script = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30, check=False)
    assert "_COMETHOOK_COMPLETE=complete_bash" in script.stdout, script.stderr


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("comethook send before_m", ["before_message"]),
        ("comethook payloads show message_se", ["message_sent"]),
        ("comethook history list --trigger call_st", ["call_started"]),
        ("comethook check --triggers al", ["all"]),
        ("comethook check --triggers before_message,call_st", ["before_message,call_started"]),
        ("comethook send message_sent --type im", ["image"]),
        ("comethook payloads show message_sent --region e", ["eu"]),
        ("comethook send before_message --expect d", ["drop"]),
        ("comethook listen --fallback ", ["error", "pass", "drop"]),
        ("comethook listen --respond inj", ["inject:"]),
        ("comethook history export --format h", ["har"]),
        ("comethook send before_message --set data.data.te", ["data.data.text="]),
        ("comethook send before_message --set data.data.text=", []),
        ("comethook send no_such_trigger --set da", []),
    ],
)
def test_what_completes(line: str, expected: list[str]) -> None:
    assert complete(line) == expected


def test_zsh_completes_with_descriptions() -> None:
    [offer] = [
        word for word in " ".join(complete("comethook send before_m", shell="zsh")).split("\n") if "before_message" in word
    ]
    assert "CometChat waits for the answer" in offer


def test_history_ids_complete_newest_first() -> None:
    assert complete("comethook history show ") == []  # no history yet: nothing, and no error

    async def receive() -> list[str]:
        async with Listener(history=True) as listener:
            for text in ("first", "second"):
                await deliver(listener.url, build_payload("message_sent", text=text))
            return [event.id for event in await listener.wait_for(2)]

    first, second = asyncio.run(receive())
    assert complete("comethook history show ") == [second, first]
    assert complete(f"comethook replay {second[:-3]}") == [second]
