"""Option declarations several commands share, and the decorator that adds a group of them to a command.

A group is declared once (name → Annotated type and default) with the function that turns the
parsed values into one object; `with_options` adds the group to a command's signature, so Typer
shows and parses the options, and hands the command that one object instead.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from comethook_cli.models import DEFAULT_MAX_ANSWER

F = TypeVar("F", bound=Callable[..., Any])
Group = dict[str, tuple[Any, Any]]

JsonOut = Annotated[bool, typer.Option("--json", help="NDJSON on stdout: one JSON object per line.")]
Sets = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="PATH=VALUE", help="Set a dotted path in the body (VALUE as JSON, else string). Repeatable."),
]
SECRET_ON_ARGV = {
    "basic_auth": "--basic-auth USER:PASS on the command line is visible to every local user (ps, shell history): "
    "set COMETHOOK_BASIC_AUTH, use --basic-auth-file FILE, or give only USER to be asked for the password.",
    "ngrok_authtoken": "--ngrok-authtoken on the command line is visible to every local user (ps, shell history): "
    "set NGROK_AUTHTOKEN, or save it with `ngrok config add-authtoken`.",
}


def warn_secret_on_argv(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """Warn once (never showing the value) when a secret came on the command line rather than from the environment."""
    source = ctx.get_parameter_source(param.name or "")
    on_argv = value and source is not None and source.name == "COMMANDLINE" and not ctx.resilient_parsing
    if on_argv and (param.name != "basic_auth" or ":" in (value or "")):  # USER alone is no secret: it gets a prompt
        from comethook_cli.outputs.terminal import Renderer

        Renderer().warning(SECRET_ON_ARGV[param.name or ""])
    return value


BasicAuth = Annotated[
    str | None,
    typer.Option(
        "--basic-auth",
        metavar="USER:PASS",
        envvar="COMETHOOK_BASIC_AUTH",
        show_envvar=True,
        callback=warn_secret_on_argv,
        help="HTTP Basic credentials. Prefer the env var or --basic-auth-file (argv shows in ps); USER alone asks for the password.",
    ),
]
BasicAuthFile = Annotated[
    str | None,
    typer.Option("--basic-auth-file", metavar="FILE", help="Read HTTP Basic USER:PASS from the first line of FILE."),
]
NgrokAuthtoken = Annotated[
    str | None,
    typer.Option(
        "--ngrok-authtoken",
        metavar="TOKEN",
        callback=warn_secret_on_argv,
        help="ngrok authtoken. Better: NGROK_AUTHTOKEN or your ngrok config (argv shows in ps).",
    ),
]
ContentType = Annotated[
    str | None,
    typer.Option(
        "--content-type", metavar="VALUE", help="Content-Type to send (default Application/json, the casing CometChat sends)."
    ),
]
Legacy = Annotated[bool, typer.Option("--legacy", help="Use the legacy shape where a trigger has both (receipts).")]
MaxAnswer = Annotated[
    int, typer.Option("--max-answer", metavar="BYTES", min=1, help="Read at most this much of an answer (larger: a failure).")
]
Insecure = Annotated[
    bool, typer.Option("--insecure", "-k", help="Do not verify TLS certificates (self-signed test endpoints); warns.")
]

#: How a payload is built (`payloads show`, `send`).
BUILDER: Group = {
    "type_": (Annotated[str, typer.Option("--type", help="Message type: text, image, video, audio, file, custom.")], "text"),
    "text": (Annotated[str | None, typer.Option("--text", help="Message text (caption for media).")], None),
    "sender": (Annotated[str, typer.Option("--sender", metavar="UID", help="Sending user's uid.")], "cometchat-uid-1"),
    "receiver": (Annotated[str, typer.Option("--receiver", metavar="UID", help="Receiving user's uid.")], "cometchat-uid-2"),
    "group": (Annotated[str | None, typer.Option("--group", metavar="GUID", help="Send to a group (receiverType group).")], None),
    "webhook_id": (
        Annotated[str, typer.Option("--webhook-id", help="The webhook id configured in the Dashboard.")],
        "comethook-dev",
    ),
    "app_id": (Annotated[str, typer.Option("--app-id", help="CometChat app id.")], "2379614bd4db65dd"),
    "region": (Annotated[str, typer.Option("--region", help="App region: us, eu, in.")], "us"),
    "set_": (Sets, None),
}

#: How a delivery is made and judged (`send`, `replay`).
DELIVERING: Group = {
    "basic_auth": (BasicAuth, None),
    "basic_auth_file": (BasicAuthFile, None),
    "header": (
        Annotated[
            list[str] | None, typer.Option("--header", "-H", metavar="'NAME: VALUE'", help="Extra request header. Repeatable.")
        ],
        None,
    ),
    "timeout": (Annotated[float, typer.Option("--timeout", min=0.001, help="Seconds to wait for each answer.")], 10.0),
    "content_type": (ContentType, None),
    "json_out": (JsonOut, False),
    "expect": (
        Annotated[
            str | None, typer.Option("--expect", metavar="pass|inject|drop|ok", help="Assert the verdict, or that all got 2xx.")
        ],
        None,
    ),
    "expect_json": (
        Annotated[
            list[str] | None,
            typer.Option("--expect-json", metavar="PATH=VALUE", help="Assert a value in the answer. Repeatable."),
        ],
        None,
    ),
    "max_latency": (
        Annotated[float | None, typer.Option("--max-latency", metavar="MS", help="Assert every answer came within MS.")],
        None,
    ),
    "simulate_retries": (
        Annotated[
            bool,
            typer.Option("--simulate-retries", help="Deliver the same body again at CometChat's retry cadence (10 s, 30 s)."),
        ],
        False,
    ),
    "retry_delays": (
        Annotated[str | None, typer.Option("--retry-delays", metavar="S,S", help="Compress the retry cadence, e.g. 0.1,0.3.")],
        None,
    ),
    "verbose": (
        Annotated[bool, typer.Option("--verbose", "-v", help="Show every attempt's answer body, and more of a long one.")],
        False,
    ),
    "max_answer": (MaxAnswer, DEFAULT_MAX_ANSWER),
    "insecure": (Insecure, False),
}


def build_options(**values: Any) -> Any:
    """BUILDER's values → BuildOptions (validated)."""
    from comethook_cli import commands

    return commands.build_options(
        values["type_"], values["text"], values["sender"], values["receiver"], values["group"],
        values["webhook_id"], values["app_id"], values["region"], values["set_"],
    )  # fmt: skip


def delivering(**values: Any) -> Any:
    """DELIVERING's values → Delivering."""
    from comethook_cli.commands import basic_auth
    from comethook_cli.commands.send import Delivering

    return Delivering(
        basic_auth=basic_auth(values["basic_auth"], values["basic_auth_file"]), headers=values["header"] or [], timeout=values["timeout"], json_out=values["json_out"],
        expect=values["expect"], expect_json=values["expect_json"] or [], max_latency=values["max_latency"],
        simulate_retries=values["simulate_retries"], retry_delays=values["retry_delays"], verbose=values["verbose"],
        content_type=values["content_type"], max_answer=values["max_answer"], insecure=values["insecure"],
    )  # fmt: skip


def with_options(group: Group, build: Callable[..., Any], into: str) -> Callable[[F], F]:
    """Add `group`'s options to a command; the command receives `build(**their values)` as `into`."""

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != into]
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=default)
                 for name, (kind, default) in group.items()]  # fmt: skip

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            kwargs[into] = build(**{name: kwargs.pop(name) for name in group})
            return command(*args, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=[*own, *added])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in [*own, *added]}
        return wrapper  # type: ignore[return-value]

    return decorate
