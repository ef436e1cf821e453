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

from comethook_cli.cometchat.payloads import BuildOptions
from comethook_cli.commands import completion
from comethook_cli.engine.config import (
    AnswerConfig,
    Delivering,
    EmulatorConfig,
    ForwardConfig,
    HistoryConfig,
    ListenerConfig,
    TriggerOptions,
    TunnelConfig,
    WebhookTarget,
    default,
)

F = TypeVar("F", bound=Callable[..., Any])
Group = dict[str, tuple[Any, Any]]

JsonOut = Annotated[bool, typer.Option("--json", help="NDJSON on stdout: one JSON object per line.")]
Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="PATH=VALUE",
        help="Set a dotted path in the body (VALUE as JSON, else string). Repeatable.",
        autocompletion=completion.set_paths,
    ),
]
SECRET_ON_ARGV = {
    "basic_auth": "--basic-auth USER:PASS on the command line is visible to every local user (ps, shell history): "
    "set COMETHOOK_BASIC_AUTH, use --basic-auth-file FILE, or give only USER to be asked for the password.",
    "ngrok_authtoken": "--ngrok-authtoken on the command line is visible to every local user (ps, shell history): "
    "set NGROK_AUTHTOKEN, or save it with `ngrok config add-authtoken`.",
    "api_key": "--api-key on the command line is visible to every local user (ps, shell history): set COMETCHAT_API_KEY.",
    "forward_to": "--forward-to {url}: a password on the command line is visible to every local user (ps, shell "
    'history). Read the URL from the environment in comethook.toml instead: [listen] forward-to = { env = "APP_URL" }.',
    "route": "--route {url}: a password on the command line is visible to every local user (ps, shell history). Read "
    'it from the environment in comethook.toml instead: [listen] route = { env = "APP_ROUTE" }.',
}


