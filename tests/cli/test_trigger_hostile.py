"""`trigger` against a deliberately hostile REST stub: CometChat error bodies (401/403/404/429), an answer that is not
JSON, a timeout, a refused connection. Each gives a clear message, a hint and the right exit code; the key never shows."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from comethook_cli.cometchat.rest import error_body
from tests.conftest import Cli, ndjson

KEY = "sk-very-secret-rest-key"
ENV = {"COMETCHAT_API_KEY": KEY}


def cometchat_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Callable[[web.Request], web.Response]:
    def handler(request: web.Request) -> web.Response:
        return web.json_response(error_body(code, message), status=status, headers=headers)

    return handler


@pytest.mark.parametrize(
    ("status", "code", "hint"),
    [
        (401, "AUTH_ERR_APIKEY_NOT_FOUND", "Check the key and the region"),
        (403, "AUTH_ERR_NO_ACCESS", "fullAccess REST API key"),
        (404, "ERR_UID_NOT_FOUND", "comethook trigger setup"),
    ],
)
async def test_cometchat_errors_give_the_code_and_a_hint_that_fits(
    cli: Cli, target: Any, status: int, code: str, hint: str
) -> None:
    url, received = await target(cometchat_error(status, code, f"message for {code}"))
    base = url.removesuffix("/hook") + "/v3"
    result = await cli.run("trigger", "message", "--api-base", base, env=ENV)
    assert result.exit_code == 1
    assert f"answered {status}, {code}: message for {code}" in result.stderr and hint in result.stderr
    assert "Traceback" not in result.output and KEY not in result.stdout + result.stderr
    request = received[0][0]
    assert request.headers["apikey"] == KEY and request.headers["onBehalfOf"] == "comethook-a"
    assert request.path == "/v3/messages"


async def test_429_is_waited_out_with_retry_after_and_said(cli: Cli, target: Any) -> None:
    calls: list[int] = []

    def limited(request: web.Request) -> web.Response:
        calls.append(1)
        if len(calls) < 3:
            return web.json_response(
                error_body("ERR_TOO_MANY_REQUESTS", "slow down"), status=429, headers={"Retry-After": "0.05"}
            )
        return web.json_response({"data": {"id": "7", "category": "message"}})

    url, _ = await target(limited)
    result = await cli.run("trigger", "message", "--api-base", url.removesuffix("/hook") + "/v3", "--json", env=ENV)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("answered 429") == 2 and "Retry-After" in result.stderr
    rest = next(line for line in ndjson(result.stdout) if line["type"] == "rest")
    assert rest["status"] == 200 and rest["attempts"] == 3 and rest["waited_s"] == pytest.approx(0.1)


async def test_429_that_never_ends_fails_after_bounded_back_off(cli: Cli, target: Any) -> None:
    url, received = await target(cometchat_error(429, "ERR_TOO_MANY_REQUESTS", "slow down", {"Retry-After": "0"}))
    result = await cli.run("trigger", "message", "--api-base", url.removesuffix("/hook") + "/v3", env=ENV)
    assert result.exit_code == 1 and "ERR_TOO_MANY_REQUESTS" in result.stderr and "Rate limited" in result.stderr
    assert len(received) == 4  # the call and three back-offs, no more


async def test_an_answer_that_is_not_json(cli: Cli, target: Any) -> None:
    url, _ = await target(lambda request: web.Response(text="<html>\x1b[31mgateway</html>", status=502))
    result = await cli.run("trigger", "message", "--api-base", url.removesuffix("/hook") + "/v3", env=ENV)
    assert result.exit_code == 1 and "not JSON" in result.stderr and "--api-base" in result.stderr
    assert "\x1b" not in result.stderr  # the hostile bytes are escaped before they reach a terminal


async def test_a_timeout_and_a_refused_connection_exit_4(cli: Cli, target: Any, closed_port: int) -> None:
    async def stall(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.json_response({})

    url, _ = await target(stall)
    slow = await cli.run("trigger", "message", "--api-base", url.removesuffix("/hook") + "/v3", "--timeout", "0.3", env=ENV)
    assert slow.exit_code == 4 and "no answer within 0.3 s" in slow.stderr and "Hint:" in slow.stderr
    refused = await cli.run("trigger", "setup", "--api-base", f"http://127.0.0.1:{closed_port}/v3", env=ENV)
    assert refused.exit_code == 4 and "could not connect" in refused.stderr


def test_credentials_come_from_the_environment_and_a_flag_warns(cli: Cli, closed_port: int) -> None:
    missing = cli("trigger", "message", "--api-base", "http://127.0.0.1:1/v3")
    assert missing.exit_code == 2 and "COMETCHAT_API_KEY" in missing.stderr
    no_app = cli("trigger", "message", env=ENV)
    assert no_app.exit_code == 2 and "COMETCHAT_APP_ID" in no_app.stderr
    flagged = cli("trigger", "setup", "--api-key", KEY, "--api-base", f"http://127.0.0.1:{closed_port}/v3")
    assert "visible to every local user" in flagged.stderr and KEY not in flagged.stderr + flagged.stdout
    region = cli("trigger", "setup", "--app-id", "abc", "--region", "mars", env=ENV)
    assert region.exit_code == 2 and "Unknown region" in region.stderr


@pytest.mark.parametrize("app_id", ["...", "my app", "a" * 64, "-abc", "ab/c"])
def test_an_app_id_no_host_can_carry_is_a_usage_error_not_a_traceback(cli: Cli, app_id: str) -> None:
    """`export COMETCHAT_APP_ID=...`, copied from the documentation as written, made the host `....api-us...`."""
    result = cli("trigger", "setup", env={**ENV, "COMETCHAT_APP_ID": app_id, "COMETCHAT_REGION": "us"})
    assert result.exit_code == 2 and "is not a CometChat app id" in result.stderr and "Hint:" in result.stderr


def test_the_real_host_is_built_from_app_id_and_region_and_the_output_says_it_was_not_verified_live(cli: Cli) -> None:
    from comethook_cli.cometchat import rest

    assert rest.api_base("MyApp", "eu") == "https://myapp.api-eu.cometchat.io/v3"
    assert (
        rest.ACTIONS["add_reaction"].url("http://x/v3", id="5", reaction="👍") == "http://x/v3/messages/5/reactions/%F0%9F%91%8D"
    )
    # An unroutable address (TEST-NET-1) stands in for the real host: no test reaches CometChat.
    result = cli("trigger", "setup", "--api-base", "http://192.0.2.1/v3", "--timeout", "0.2", env=ENV)
    assert "not verified live" in result.stderr and result.exit_code == 4


async def run_trigger(*args: str, within: float = 20) -> tuple[int, str]:
    """`comethook trigger ...` as a real process; killed (and the test failed) if it outlives `within` s: a hang detector."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "comethook_cli", "trigger", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, **ENV},
    )  # fmt: skip
    try:
        _, err = await asyncio.wait_for(process.communicate(), within)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"trigger {' '.join(args)} still ran after {within:g} s") from None
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_a_retry_after_past_the_timeout_ends_the_call_at_once_saying_how_long(target: Any) -> None:
    url, received = await target(cometchat_error(429, "ERR_TOO_MANY_REQUESTS", "slow down", {"Retry-After": "999999999"}))
    code, err = await run_trigger("message", "--api-base", url.removesuffix("/hook") + "/v3", "--timeout", "2")
    assert code == 1, err
    assert "answered 429, ERR_TOO_MANY_REQUESTS: slow down" in err
    assert "its Retry-After asks to wait 999999999 s (about 32 years), longer than comethook waits" in err and "Hint:" in err
    assert "waiting" not in err and len(received) == 1  # never slept on it, never asked again


async def test_a_retry_after_longer_than_what_is_left_of_the_timeout_is_not_waited(target: Any) -> None:
    url, received = await target(cometchat_error(429, "ERR_TOO_MANY_REQUESTS", "slow down", {"Retry-After": "30"}))
    code, err = await run_trigger("message", "--api-base", url.removesuffix("/hook") + "/v3", "--timeout", "2")
    assert code == 1 and "its Retry-After asks to wait 30 s, longer than is left of --timeout" in err
    assert len(received) == 1


async def test_the_timeout_bounds_every_call_of_the_command_together(target: Any) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return web.json_response({"data": {"uid": "x"}})

    url, received = await target(slow)
    # `setup` makes five calls: each answers within --timeout 1.2, all of them together cannot.
    code, err = await run_trigger("setup", "--api-base", url.removesuffix("/hook") + "/v3", "--timeout", "1.2")
    assert code == 4, err
    assert "left of the 1.2 s --timeout for all calls" in err or "--timeout for all calls ran out" in err
    assert 2 <= len(received) <= 3
