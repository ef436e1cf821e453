"""`comethook emulate` end to end: its options are parsed once (engine/restvalues.py) into the domain values
EmulatorConfig holds, and a bad one is a usage error (exit 2) naming the flag, before anything listens."""

from __future__ import annotations

from pathlib import Path

import pytest

from comethook_cli.engine import restvalues
from comethook_cli.engine.config import EmulatorConfig
from comethook_cli.engine.emulator.quirks import QUIRKS
from tests.conftest import Cli, ndjson

QUIRK = "ban-actor-in-members"


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (("--on-hook-failure", "maybe"), "Error: Unknown --on-hook-failure 'maybe'.\nHint: Use pass or drop.\n"),
        (("--webhook", "8000", "--triggers", "before_mesage,zzz"),
         "Error: Unknown trigger(s) in --triggers: before_mesage, zzz.\nHint: `comethook payloads list` shows them all.\n"),
        (("--no-quirk", "ban-actor-in-member"), f"Error: Unknown quirk 'ban-actor-in-member'.\nHint: Did you mean '{QUIRK}'? "
                                                f"The quirks are: {QUIRK}.\n"),
        (("--quirk", "zzz"), f"Error: Unknown quirk 'zzz'.\nHint: The quirks are: {QUIRK}.\n"),
        (("--allow-host", "http://emulator:80"),
         "Error: --allow-host 'http://emulator:80' is not a host name.\nHint: Give the name alone, e.g. --allow-host emulator.\n"),
    ],
)  # fmt: skip
def test_a_bad_option_is_a_usage_error_naming_the_flag(cli: Cli, flags: tuple[str, ...], error: str) -> None:
    result = cli("--no-config", "emulate", "--port", "0", *flags, env={"COLUMNS": "200"})
    assert (result.exit_code, result.stderr) == (2, error)
    as_json = cli("--no-config", "emulate", "--port", "0", *flags, "--json", env={"COLUMNS": "200"})
    (record,) = ndjson(as_json.stdout)
    assert record["type"] == "error" and record["message"] == error.split("\n")[0].removeprefix("Error: ")


def test_an_unknown_quirk_in_the_project_file_is_said_as_in_a_flag(cli: Cli, tmp_path: Path) -> None:
    project = tmp_path / "comethook.toml"
    project.write_text('[emulate]\nno-quirk = ["actor-in-members"]\n', encoding="utf-8")
    result = cli("--config", str(project), "emulate", "--port", "0")
    assert result.exit_code == 2 and "Unknown quirk 'actor-in-members'" in result.stderr
    assert f"Did you mean '{QUIRK}'?" in result.stderr


def test_the_emulators_config_holds_domain_values_parsed_once() -> None:
    assert EmulatorConfig().on_hook_failure is restvalues.HookFailure.PASS
    assert restvalues.hook_failure("drop") is restvalues.HookFailure.DROP
    # --quirk turns back on what --no-quirk (or the file) turned off.
    assert restvalues.quirks_off([], [QUIRK], QUIRKS) == (QUIRK,)
    assert restvalues.quirks_off([QUIRK], [QUIRK], QUIRKS) == ()
    # The Dashboard's name of a legacy trigger ticks the trigger its deliveries carry; `all` (or nothing) ticks every one.
    assert restvalues.ticked_triggers(" before_message , message_sent") == {"before_message", "message_sent"}
    assert restvalues.ticked_triggers("all") is None and restvalues.ticked_triggers(None) is None
    assert restvalues.ticked_triggers(" , ") == frozenset()  # nothing ticked: `emulate` warns that the webhook gets nothing
    assert restvalues.allowed_hosts(["Emulator", "hooks.internal"]) == ("emulator", "hooks.internal")


def test_quirks_are_listed_in_emulate_help_with_their_evidence(cli: Cli) -> None:
    result = cli("emulate", "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert f"{QUIRK}: with onBehalfOf, a ban or unban webhook carries the acting user" in text
    assert "seen live by a third-party QA harness" in text
