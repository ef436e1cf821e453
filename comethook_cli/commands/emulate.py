"""`comethook emulate`: serve the emulated CometChat REST API until interrupted, logging every call and delivery."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import TYPE_CHECKING

from comethook_cli.errors import UsageError

if TYPE_CHECKING:
    from comethook_cli.engine.config import EmulatorConfig, WebhookTarget


def webhooks(
    urls: list[str], triggers: str | None, basic_auth: str | None, webhook_id: str, legacy: bool
) -> tuple[WebhookTarget, ...]:
    """--webhook URL (repeatable) with --triggers, --basic-auth, --webhook-id → the configured webhooks."""
    from comethook_cli.cometchat.payloads import trigger_names
    from comethook_cli.engine.config import WebhookTarget
    from comethook_cli.engine.urls import normalize_url, redact_url, take_credentials

    chosen = None
    if triggers and triggers.strip() != "all":
        chosen = frozenset(t.strip() for t in triggers.split(",") if t.strip())
        unknown = sorted(chosen - set(trigger_names()))
        if unknown:
            raise UsageError(
                f"Unknown trigger(s) in --triggers: {', '.join(unknown)}.", "`comethook payloads list` shows them all."
            )
    targets = []
    for n, url in enumerate(urls):
        # Credentials in the URL are the webhook's Basic auth, as CometChat's Dashboard keeps them beside it.
        bare, credentials = take_credentials(normalize_url(url))
        if credentials is not None and basic_auth:
            raise UsageError(
                f"Two sets of credentials: the user info in --webhook {redact_url(url)} and --basic-auth.",
                "Give one of them: drop the user:password@ from --webhook, or drop --basic-auth.",
            )
        targets.append(WebhookTarget(bare, webhook_id if n == 0 else f"{webhook_id}-{n + 1}", chosen, basic_auth or credentials))
    return tuple(targets)


def run(config: EmulatorConfig, json_out: bool, quiet: bool) -> None:
    """Start, say where, serve until SIGINT/SIGTERM (exit 0)."""
    from comethook_cli.engine.emulator import CHOICES, LEGACY_TRIGGERS, Emulator
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
        emulator = Emulator(config, on_call=shown.served, on_delivery=shown.webhook)
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
                ("Webhooks", ", ".join(f"{w.url} [{w.webhook_id}]" for w in config.webhooks) or "none"),
                ("Generation", "legacy (before_message, after_message)" if config.legacy else "current"),
                ("API key", "the one given (COMETCHAT_API_KEY)" if config.api_key else "any non-empty apikey header"),
                ("Emulator's choice", CHOICES["hook_failure"]),
            ]
            shown.ready(wire.Ready(root, None, emulator.base_url), banner)
            await stop.wait()
        finally:
            await emulator.stop()

    asyncio.run(serve())
    shown.note("Emulator stopped.")
