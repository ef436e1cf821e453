"""`comethook emulate`: its options; serve the emulated CometChat REST API until interrupted, logging every call and
delivery.

Imported only when the command is used: the root --help lists it from cli.COMMANDS without this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Annotated, Any

import typer

from comethook_cli.cli.app import App, funnel
from comethook_cli.cli.options import (
    ApiKey,
    BasicAuth,
    BasicAuthFile,
    Fixtures,
    JsonOut,
    RetryDelays,
    basic_auth,
    project_fixtures,
)
from comethook_cli.engine.config import EmulatorConfig, WebhookTarget, default
from comethook_cli.errors import UsageError

app = App()  # what the root group takes this command from

#: `emulate`'s options: where it listens, which webhooks it calls and how (the defaults are EmulatorConfig's).
Host = Annotated[str, typer.Option("--host", help="Interface to bind.")]
Port = Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="Port; 0 picks a free one.")]
AllowHost = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-host",
        metavar="NAME",
        help="Also answer to this host name (a container's service name); other names are refused. Repeatable.",
    ),
]
Webhook = Annotated[list[str] | None, typer.Option("--webhook", metavar="URL", help="A webhook to deliver to. Repeatable.")]
Triggers = Annotated[
    str | None, typer.Option("--triggers", metavar="all|NAME,NAME", help="The triggers ticked for the webhooks.")
]
LegacyWebhooks = Annotated[
    bool,
    typer.Option("--legacy/--current", help="Legacy webhooks (before_message, after_message) or current (default)."),
]
WebhookId = Annotated[str, typer.Option("--webhook-id", help="The webhook's id (in payloads and @injected).")]
AppId = Annotated[str, typer.Option("--app-id", help="The app id payloads carry.")]
Region = Annotated[str, typer.Option("--region", help="The region payloads carry: us, eu, in.")]
HookTimeout = Annotated[
    float, typer.Option("--hook-timeout", metavar="SECONDS", min=0.001, help="How long before_message may take.")
]
OnHookFailure = Annotated[
    str,
    typer.Option(
        "--on-hook-failure", metavar="pass|drop", help="Outcome of a before_message timeout, non-2xx or invalid answer."
    ),
]
RetryOnFailure = Annotated[bool, typer.Option("--retry-on-failure", help="Deliver a failed webhook again at 10 s, then 30 s.")]
State = Annotated[str | None, typer.Option("--state", metavar="FILE", help="Keep the state in this SQLite file, not in memory.")]
Moderation = Annotated[
    str | None,
    typer.Option(
        "--moderation",
        metavar="RULES",
        help="Moderate messages by a file of words and /patterns/ (one a line): a match is answered 2xx, then "
        "moderation_engine_blocked; others get moderation_engine_approved beside message_sent.",
    ),
]


def _quirks_help() -> str:
    from comethook_cli.engine.emulator.quirks import help_text

    return help_text()


QuirkOn = Annotated[
    list[str] | None,
    typer.Option("--quirk", metavar="NAME", help="Reproduce this production quirk (all are on; beats --no-quirk). Repeatable."),
]
QuirkOff = Annotated[
    list[str] | None,
    typer.Option("--no-quirk", metavar="NAME", help=f"Do not reproduce this quirk. Repeatable. The quirks: {_quirks_help()}"),
]


@app.command()
@funnel
def emulate(
    json_out: JsonOut = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing per call.")] = False,
    host: Host = default(EmulatorConfig, "host"),
    port: Port = default(EmulatorConfig, "port"),
    allow_host: AllowHost = None,
    webhook: Webhook = None,
    triggers: Triggers = None,
    basic_auth: BasicAuth = None,
    basic_auth_file: BasicAuthFile = None,
    legacy: LegacyWebhooks = default(EmulatorConfig, "legacy"),
    webhook_id: WebhookId = default(WebhookTarget, "webhook_id"),
    api_key: ApiKey = None,
    app_id: AppId = default(EmulatorConfig, "app_id"),
    region: Region = default(EmulatorConfig, "region").value,
    hook_timeout: HookTimeout = default(EmulatorConfig, "hook_timeout"),
    on_hook_failure: OnHookFailure = default(EmulatorConfig, "on_hook_failure").value,
    retry_on_failure: RetryOnFailure = default(EmulatorConfig, "retry_on_failure"),
    retry_delays: RetryDelays = None,
    state: State = None,
    quirk: QuirkOn = None,
    no_quirk: QuirkOff = None,
    moderation: Moderation = None,
    fixtures: Fixtures = None,
) -> None:
    """A local stand-in for CometChat's REST API that fires the webhooks each call causes (offline CI)."""
    config = emulating(
        host=host, port=port, allow_host=allow_host, webhook=webhook, triggers=triggers, basic_auth=basic_auth,
        basic_auth_file=basic_auth_file, legacy=legacy, webhook_id=webhook_id, api_key=api_key, app_id=app_id, region=region,
        hook_timeout=hook_timeout, on_hook_failure=on_hook_failure, retry_on_failure=retry_on_failure,
        retry_delays=retry_delays, state=state, quirk=quirk, no_quirk=no_quirk, moderation=moderation,
        fixtures=project_fixtures(fixtures),
    )  # fmt: skip
    run(config, json_out, quiet)


