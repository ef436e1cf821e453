"""`comethook emulate`: a local stand-in for CometChat's v3 REST API that fires the webhooks each call causes.

It answers the calls `trigger` makes (cometchat/rest.py lists them) under `/v3/...`, checks the `apikey`
header, validates bodies, keeps users, groups, members, messages and blocks (in memory, or in SQLite with
`state`), and delivers the resulting webhooks, built from the same catalog templates as `send`, filled with
its real state. `before_message` is called synchronously before a message is stored (legacy webhooks).
Points CometChat does not document are the emulator's choice, and say so (`CHOICES`).

One home per job (imports point down this list, never up):

    rules.py     CometChat's limits, the emulator's caps (MAX_*), SYSTEM_USER, LEGACY_TRIGGERS, CHOICES
    quirks.py    production's known quirks (QUIRKS: name, what it does, evidence), on unless --no-quirk
    state.py     Refused, State, and Store: the state in memory and in the `--state` file (changed records only)
    webhooks.py  payloads from the catalog filled with the state's entities; delivery, retries, before_message
    core.py      Core: config + Store + Webhooks, the lookups (user, group, message) and checks handlers share
    users.py  messages.py  groups.py
                 one module per REST family: handlers as plain functions `async def name(app: Core, params,
                 body, actor)`, listed in the module's HANDLERS under the action's name in rest.ACTIONS
    sdk.py       stand-ins for SDK clients (receipts, join/leave, presence, calls), served as /_emulator/* endpoints
    moderation.py  `--moderation`: a sent message judged by the rules, answered 2xx, then moderation_engine_*
    server.py    Emulator(Core): aiohttp, the guard, the key check, routing (and the real operations it does not
                 serve: 404 + X-Comethook-Emulator), bodies, rate headers, /_emulator/*

A new endpoint family is a new small module with its HANDLERS, added to server.py's HANDLERS. Handlers are plain
functions of a Core rather than mixin methods of the Emulator: each family module then depends only on core.py
(no import circle with server.py, which import-linter forbids), a handler's whole surface is the Core it is
given, and server.py's one HANDLERS table is the place to see which function answers which action.

    async with Emulator(EmulatorConfig(webhooks=(WebhookTarget("http://127.0.0.1:8765/webhook"),))) as emulator:
        ...  # point a REST client at emulator.base_url
"""

from comethook_cli.engine.emulator.rules import CHOICES, LEGACY_TRIGGERS, SYSTEM_USER
from comethook_cli.engine.emulator.server import Emulator
from comethook_cli.engine.emulator.state import Refused, State

__all__ = ["CHOICES", "LEGACY_TRIGGERS", "SYSTEM_USER", "Emulator", "Refused", "State"]