def warn_secret_on_argv(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """Warn once (never showing the value) when a secret came on the command line rather than from the environment."""
    source = ctx.get_parameter_source(param.name or "")
    on_argv = value and source is not None and source.name == "COMMANDLINE" and not ctx.resilient_parsing
    if on_argv and (param.name != "basic_auth" or ":" in (value or "")):  # USER alone is no secret: it gets a prompt
        from comethook_cli.outputs.terminal import Renderer

        Renderer().warning(SECRET_ON_ARGV[param.name or ""])
    return value


def warn_password_on_argv(ctx: typer.Context, param: typer.CallbackParam, value: list[str] | None) -> list[str] | None:
    """Warn once per URL (its password redacted) when a --forward-to (or --route TRIGGER=URL) URL on the command line
    holds a password."""
    from comethook_cli.models import redact_url

    source = ctx.get_parameter_source(param.name or "")
    if value and source is not None and source.name == "COMMANDLINE" and not ctx.resilient_parsing:
        for given in value:
            trigger, _, url = given.partition("=") if param.name == "route" else ("", "", given)
            shown = f"{trigger}={redact_url(url)}" if trigger else redact_url(url)
            if ":***@" in shown:
                from comethook_cli.outputs.terminal import Renderer

                Renderer().warning(SECRET_ON_ARGV[param.name or ""].replace("{url}", shown))
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

InspectorPort = Annotated[
    int | None,
    typer.Option(
        "--inspector-port",
        metavar="PORT",
        min=0,
        max=65535,
        help="Port of the inspector page (default: the listener's port + 1; 0 picks a free one).",
        rich_help_panel="Inspector",
    ),
]
NoInspector = Annotated[
    bool, typer.Option("--no-inspector", help="Do not serve the inspector page.", rich_help_panel="Inspector")
]
OpenBrowser = Annotated[
    bool, typer.Option("--open", help="Open the inspector page in your browser.", rich_help_panel="Inspector")
]


def _built(name: str) -> Any:
    return default(BuildOptions, name)


def _delivering(name: str) -> Any:
    return default(Delivering, name)


#: How a payload is built (`payloads show`, `send`).
BUILDER: Group = {
    "type_": (
        Annotated[
            str,
            typer.Option(
                "--type", help="Message type: text, image, video, audio, file, custom.", autocompletion=completion.message_types
            ),
        ],
        _built("type"),
    ),
    "text": (Annotated[str | None, typer.Option("--text", help="Message text (caption for media).")], _built("text")),
    "sender": (Annotated[str, typer.Option("--sender", metavar="UID", help="Sending user's uid.")], _built("sender")),
    "receiver": (Annotated[str, typer.Option("--receiver", metavar="UID", help="Receiving user's uid.")], _built("receiver")),
    "group": (
        Annotated[str | None, typer.Option("--group", metavar="GUID", help="Send to a group (receiverType group).")],
        _built("group"),
    ),
    "webhook_id": (
        Annotated[str, typer.Option("--webhook-id", help="The webhook id configured in the Dashboard.")],
        _built("webhook_id"),
    ),
    "app_id": (Annotated[str, typer.Option("--app-id", help="CometChat app id.")], _built("app_id")),
    "region": (
        Annotated[str, typer.Option("--region", help="App region: us, eu, in.", autocompletion=completion.regions)],
        _built("region"),
    ),
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
    "timeout": (
        Annotated[float, typer.Option("--timeout", metavar="SECONDS", min=0.001, help="Seconds to wait for each answer.")],
        _delivering("timeout"),
    ),
    "content_type": (ContentType, None),
    "json_out": (JsonOut, False),
    "expect": (
        Annotated[
            str | None,
            typer.Option(
                "--expect",
                metavar="pass|inject|drop|ok",
                help="Assert the verdict, or that all got 2xx.",
                autocompletion=completion.expectations,
            ),
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
    "max_answer": (MaxAnswer, _delivering("max_answer")),
    "insecure": (Insecure, False),
}


def build_options(**values: Any) -> BuildOptions:
    """BUILDER's values → BuildOptions (validated)."""
    from comethook_cli import commands

    return commands.build_options(
        values["type_"], values["text"], values["sender"], values["receiver"], values["group"],
        values["webhook_id"], values["app_id"], values["region"], values["set_"],
    )  # fmt: skip


def delivering(**values: Any) -> Delivering:
    """DELIVERING's values → Delivering."""
    from comethook_cli.commands import basic_auth

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


# --- listen: one group per section of its config (engine/config.py), defaults read from there ----------------

LISTENER: Group = {
    "host": (
        Annotated[str, typer.Option("--host", help="Interface to bind (warns when not loopback).", rich_help_panel="Listener")],
        default(ListenerConfig, "host"),
    ),
    "port": (
        Annotated[
            int, typer.Option("--port", "-p", min=0, max=65535, help="Port; 0 picks a free one.", rich_help_panel="Listener")
        ],
        default(ListenerConfig, "port"),
    ),
    "max_body": (
        Annotated[
            int,
            typer.Option(
                "--max-body", metavar="BYTES", min=1, help="Largest body accepted (413 above).", rich_help_panel="Listener"
            ),
        ],
        default(ListenerConfig, "max_body"),
    ),
    "basic_auth": (BasicAuth, default(ListenerConfig, "basic_auth")),
    "basic_auth_file": (BasicAuthFile, None),
    "allow_browser_origin": (
        Annotated[
            bool,
            typer.Option(
                "--allow-browser-origin",
                help="Accept requests with an Origin header (sent by web browsers, never by CometChat; refused with 403 otherwise).",
                rich_help_panel="Listener",
            ),
        ],
        default(ListenerConfig, "allow_browser_origin"),
    ),
}

ANSWERS: Group = {
    "respond": (
        Annotated[
            str,
            typer.Option(
                "--respond",
                metavar="pass|drop|inject:JSON|inject:@FILE",
                help="Answer to before_message.",
                rich_help_panel="Answers",
                autocompletion=completion.answers,
            ),
        ],
        default(AnswerConfig, "respond"),
    ),
    "drop_if": (
        Annotated[
            str | None,
            typer.Option("--drop-if", metavar="REGEX", help="Drop before_message whose text matches.", rich_help_panel="Answers"),
        ],
        default(AnswerConfig, "drop_if"),
    ),
    "rules": (
        Annotated[
            str | None,
            typer.Option(
                "--rules", metavar="FILE", help="JSON list of match → action rules (first match wins).", rich_help_panel="Answers"
            ),
        ],
        default(AnswerConfig, "rules"),
    ),
    "delay": (
        Annotated[
            float, typer.Option("--delay", metavar="MS", min=0, help="Wait before every answer.", rich_help_panel="Answers")
        ],
        default(AnswerConfig, "delay"),
    ),
    "status": (
        Annotated[
            int, typer.Option("--status", metavar="CODE", help="HTTP status of every canned answer.", rich_help_panel="Answers")
        ],
        default(AnswerConfig, "status"),
    ),
}

FORWARDING: Group = {
    "forward_to": (
        Annotated[
            list[str] | None,
            typer.Option(
                "--forward-to",
                "-f",
                metavar="URL",
                callback=warn_password_on_argv,
                help="Relay to your app (8000, :8000/hook, /hook → localhost:8000). Repeatable: first is primary, others get copies.",
                rich_help_panel="Forwarding",
            ),
        ],
        None,
    ),
    "route": (
        Annotated[
            list[str] | None,
            typer.Option(
                "--route",
                metavar="TRIGGER=URL",
                callback=warn_password_on_argv,
                help="Send one trigger to its own primary target. Repeatable.",
                rich_help_panel="Forwarding",
            ),
        ],
        None,
    ),
    "forward_timeout": (
        Annotated[
            float,
            typer.Option(
                "--forward-timeout",
                metavar="SECONDS",
                min=0.001,
                help="How long to wait for your app.",
                rich_help_panel="Forwarding",
            ),
        ],
        default(ForwardConfig, "forward_timeout"),
    ),
    "fallback": (
        Annotated[
            str,
            typer.Option(
                "--fallback",
                metavar="error|pass|drop",
                help="Answer when your app is down or times out.",
                rich_help_panel="Forwarding",
                autocompletion=completion.fallbacks,
            ),
        ],
        default(ForwardConfig, "fallback"),
    ),
    "max_answer": (
        Annotated[
            int,
            typer.Option(
                "--max-answer",
                metavar="BYTES",
                min=1,
                help="Largest answer read from your app (else --fallback).",
                rich_help_panel="Forwarding",
            ),
        ],
        default(ForwardConfig, "max_answer"),
    ),
}

TUNNEL: Group = {
    "tunnel": (
        Annotated[
            bool | None,
            typer.Option(
                "--tunnel/--no-tunnel",
                help="Require an ngrok tunnel / never open one. Default: open one when an authtoken is available.",
                rich_help_panel="Tunnel",
            ),
        ],
        None,
    ),
    "ngrok_path": (
        Annotated[
            str | None,
            typer.Option(
                "--ngrok-path",
                metavar="PATH",
                envvar="COMETHOOK_NGROK_PATH",
                help="The ngrok agent executable.",
                rich_help_panel="Tunnel",
            ),
        ],
        default(TunnelConfig, "ngrok_path"),
    ),
    "ngrok_authtoken": (NgrokAuthtoken, default(TunnelConfig, "ngrok_authtoken")),
    "domain": (
        Annotated[
            str | None,
            typer.Option(
                "--domain", help="Reserved ngrok domain, so the Dashboard URL survives restarts.", rich_help_panel="Tunnel"
            ),
        ],
        default(TunnelConfig, "domain"),
    ),
    "region": (
        Annotated[
            str | None, typer.Option("--region", help="ngrok region (us, eu, ap, au, sa, jp, in).", rich_help_panel="Tunnel")
        ],
        default(TunnelConfig, "region"),
    ),
    "install_ngrok": (
        Annotated[
            bool, typer.Option("--install-ngrok", help="Download the ngrok agent if it is missing.", rich_help_panel="Tunnel")
        ],
        default(TunnelConfig, "install_ngrok"),
    ),
    "tunnel_timeout": (
        Annotated[
            float,
            typer.Option(
                "--tunnel-timeout",
                metavar="SECONDS",
                min=1,
                help="How long the ngrok agent gets to open the tunnel.",
                rich_help_panel="Tunnel",
            ),
        ],
        default(TunnelConfig, "tunnel_timeout"),
    ),
}

HISTORY: Group = {
    "no_history": (
        Annotated[bool, typer.Option("--no-history", help="Do not store exchanges.", rich_help_panel="History")],
        not default(HistoryConfig, "history"),
    ),
    "history_max_mb": (
        Annotated[
            float,
            typer.Option(
                "--history-max-mb",
                metavar="MiB",
                min=0,
                help="Keep the history under this size, oldest out first (0: no cap).",
                rich_help_panel="History",
            ),
        ],
        default(HistoryConfig, "history_max_mb"),
    ),
    "history_max_age": (
        Annotated[
            float,
            typer.Option(
                "--history-max-age",
                metavar="DAYS",
                min=0,
                help="Delete exchanges older than this (0: keep them).",
                rich_help_panel="History",
            ),
        ],
        default(HistoryConfig, "history_max_age"),
    ),
    "keep_secrets": (
        Annotated[
            bool,
            typer.Option(
                "--keep-secrets",
                help="Store secret query values (?token=, ?api_key=) exactly, so replays send them. Displays and exports "
                "still redact them.",
                rich_help_panel="History",
            ),
        ],
        default(HistoryConfig, "keep_secrets"),
    ),
}


def listener_config(**values: Any) -> ListenerConfig:
    """LISTENER's values → ListenerConfig (Basic auth from the flag, the env var, a file or a prompt)."""
    from comethook_cli.commands import basic_auth

    credentials = basic_auth(values.pop("basic_auth"), values.pop("basic_auth_file"))
    return ListenerConfig(basic_auth=credentials, **values)


def answer_config(**values: Any) -> AnswerConfig:
    """ANSWERS' values → AnswerConfig ([[listen.rules]] from the project file unless --rules names a file)."""
    from comethook_cli.commands.project import active

    loaded = active()
    inline = loaded.inline_rules if loaded is not None and loaded.inline_rules and values["rules"] is None else ()
    return AnswerConfig(inline_rules=tuple(inline), **values)


def forward_config(**values: Any) -> ForwardConfig:
    """FORWARDING's values → ForwardConfig."""
    return ForwardConfig(forward_to=tuple(values.pop("forward_to") or ()), route=tuple(values.pop("route") or ()), **values)


def tunnel_config(**values: Any) -> TunnelConfig:
    """TUNNEL's values → TunnelConfig (--tunnel/--no-tunnel/neither → on/off/auto)."""
    import difflib

    from comethook_cli.engine.config import NGROK_REGIONS
    from comethook_cli.errors import UsageError

    mode = values.pop("tunnel")
    region = values["region"]
    if region is not None and region.strip().lower() not in NGROK_REGIONS:
        close = difflib.get_close_matches(region.strip().lower(), NGROK_REGIONS, n=1, cutoff=0.5)
        hint = (f"Did you mean {close[0]}? " if close else "") + f"ngrok's regions: {', '.join(NGROK_REGIONS)}."
        raise UsageError(f"Unknown --region {region!r}.", hint)
    values["region"] = region.strip().lower() if region else None
    domain = values["domain"]
    if domain:
        # ngrok wants the bare name: https://my-app.ngrok.app/ is what the Dashboard shows, so take the name out of it.
        bare = domain.strip().split("://", 1)[-1].rstrip("/")
        if not bare or "/" in bare or " " in bare:
            raise UsageError(
                f"Malformed --domain {domain!r}.", "Give the reserved domain's name, e.g. --domain my-app.ngrok.app."
            )
        values["domain"] = bare
    return TunnelConfig(tunnel="auto" if mode is None else "on" if mode else "off", **values)


def history_config(**values: Any) -> HistoryConfig:
    """HISTORY's values → HistoryConfig."""
    return HistoryConfig(history=not values.pop("no_history"), **values)


# --- trigger and emulate: CometChat's REST API ------------------------------------------------------------

ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        metavar="KEY",
        envvar="COMETCHAT_API_KEY",
        show_envvar=True,
        callback=warn_secret_on_argv,
        help="REST API key (fullAccess). Prefer the env var: argv shows in ps.",
    ),
]
AppId = Annotated[str | None, typer.Option("--app-id", envvar="COMETCHAT_APP_ID", show_envvar=True, help="CometChat app id.")]
Region = Annotated[str, typer.Option("--region", envvar="COMETCHAT_REGION", show_envvar=True, help="App region: us, eu, in.")]


#: How `trigger` reaches CometChat and what it waits for and asserts.
def _triggering(name: str) -> Any:
    return default(TriggerOptions, name)


TRIGGERING: Group = {
    "app_id": (AppId, None),
    "region": (Region, _triggering("region")),
    "api_key": (ApiKey, None),
    "api_base": (
        Annotated[
            str | None,
            typer.Option(
                "--api-base", metavar="URL", help="Another REST server, e.g. `comethook emulate`: http://127.0.0.1:8780/v3."
            ),
        ],
        None,
    ),
    "timeout": (
        Annotated[
            float,
            typer.Option(
                "--timeout",
                metavar="SECONDS",
                min=0.001,
                help="Seconds for all of the command's REST calls together, 429 back-offs included (--wait has --wait-timeout).",
            ),
        ],
        _triggering("timeout"),
    ),
    "json_out": (JsonOut, False),
    "verbose": (Annotated[bool, typer.Option("--verbose", "-v", help="Show every REST answer in full.")], False),
    "wait": (
        Annotated[
            bool, typer.Option("--wait", help="Wait for the deliveries this call caused, in a running `listen`'s history.")
        ],
        False,
    ),
    "wait_timeout": (
        Annotated[float, typer.Option("--wait-timeout", metavar="SECONDS", min=0.001, help="How long --wait waits.")],
        _triggering("wait_timeout"),
    ),
    "expect": (
        Annotated[
            str | None,
            typer.Option("--expect", metavar="ok|delivered|pass|inject|drop|dropped", help="Assert the outcome (exit 3 if not)."),
        ],
        None,
    ),
}


def triggering(**values: Any) -> TriggerOptions:
    """TRIGGERING's values → TriggerOptions."""
    return TriggerOptions(**values)


def _emulating(name: str) -> Any:
    return default(EmulatorConfig, name)


#: `emulate`: where it listens, which webhooks it calls and how.
EMULATING: Group = {
    "host": (Annotated[str, typer.Option("--host", help="Interface to bind.")], _emulating("host")),
    "port": (
        Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="Port; 0 picks a free one.")],
        _emulating("port"),
    ),
    "allow_host": (
        Annotated[
            list[str] | None,
            typer.Option(
                "--allow-host",
                metavar="NAME",
                help="Also answer to this host name (a container's service name); other names are refused. Repeatable.",
            ),
        ],
        None,
    ),
    "webhook": (
        Annotated[list[str] | None, typer.Option("--webhook", metavar="URL", help="A webhook to deliver to. Repeatable.")],
        None,
    ),
    "triggers": (
        Annotated[str | None, typer.Option("--triggers", metavar="all|NAME,NAME", help="The triggers ticked for the webhooks.")],
        None,
    ),
    "basic_auth": (BasicAuth, None),
    "basic_auth_file": (BasicAuthFile, None),
    "legacy": (
        Annotated[
            bool,
            typer.Option("--legacy/--current", help="Legacy webhooks (before_message, after_message) or current (default)."),
        ],
        _emulating("legacy"),
    ),
    "webhook_id": (
        Annotated[str, typer.Option("--webhook-id", help="The webhook's id (in payloads and @injected).")],
        default(WebhookTarget, "webhook_id"),
    ),
    "api_key": (ApiKey, None),
    "app_id": (Annotated[str, typer.Option("--app-id", help="The app id payloads carry.")], _emulating("app_id")),
    "region": (Annotated[str, typer.Option("--region", help="The region payloads carry: us, eu, in.")], _emulating("region")),
    "hook_timeout": (
        Annotated[float, typer.Option("--hook-timeout", metavar="SECONDS", min=0.001, help="How long before_message may take.")],
        _emulating("hook_timeout"),
    ),
    "on_hook_failure": (
        Annotated[
            str,
            typer.Option(
                "--on-hook-failure", metavar="pass|drop", help="Outcome of a before_message timeout, non-2xx or invalid answer."
            ),
        ],
        _emulating("on_hook_failure"),
    ),
    "retry_on_failure": (
        Annotated[bool, typer.Option("--retry-on-failure", help="Deliver a failed webhook again at 10 s, then 30 s.")],
        _emulating("retry_on_failure"),
    ),
    "retry_delays": (
        Annotated[str | None, typer.Option("--retry-delays", metavar="S,S", help="Compress the retry cadence, e.g. 0.1,0.3.")],
        None,
    ),
    "state": (
        Annotated[str | None, typer.Option("--state", metavar="FILE", help="Keep the state in this SQLite file, not in memory.")],
        None,
    ),
}


