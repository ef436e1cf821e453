"""engine/values.py: what a user writes → the domain values the configs hold, and the errors that name the setting."""

from __future__ import annotations

import json

import pytest

from comethook_cli.engine import restvalues, values
from comethook_cli.errors import InvalidSetting, SettingText, UsageError


def test_the_domain_given_as_a_url_is_reduced_to_its_name() -> None:
    assert values.domain("https://My-App.ngrok.app/") == "My-App.ngrok.app"
    assert values.ngrok_region(" EU") == values.NgrokRegion.EU == "eu"


def test_an_action_from_text_or_from_an_object() -> None:
    assert values.action("drop").label == "drop"
    injected = values.action({"flag": True, "score": 0.5})
    assert injected.label == "inject" and json.loads(injected.body) == {"flag": True, "score": 0.5}
    assert values.action('inject:{"flag": true}').body == injected.body.replace(b', "score": 0.5', b"")
    with pytest.raises(InvalidSetting, match="non-empty JSON object"):
        values.action({})
    with pytest.raises(InvalidSetting, match="no file is read here"):
        values.action("inject:@/etc/passwd")  # no `read`: nothing reads a file


def test_an_invalid_setting_is_named_as_a_flag_or_as_a_keyword() -> None:
    with pytest.raises(InvalidSetting) as caught:
        values.status(700)
    error = caught.value
    assert isinstance(error, UsageError) and isinstance(error, ValueError) and error.setting == "status"
    assert (error.message, error.hint) == ("status=700 is not an HTTP status code.", "Use 100-599, e.g. status=503.")
    assert error.named("flag") == ("--status 700 is not an HTTP status code.", "Use 100-599, e.g. --status 503.")
    with pytest.raises(InvalidSetting) as fallback:
        values.fallback("explode")
    assert fallback.value.named("flag")[0] == "Unknown --fallback 'explode'."
    assert fallback.value.message == "Unknown fallback='explode'."


def test_routes_retention_delays_headers_and_expectations_are_parsed_once() -> None:
    warned: list[str] = []
    routes = values.routes(["before_message=8001", "brand_new_trigger=:9000/x"], warned.append)
    assert routes == (
        values.Route("before_message", "http://localhost:8001"),
        values.Route("brand_new_trigger", "http://localhost:9000/x"),
    )
    assert warned and "brand_new_trigger" in warned[0]
    with pytest.raises(InvalidSetting, match="Malformed route"):
        values.routes(["before_message"], warned.append)
    retention = values.retention(1, 2)
    assert (retention.max_bytes, retention.max_age) == (1024 * 1024, 2 * 86400.0)
    assert values.retention(0, 0).max_bytes is None
    with pytest.raises(InvalidSetting, match="cannot be negative"):
        values.retention(-1, 0)
    assert values.retry_delays("0.1, 0.3") == (0.1, 0.3)
    assert values.header(" X-Id :  7 ") == ("X-Id", "7")
    expected = values.expectations("drop", ["a.b=1"], 5)
    assert (expected.verdict, tuple(expected.json), expected.max_latency_ms) == ("drop", (("a.b", 1),), 5)
    with pytest.raises(InvalidSetting, match="Unknown expect='maybe'"):
        values.expectations("maybe")


def test_delivering_values_are_refused_with_the_flag_the_cli_user_typed() -> None:
    from comethook_cli.cli.app import flagged

    for bad in ("", "a,b", "-1", "nan"):
        with pytest.raises(InvalidSetting) as caught:
            values.retry_delays(bad)
        assert flagged(caught.value)[0] == f"Malformed --retry-delays {bad!r}."
    with pytest.raises(InvalidSetting) as header:
        values.header("No Colon")
    assert flagged(header.value) == ("Malformed header 'No…'.", "Write it as -H 'Name: value'.")
    with pytest.raises(InvalidSetting) as pasted:  # a secret pasted with = instead of : is not said back
        values.header("X-Api-Key=sk_live_0123456789")
    assert "sk_live" not in flagged(pasted.value)[0] and "X-Api-Key…" in flagged(pasted.value)[0]
    with pytest.raises(InvalidSetting) as expect:
        values.expectations("maybe")
    assert flagged(expect.value)[0] == "Unknown --expect 'maybe'."


def test_build_options_from_text_for_every_adapter() -> None:
    from comethook_cli.cometchat.rest import Region

    options = values.build_options({"text": "hi", "region": "eu", "group": None}, ["data.x=1"])
    assert options.text == "hi" and options.region == Region("eu") and options.group is None
    assert options.sets == (("data.x", 1),) and options.sender == "cometchat-uid-1"  # the rest: the builder's defaults
    with pytest.raises(UsageError, match=r"Unknown builder option\(s\): colour, size") as unknown:
        values.build_options({"size": "1", "colour": "red"})
    assert unknown.value.hint is not None and "webhook_id" in unknown.value.hint
    with pytest.raises(InvalidSetting, match="region"):
        values.build_options({"region": "mars"})