def emulating(**values: Any) -> EmulatorConfig:
    """EMULATING's values → EmulatorConfig, each parsed once by engine/values.py."""
    from comethook_cli.engine import restvalues
    from comethook_cli.engine import values as parse
    from comethook_cli.engine.emulator.quirks import QUIRKS
    from comethook_cli.errors import InvalidSetting

    hook_failure = restvalues.hook_failure(values["on_hook_failure"])
    region = parse.region(values["region"])
    credentials = basic_auth(values["basic_auth"], values["basic_auth_file"])
    ticked = restvalues.ticked_triggers(values["triggers"])
    hooks = webhooks(values["webhook"] or [], ticked, credentials, values["webhook_id"])
    delays = parse.retry_delays(values["retry_delays"]) if values["retry_delays"] else None
    try:
        quirks_off = restvalues.quirks_off(values.get("quirk") or [], values.get("no_quirk") or [], QUIRKS)
    except InvalidSetting as error:  # --quirk, --no-quirk or the file's no-quirk: the message names the quirk alone
        raise UsageError(*error.named("flag", "quirk")) from None
    return EmulatorConfig(
        host=values["host"], port=values["port"], allowed_hosts=restvalues.allowed_hosts(values["allow_host"] or []),
        api_key=values["api_key"], webhooks=hooks, legacy=values["legacy"],
        app_id=values["app_id"], region=region, hook_timeout=values["hook_timeout"],
        on_hook_failure=hook_failure, retry_on_failure=values["retry_on_failure"], retry_delays=delays,
        state=values["state"], quirks_off=quirks_off, moderation=moderation_rules(values.get("moderation")),
        fixtures=values.get("fixtures") or {},
    )  # fmt: skip


def moderation_rules(path: str | None) -> tuple[Any, ...] | None:
    """--moderation FILE (read here, bounded), or `[emulate] moderation = [...]` written inline in the project file."""
    from comethook_cli.cli.options import read_user_file
    from comethook_cli.cli.project import active
    from comethook_cli.cometchat.moderation import entries_of, parse_moderation

    if path is None:
        loaded = active()
        inline = loaded.inline_moderation if loaded is not None else None
        return None if inline is None else parse_moderation(inline, "[emulate] moderation")
    raw = read_user_file(path, "--moderation", "Give a text file of words and /patterns/, one a line.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"--moderation {path!r} is not UTF-8 text.", "Save the rules as UTF-8, one a line.") from None
    return parse_moderation(entries_of(text), f"--moderation {path}")


def webhooks(
    urls: list[str], triggers: frozenset[str] | None, basic_auth: str | None, webhook_id: str
) -> tuple[WebhookTarget, ...]:
    """--webhook URL (repeatable) with the ticked --triggers, --basic-auth, --webhook-id → the configured webhooks."""
    from comethook_cli.engine.config import WebhookTarget
    from comethook_cli.engine.urls import normalize_url, redact_url, take_credentials

    targets = []
    for n, url in enumerate(urls):
        # Credentials in the URL are the webhook's Basic auth, as CometChat's Dashboard keeps them beside it.
        bare, credentials = take_credentials(normalize_url(url))
        if credentials is not None and basic_auth:
            raise UsageError(
                f"Two sets of credentials: the user info in --webhook {redact_url(url)} and --basic-auth.",
                "Give one of them: drop the user:password@ from --webhook, or drop --basic-auth.",
            )
        targets.append(
            WebhookTarget(bare, webhook_id if n == 0 else f"{webhook_id}-{n + 1}", triggers, basic_auth or credentials)
        )
    return tuple(targets)


def run(config: EmulatorConfig, json_out: bool, quiet: bool) -> None:
    """Start, say where, serve until SIGINT/SIGTERM (exit 0)."""
    from comethook_cli.engine.emulator import CHOICES, LEGACY_TRIGGERS, Emulator
    from comethook_cli.engine.emulator.quirks import QUIRKS
    from comethook_cli.outputs import wire
    from comethook_cli.outputs.views import view

    shown = view(json_out, quiet=quiet)
    if not config.webhooks:
        shown.warning("No --webhook: REST calls are answered, but no webhook is delivered.")
    for hook in config.webhooks:
        if hook.triggers is not None and not any((t in LEGACY_TRIGGERS) == config.legacy for t in hook.triggers):
            generation = "legacy" if config.legacy else "current"
            shown.warning(f"{hook.url}: none of its --triggers is a {generation} trigger, so it gets nothing.")

    async def serve() -> None:
        emulator = Emulator(config, on_call=shown.served, on_delivery=shown.webhook, on_warning=shown.warning)
        await emulator.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(number, stop.set)
        try:
            root = emulator.base_url.removesuffix("/v3")
            banner = [
                ("REST API", f"{emulator.base_url}  (trigger --api-base {emulator.base_url})"),
                (
                    "Control",
                    f"GET {root}/_emulator/state, POST {root}/_emulator/reset"
                    + (" (with the apikey header)" if config.api_key else ""),
                ),
                ("SDK stand-ins", f"POST {root}/_emulator/receipts|join|leave|presence|calls (trigger receipt, join ...)"),
                ("Webhooks", ", ".join(f"{w.url} [{w.webhook_id}]" for w in config.webhooks) or "none"),
                ("Generation", "legacy (before_message, after_message)" if config.legacy else "current"),
                ("API key", "the one given (COMETCHAT_API_KEY)" if config.api_key else "any non-empty apikey header"),
                ("Emulator's choice", CHOICES["hook_failure"]),
                ("Quirks", ", ".join(f"{q} ({'off' if q in config.quirks_off else 'on'})" for q in QUIRKS)),
            ]
            if config.moderation is not None:
                rules = ", ".join(rule.id for rule in config.moderation[:5]) + (" ..." if len(config.moderation) > 5 else "")
                banner.append(("Moderation", f"{len(config.moderation)} rule(s) ({rules or 'none: all approved'})"))
            shown.ready(wire.Ready(root, None, emulator.base_url), banner, f"comethook emulate: CometChat's REST API on {root}")
            await stop.wait()
        finally:
            await emulator.stop()

    asyncio.run(serve())
    shown.note("Emulator stopped.")
