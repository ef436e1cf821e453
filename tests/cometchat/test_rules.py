"""cometchat/rules.py: the canned answers' domain checks, shared by a rule's action and by engine/values.py."""

from __future__ import annotations

import pytest

from comethook_cli.cometchat import rules
from comethook_cli.engine import values
from comethook_cli.errors import InvalidSetting


def test_pass_and_drop_are_named_in_one_place_for_the_respond_setting_and_for_a_rule() -> None:
    assert values.action("pass") is rules.canned("pass") is rules.parse_rules([{"action": "pass"}], "r")[0].action
    assert values.action("drop") is rules.canned("drop") is rules.parse_rules([{"action": "drop"}], "r")[0].action
    assert rules.canned("inject:{}") is None


@pytest.mark.parametrize("code", [99, 600, True, "503", 503.0])
def test_one_status_check_serves_the_status_setting_and_a_rules_status_key(code: object) -> None:
    with pytest.raises(InvalidSetting) as setting:
        values.status(code)  # type: ignore[arg-type]  # a Python caller's value may be anything
    assert setting.value.setting == "status" and setting.value.message.endswith(" is not an HTTP status code.")
    with pytest.raises(InvalidSetting) as rule:
        rules.parse_rules([{"action": {"status": code}}], "--rules hooks.json")
    assert rule.value.setting == "rules"
    assert (
        rule.value.named("flag")
        == rule.value.named("keyword")
        == (
            "--rules hooks.json rule 1: status must be an HTTP status code (100-599).",
            'e.g. {"status": 503}',
        )
    )
    assert rules.http_status(503) == values.status(503) == 503


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"a": 1}, "f must hold a JSON list of rules."),
        ([{"action": "wave"}], "f rule 1: unknown action 'wave'."),
        ([{"action": 5}], "f rule 1: the action must be a string or an object."),
        ([{"action": {"inject": 3}}], "f rule 1: inject needs a JSON object."),
        ([{"match": {"text": "(a)\\1"}, "action": "drop"}], "f rule 1: '(a)\\\\1' uses a backreference"),
    ],
)
def test_every_bad_rule_is_an_invalid_setting_said_where_the_adapter_found_it(entries: object, message: str) -> None:
    with pytest.raises(InvalidSetting) as caught:
        rules.parse_rules(entries, "f")
    assert caught.value.setting == "rules" and caught.value.named("flag")[0].startswith(message)
