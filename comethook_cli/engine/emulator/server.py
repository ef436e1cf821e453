"""The Emulator: the emulated app (core.py's Core) served by aiohttp under `/v3/...`, plus `/_emulator/*`.

It is for this machine's tools, not for the pages open in its browser: engine/localguard.py's guard (the
inspector's) refuses a foreign `Host` (DNS rebinding) and any cross-origin change; `/_emulator/*` needs the key
when one is set. Every REST call is matched against cometchat/rest.py's ACTIONS, its `apikey` checked, its body
parsed, and it runs alone (one lock) through the handler its family module lists; the state file is written when
it ends, whether it succeeded or was refused.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from comethook_cli import jsonbody
from comethook_cli.cometchat import rest
from comethook_cli.cometchat.rest import ACTIONS, Action, RestCall
from comethook_cli.engine.config import EmulatorConfig
from comethook_cli.engine.emulator import groups, messages, rules, sdk, users
from comethook_cli.engine.emulator.core import Core, Handler
from comethook_cli.engine.emulator.state import Refused
from comethook_cli.engine.localguard import LocalGuard
from comethook_cli.engine.warnings import RateLimitedWarnings
from comethook_cli.errors import ListenerError
from comethook_cli.models import Delivery

#: The REST families, each a module listing its handlers; a new family is one more module here.
FAMILIES: tuple[dict[str, Handler], ...] = (users.HANDLERS, messages.HANDLERS, groups.HANDLERS)
#: Every REST action's handler, by the action's name in cometchat/rest.py's ACTIONS.
HANDLERS: dict[str, Handler] = {name: handler for family in FAMILIES for name, handler in family.items()}


def _route(path: str) -> re.Pattern[str]:
    return re.compile("^/v3" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "$")


#: One route per method and path: an action that shares one (transfer_owner is update_group's call) is served by the first.
ROUTES = list({(a.method, a.path): (_route(a.path), a) for a in reversed(ACTIONS.values())}.values())[::-1]
#: CometChat's real operations the emulator does not serve: (method, path pattern, the operation's name).
UNSERVED = [(method, _route(path), f"{method} {path} ({name})") for method, path, name in rest.NOT_EMULATED]
#: The header that tells an unserved real operation from a path CometChat does not have.
NOT_EMULATED_HEADER = "X-Comethook-Emulator"


class Emulator(Core):
    """The emulated CometChat app: an aiohttp server, its state, and the webhooks it fires."""

    def __init__(
        self,
        config: EmulatorConfig,
        on_call: Callable[[RestCall], None] | None = None,
        on_delivery: Callable[[Delivery], None] | None = None,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(config, on_delivery or (lambda delivery: None))
        self.on_call = on_call or (lambda call: None)
        #: "not emulated" warnings, one per operation per WARN_EVERY seconds (a CI loop must not flood the log).
        self.warnings = RateLimitedWarnings(on_warning or (lambda message: None))
        self.guard = LocalGuard(config.host, config.port, extra_names=frozenset(n.lower() for n in config.allowed_hosts))
        self._runner: web.AppRunner | None = None
        self._lock = asyncio.Lock()
        self._minute = (0, 0)
        self.port = config.port

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """What `trigger --api-base` takes."""
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.port}/v3"

    async def start(self) -> None:
        """Load the state, bind the server and open the webhook client."""
        if self.config.state:
            self.store.open(Path(self.config.state))
        app = web.Application(client_max_size=rules.MAX_REST_BODY, middlewares=[self._guard])
        app.router.add_get("/_emulator/state", self._state_route)
        app.router.add_post("/_emulator/reset", self._reset_route)
        for path, (name, handler) in sdk.CONTROL.items():
            app.router.add_post(f"/_emulator/{path}", self._sdk_route(name, handler))
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        try:
            await site.start()
        except OSError as error:
            await self._runner.cleanup()
            raise ListenerError(
                f"Cannot listen on {self.config.host}:{self.config.port}: {error.strerror or error}.",
                "Pick another --port (0 picks a free one), or stop whatever uses it.",
            ) from None
        sockets = getattr(site._server, "sockets", None) or []  # aiohttp exposes the bound port nowhere else
        if sockets:
            self.port = self.guard.port = sockets[0].getsockname()[1]
        self.webhooks.open()

    async def stop(self) -> None:
        """Cancel deliveries still in flight, close the server, the client and the state file."""
        self.warnings.flush()
        await self.webhooks.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.webhooks.close()
        self.store.close()

    # --- the guard and the control API -------------------------------------------------------------
    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """The inspector's guard (engine/localguard.py): no foreign Host, no change from another site's page."""
        refusal = self.guard.refusal(request)
        if refusal is not None:
            return web.json_response(rest.error_body("ERR_REQUEST_REFUSED", f"The emulator refused this request: {refusal}."),
                                     status=403)  # fmt: skip
        return await handler(request)

    def _control_refusal(self, request: web.Request) -> web.Response | None:
        """The REST routes' key check on /_emulator/*, when a key is set (with none, curl needs no header)."""
        if self.config.api_key is None:
            return None
        try:
            self._authenticate(request)
        except Refused as refusal:
            return web.json_response(rest.error_body(refusal.code, refusal.message), status=rest.status_for(refusal.code))
        return None

    async def _state_route(self, request: web.Request) -> web.Response:
        return self._control_refusal(request) or web.json_response(self.state.to_json())

    async def _reset_route(self, request: web.Request) -> web.Response:
        refusal = self._control_refusal(request)
        if refusal is not None:
            return refusal
        async with self._lock:
            try:
                self.store.reset()
            except Refused as failed:
                return web.json_response(rest.error_body(failed.code, failed.message), status=500)
        return web.json_response({"reset": True})

    def _sdk_route(self, name: str, handler: sdk.ControlHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
        """A stand-in for an SDK client's action (sdk.py): the control routes' key rule, one call at a time like REST,
        logged like a REST call; every answer, refusals included, carries rest.EMULATOR_MARK."""

        async def route(request: web.Request) -> web.Response:
            started, sent = time.perf_counter(), None
            try:
                if self.config.api_key is not None:
                    self._authenticate(request)
                sent = await self._body(request)
                if self.state_bytes >= rules.MAX_STATE_BYTES:
                    raise Refused("ERR_PLAN_QUOTA_RESTRICTION", f"The emulator's state is {self.state_bytes} bytes, its limit.")
                async with self._lock:
                    try:
                        status, answer = 200, await handler(self, sent)
                    finally:
                        self.store.flush()
            except Refused as refusal:
                status = rest.status_for(refusal.code)
                answer = {**rest.error_body(refusal.code, refusal.message, refusal.details), **rest.EMULATOR_MARK}
            except (TypeError, ValueError, KeyError, AttributeError) as unforeseen:
                status = 500
                answer = {**rest.error_body("ERR_EXCEPTION", f"The emulator could not handle this call: {unforeseen!r}."),
                          **rest.EMULATOR_MARK}  # fmt: skip
            elapsed = (time.perf_counter() - started) * 1000
            self.on_call(RestCall(name, "POST", request.path_qs, status, answer, elapsed, rest.read_error(answer), request=sent))
            return web.json_response(answer, status=status, headers=self._rate_headers())

        return route

    # --- REST --------------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        action: Action | None = None
        actor = request.headers.get("onBehalfOf", "").strip().lower() or None
        sent: Any = None
        headers = self._rate_headers()
        try:
            self._authenticate(request)  # before the route, as production: a bad key gets 401 on any path
            action, params = self._match(request, headers)
            sent = await self._body(request)
            async with self._lock:  # one call at a time: the state changes as CometChat's would, call by call
                try:
                    status, answer = 200, await self._dispatch(action, params, sent, actor)
                finally:  # a refused call may have changed some records before it was refused (add_members)
                    self.store.flush()
        except Refused as refusal:
            status, answer = rest.status_for(refusal.code), rest.error_body(refusal.code, refusal.message, refusal.details)
        except (TypeError, ValueError, KeyError, AttributeError) as unforeseen:
            # A body shape no check foresaw must cost that call a 500, never the emulator.
            status, answer = 500, rest.error_body("ERR_EXCEPTION", f"The emulator could not handle this call: {unforeseen!r}.")
        response = web.json_response(answer, status=status, headers=headers)
        error = rest.read_error(answer)
        self.on_call(
            RestCall(
                action.name if action else None, request.method, request.path_qs, status, answer,
                (time.perf_counter() - started) * 1000, error, request=sent, on_behalf_of=actor,
            )
        )  # fmt: skip
        return response

    def _rate_headers(self) -> dict[str, str]:
        """X-Rate-Limit and X-Rate-Limit-Remaining, as every CometChat answer carries (standard operations: 20,000/min)."""
        minute, used = self._minute
        now = int(time.time() // 60)
        used = used + 1 if now == minute else 1
        self._minute = (now, used)
        return {"X-Rate-Limit": "20000", "X-Rate-Limit-Remaining": str(max(20000 - used, 0))}

    def _match(self, request: web.Request, headers: dict[str, str]) -> tuple[Action, dict[str, str]]:
        """The action and its parameters: the query string's, then the path's (which win). An unserved real operation
        gets production's 404 too, plus NOT_EMULATED_HEADER in `headers` and a warning naming it."""
        path = request.rel_url.raw_path
        for pattern, action in ROUTES:
            found = pattern.match(path)
            if found and action.method == request.method:
                return action, {**request.query, **{key: unquote(value) for key, value in found.groupdict().items()}}
        for method, pattern, operation in UNSERVED:
            if method == request.method and pattern.match(path):
                headers[NOT_EMULATED_HEADER] = "not-emulated"
                self.warnings.warn(operation, f"Not emulated: {operation} is a real CometChat operation; answered 404.")
                break
        raise Refused("ERR_API_NOT_FOUND", "The API endpoint is invalid. Please verify the API call.")

    def _authenticate(self, request: web.Request) -> None:
        key = request.headers.get("apikey", "")
        if not key:
            raise Refused("AUTH_ERR_EMPTY_APIKEY", "The apikey header is empty or missing.")
        if self.config.api_key is not None and key != self.config.api_key:
            raise Refused("AUTH_ERR_APIKEY_NOT_FOUND", "The API key is not found for this app. Please check the apikey header.")

    async def _body(self, request: web.Request) -> Any:
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise Refused("ERR_BAD_REQUEST", f"The request body is larger than {rules.MAX_REST_BODY} bytes.") from None
        if not raw.strip():
            return {}
        try:
            body = jsonbody.parse(raw)
        except jsonbody.JsonBodyError as error:
            raise Refused("ERR_BAD_REQUEST", f"The request body is not valid JSON: {error}.") from None
        if not isinstance(body, dict):
            raise Refused("ERR_BAD_REQUEST", "The request body must be a JSON object.")
        return body

    async def _dispatch(self, action: Action, params: dict[str, str], body: dict[str, Any], actor: str | None) -> Any:
        if action.on_behalf_of == "required" and not actor:
            raise Refused(
                "ERR_BAD_REQUEST", "The onBehalfOf header is required.", {"onBehalfOf": ["The onBehalfOf header is required."]}
            )
        if actor is not None and actor != rules.SYSTEM_USER:
            self.user(actor)
        if action.method in ("POST", "PUT") and self.state_bytes >= rules.MAX_STATE_BYTES:
            raise Refused(
                "ERR_PLAN_QUOTA_RESTRICTION",
                f"The emulator's state is {self.state_bytes} bytes, its limit; POST /_emulator/reset empties it.",
            )
        return await HANDLERS[action.name](self, params, body, actor)