def test_a_trigger_expectation_is_parsed_once_into_its_kind() -> None:
    from comethook_cli.cli.app import flagged
    from comethook_cli.engine.config import TriggerOptions

    assert restvalues.trigger_expectation("blocked") is restvalues.TriggerExpectation.BLOCKED
    assert restvalues.trigger_expectation(None) is None
    assert TriggerOptions(expect=restvalues.trigger_expectation("dropped")).expect == "dropped"
    # Only delivered and blocked cannot be told from the REST answer: each adapter asks for waiting with them.
    assert [e for e in restvalues.TriggerExpectation if e.needs_deliveries] == ["delivered", "blocked"]
    with pytest.raises(InvalidSetting) as caught:
        restvalues.trigger_expectation("Blocked")
    hint = "Use one of: ok, delivered, pass, inject, drop, dropped, blocked."
    assert flagged(caught.value) == ("Unknown --expect 'Blocked'.", hint)
    assert caught.value.named("keyword") == ("Unknown expect='Blocked'.", hint)


def test_emulate_values_are_refused_in_domain_terms_and_named_as_the_user_gave_them() -> None:
    from comethook_cli.cli.app import flagged

    with pytest.raises(InvalidSetting) as failure:
        restvalues.hook_failure("maybe")
    assert failure.value.named("keyword") == ("Unknown on_hook_failure='maybe'.", "Use pass or drop.")
    with pytest.raises(InvalidSetting) as ticked:
        restvalues.ticked_triggers("message_sent,nope,alsonope")
    assert flagged(ticked.value)[0] == "Unknown trigger(s) in --triggers: alsonope, nope."
    with pytest.raises(InvalidSetting) as quirk:
        restvalues.quirks_off(["ban-actor"], [], ["ban-actor-in-members"])
    assert quirk.value.named("keyword")[0] == "Unknown quirk='ban-actor'."
    assert quirk.value.hint is not None and "Did you mean 'ban-actor-in-members'?" in quirk.value.hint
    with pytest.raises(InvalidSetting) as host:
        restvalues.allowed_hosts(["ok", "emulator:8780"])
    assert host.value.named("keyword") == (
        "allow_host='emulator:8780' is not a host name.",
        "Give the name alone, e.g. allow_host='emulator'.",
    )


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("ftp://x", "{} is not an http:// or https:// URL."),
        ("http://", "{} names no host."),
        ("not a url", "{} is not an http:// or https:// URL."),
        ("http://u:p@h", "{} holds credentials."),
        ("http://h/?q", "{} has a query, a fragment or spaces."),
        ("http://h:99999", "Malformed {}."),
    ],
)
def test_a_public_url_is_parsed_here_and_its_error_names_the_setting(given: str, problem: str) -> None:
    with pytest.raises(InvalidSetting) as caught:
        values.public_url(given)
    error = caught.value
    assert error.setting == "public_url" and error.message == problem.format(f"public_url={given!r}")
    assert error.named("flag")[0] == problem.format(f"--public-url {given!r}")
    if "credentials" not in problem:
        assert (
            error.named("flag")[1] == "Give the public address of your own tunnel, e.g. --public-url https://hooks.example.com."
        )
    assert values.public_url(" https://hooks.example.com/ ") == "https://hooks.example.com"


def test_a_url_forwarded_to_is_refused_as_the_forward_to_setting() -> None:
    with pytest.raises(InvalidSetting) as caught:
        values.targets(["8000", "ftp://x"])
    error = caught.value
    assert (error.setting, error.message, error.hint) == (
        "forward_to",
        "Unsupported forward_to='ftp://x'.",
        "Use an http:// or https:// URL.",
    )
    assert error.named("flag", "URL")[0] == "Unsupported URL 'ftp://x'."  # what the CLI has always said
    with pytest.raises(InvalidSetting, match=r"^Malformed forward_to='http://h:99999': the port is not a number"):
        values.targets(" http://h:99999 ")
    with pytest.raises(InvalidSetting, match=r"^No URL given to forward to\.$"):
        values.targets("  ")


def test_a_warning_about_a_setting_names_it_for_each_adapter() -> None:
    warned: list[str] = []
    values.routes(["brand_new_trigger=:9000"], warned.append)
    values.events("before_message,zzz_trigger", warned.append)
    route, event = warned
    assert isinstance(route, SettingText) and isinstance(event, SettingText)
    assert route == "route brand_new_trigger: not a trigger comethook knows; routed anyway (CometChat adds triggers)."
    assert route.said("flag") == "--" + route
    assert event.said("flag") == "--events zzz_trigger: not a trigger comethook knows; kept anyway (CometChat adds triggers)."