def allowed_hosts(names: list[str]) -> list[str]:
    """--allow-host values: bare host names (no scheme, port or path), lowercased; a usage error otherwise."""
    from comethook_cli.errors import UsageError

    for name in names:
        if not name or not all(c.isalnum() or c in "-._" for c in name):
            raise UsageError(f"--allow-host {name!r} is not a host name.", "Give the name alone, e.g. --allow-host emulator.")
    return [name.lower() for name in names]


def emulating(**values: Any) -> EmulatorConfig:
    """EMULATING's values → EmulatorConfig (validated)."""
    from comethook_cli.cometchat.payloads import REGIONS
    from comethook_cli.commands import basic_auth
    from comethook_cli.commands.emulate import webhooks
    from comethook_cli.commands.send import parse_delays
    from comethook_cli.errors import UsageError

    if values["on_hook_failure"] not in ("pass", "drop"):
        raise UsageError(f"Unknown --on-hook-failure {values['on_hook_failure']!r}.", "Use pass or drop.")
    if values["region"] not in REGIONS:
        raise UsageError(f"Unknown region {values['region']!r}.", f"Use one of: {', '.join(REGIONS)}.")
    credentials = basic_auth(values["basic_auth"], values["basic_auth_file"])
    hooks = webhooks(values["webhook"] or [], values["triggers"], credentials, values["webhook_id"], values["legacy"])
    delays = parse_delays(values["retry_delays"]) if values["retry_delays"] else None
    return EmulatorConfig(
        host=values["host"], port=values["port"], allowed_hosts=tuple(allowed_hosts(values["allow_host"] or [])),
        api_key=values["api_key"], webhooks=hooks, legacy=values["legacy"],
        app_id=values["app_id"], region=values["region"], hook_timeout=values["hook_timeout"],
        on_hook_failure=values["on_hook_failure"], retry_on_failure=values["retry_on_failure"], retry_delays=delays,
        state=values["state"],
    )  # fmt: skip
