"""The inspector's JSON API: pages of exchanges, one in full, replay, send, the canned answers, a HAR export.

Every exchange leaves as the wire format's `event` record (outputs/wire.py), exactly as `listen --json` writes
it; a delivery as the `delivery` record. Errors are `{"error", "hint"}` with a 4xx status. The guard in
server.py has already checked the Host, and for changes the token and the Origin, before any handler runs.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from comethook_cli import __version__, jsonbody
from comethook_cli.engine.session import WEBHOOK_PATH
from comethook_cli.engine.values import BUILD_FIELDS
from comethook_cli.errors import ComethookError, InvalidSetting, UsageError
from comethook_cli.models import COMETCHAT_BUDGET_MS, JSON, Answer, AnsweredBy, Delivery, Exchange, parse_body
from comethook_cli.outputs import exports, wire

if TYPE_CHECKING:
    from comethook_cli.engine.history.reader import History
    from comethook_cli.engine.hub import Hub, QueueSubscription
    from comethook_cli.engine.session import Session

#: The header a replay carries, naming the exchange it replays: the page links the two by it.
REPLAY_HEADER = "X-Comethook-Replay-Of"
PAGE_LIMIT = 500
#: The largest page cursor (`before`): the history's sequence numbers are SQLite integers.
MAX_CURSOR = 2**63 - 1
DEFAULT_PAGE = 100
#: How many exchanges one HAR export reads from the history at a time.
EXPORT_PAGE = 200
VERDICTS = ("pass", "inject", "drop", "invalid")
SEND_TIMEOUT = 10.0
#: How long a replay or send to the listener itself waits for the listener to publish what it received.
SELF_WAIT = 2.0
OPTION_FIELDS = BUILD_FIELDS


class Served(Protocol):
    """What the API needs of the server it runs in (server.Inspector)."""

    hub: Hub
    history: History | None
    session: Session | None
    token: str


class ApiError(Exception):
    """A request the API refuses: its status, the message and a hint."""

    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint = hint


def json_response(document: JSON, status: int = 200) -> web.Response:
    """A JSON answer through the wire format's strict encoder (no NaN, controls escaped)."""
    return web.Response(text=wire.dumps(document), status=status, content_type="application/json", charset="utf-8")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _answering(handler: Handler) -> Handler:
    """Turn ApiError and ComethookError into a JSON 4xx (a bad request never becomes a 500)."""

    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as error:
            return json_response({"error": error.message, "hint": error.hint}, error.status)
        except InvalidSetting as error:  # named as the request's own field: `Unknown region 'xx'.`
            message, hint = error.named("flag", error.setting)
            return json_response({"error": message, "hint": hint}, 400)
        except ComethookError as error:
            return json_response({"error": error.message, "hint": error.hint}, 400)

    return wrapper


def whole(query: Any, name: str, low: int, high: int, hint: str | None = None) -> int | None:
    """A numeric query parameter: None when absent or empty, else a whole number in [low, high] (ApiError 400:
    a huge one would overflow SQLite's integers and fail as a 500)."""
    text = query.get(name) or ""
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= 19) or not low <= int(text) <= high:
        raise ApiError(400, f"{name} must be a whole number from {low} to {high}.", hint)
    return int(text)


def filters(query: Any) -> dict[str, Any]:
    """The list filters of a query string: trigger (repeated or comma-separated), verdict, status class, q."""
    triggers = [name for value in query.getall("trigger", []) for name in value.split(",") if name]
    verdict = query.get("verdict") or None
    if verdict is not None and verdict not in VERDICTS:
        raise ApiError(400, f"Unknown verdict {verdict!r}.", f"Use one of: {', '.join(VERDICTS)}.")
    status_text = (query.get("status") or "").lower().removesuffix("xx")
    if status_text and (not (status_text.isascii() and status_text.isdigit()) or not 1 <= int(status_text) <= 5):
        raise ApiError(400, f"Unknown status class {query.get('status')!r}.", "Use 2xx, 3xx, 4xx or 5xx.")
    q = query.get("q") or None
    if q is not None and len(q) > 500:
        raise ApiError(400, "The search text is too long.", "Search for 500 characters at most.")
    return {"trigger": triggers or None, "verdict": verdict, "status": int(status_text) if status_text else None, "q": q}


def detail(exchange: Exchange) -> dict[str, Any]:
    """One exchange in full: the `event` record with the raw body, plus what only the detail pane shows."""
    document = wire.Event(exchange, raw=True).to_json()
    verdict = exchange.verdict
    document.update(
        raw_base64=base64.b64encode(exchange.body).decode("ascii"),
        response_headers=[[name, value] for name, value in exchange.response_headers],
        response_raw=exchange.response_body.decode("utf-8", errors="replace"),
        metadata=verdict.metadata if verdict else None,
        webhook_id=verdict.webhook_id if verdict else exchange.info.webhook,
        replay_of=next((value for name, value in exchange.headers if name.lower() == REPLAY_HEADER.lower()), None),
        curl=exports.curl_command(exchange),
    )
    return document


def replayed(original: Exchange, url: str, body: bytes, headers: dict[str, str], delivery: Delivery, at: float) -> Exchange:
    """A replay to another server as an exchange of the history: what was sent, where, and what came back."""
    from comethook_cli.engine.exchanges import make_exchange

    payload = jsonbody.parse(body)  # replay.plan() parsed these very bytes
    parts = urlsplit(url)
    answered = delivery.status is not None
    answer = Answer(
        status=delivery.status if delivery.status is not None else 502,
        body=delivery.response_body if answered else wire.dumps({"error": delivery.error}).encode(),
        headers=(), answered_by=f"replay of {original.id}", forwarded_to=url,
        error=delivery.error if delivery.failure else None, latency_ms=delivery.latency_ms or 0.0, outcome=AnsweredBy.REPLAY,
    )  # fmt: skip
    # The delivery judged the answer already (or knows why there is none to judge): its verdict, not a second one.
    return make_exchange(
        "POST", parts.path or "/", parts.query, headers.items(), body, payload, answer,
        received_at=at, latency_ms=answer.latency_ms or 0.0, verdict=delivery.verdict, origin="replay",
    )  # fmt: skip


class Api:
    """The handlers behind /api/*."""

    def __init__(self, inspector: Served) -> None:
        self.inspector = inspector
        #: Exchanges of the listener itself already matched to a replay or a send (two identical ones get one each).
        self._claimed: collections.deque[str] = collections.deque(maxlen=256)

    def routes(self, router: web.UrlDispatcher) -> None:
        """Add the API's routes."""
        router.add_get("/api/session", _answering(self.session_info))
        router.add_get("/api/exchanges", _answering(self.exchanges))
        router.add_get("/api/exchanges/{id}", _answering(self.exchange))
        router.add_post("/api/exchanges/{id}/replay", _answering(self.replay))
        router.add_post("/api/send", _answering(self.send))
        router.add_get("/api/rules", _answering(self.rules))
        router.add_put("/api/rules", _answering(self.set_rules))
        router.add_get("/api/export.har", _answering(self.har))
        router.add_get("/api/catalog", _answering(self.catalog))

    # --- reading ----------------------------------------------------------------------------------
    def _history(self) -> History:
        if self.inspector.history is None:
            raise ApiError(409, "This session keeps no history (--no-history).", "Run `comethook listen` without --no-history.")
        return self.inspector.history

    async def session_info(self, request: web.Request) -> web.Response:
        """GET /api/session: what the page needs to know about this run (and the token, for scripts)."""
        session = self.inspector.session
        return json_response({
            "mode": "listen" if session is not None else "inspect",
            "version": __version__,
            "token": self.inspector.token,
            "local_url": session.local_url if session is not None and session.listener is not None else None,
            "public_url": session.public_url if session is not None else None,
            "webhook_url": session.webhook_url if session is not None and session.listener is not None else None,
            "history": self.inspector.history is not None,
            "budget_ms": COMETCHAT_BUDGET_MS,
            # {"tunnel": {"state", "url", "detail"}, "app": {...}}: the stream then sends each change as its wire record.
            "health": session.health() if session is not None else {},
        })  # fmt: skip

    async def exchanges(self, request: web.Request) -> web.Response:
        """GET /api/exchanges: a page of `event` records, newest first, and the cursor of the next (older) page."""
        asked = whole(request.query, "limit", 0, MAX_CURSOR)
        limit = min(max(DEFAULT_PAGE if asked is None else asked, 1), PAGE_LIMIT)
        before = whole(request.query, "before", 0, MAX_CURSOR, "before is the `next` of the previous page.")
        chosen = filters(request.query)
        if self.inspector.history is None:
            return json_response({"exchanges": [], "next": None, "history": False})
        page, cursor = await self.inspector.history.apage(before, limit, **chosen)
        return json_response({"exchanges": [wire.Event(e).to_json() for e in page], "next": cursor, "history": True})

    async def exchange(self, request: web.Request) -> web.Response:
        """GET /api/exchanges/{id}: one exchange in full, the raw body in base64."""
        try:
            exchange = await self._history().aget(request.match_info["id"])
        except UsageError as error:
            raise ApiError(404, error.message, error.hint) from None
        return json_response(detail(exchange))

    async def catalog(self, request: web.Request) -> web.Response:
        """GET /api/catalog: every canned payload (the send panel's triggers), as `payload` records."""
        from comethook_cli.cometchat.payloads import catalog

        return json_response({"payloads": [wire.Payload(template).to_json() for template in catalog()]})

    async def har(self, request: web.Request) -> web.StreamResponse:
        """GET /api/export.har: the exchanges the filters select, as HAR 1.2, written page by page."""
        chosen = filters(request.query)
        history = self._history()
        response = web.StreamResponse(headers={"Content-Type": "application/json; charset=utf-8",
                                               "Content-Disposition": 'attachment; filename="comethook.har"'})  # fmt: skip
        await response.prepare(request)
        har = exports.CompactHar()
        await response.write(har.start().encode())
        before: int | None = None
        while True:
            page, before = await history.apage(before, EXPORT_PAGE, **chosen)
            await response.write(har.entries(page).encode("utf-8"))
            if before is None:
                break
        await response.write(har.END.encode())
        await response.write_eof()
        return response

    # --- changing ---------------------------------------------------------------------------------
    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        try:
            document = jsonbody.parse(await request.read())
        except jsonbody.JsonBodyError as error:
            raise ApiError(400, f"The request body is not JSON: {error}.", "Send a JSON object.") from None
        if not isinstance(document, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        return document

    def _own(self, url: str) -> bool:
        """Whether a URL points at this session's own listener (directly or through its tunnel)."""
        from comethook_cli.engine.listener import LOOPBACK

        session = self.inspector.session
        if session is None or session.listener is None:
            return False
        if session.public_url and url.startswith(session.public_url):
            return True
        parts = urlsplit(url)
        return parts.hostname in (LOOPBACK | {session.config.listener.host}) and parts.port == session.listener.port

    def _own_headers(self, url: str) -> dict[str, str]:
        """The listener's own Basic auth credentials, when a replay or send goes to it (it would refuse it otherwise)."""
        from comethook_cli.engine.auth import basic_auth_header

        session = self.inspector.session
        if session is not None and session.config.listener.basic_auth and self._own(url):
            return {"Authorization": basic_auth_header(session.config.listener.basic_auth)}
        return {}

    async def _through(
        self, url: str, body: bytes, deliver: Callable[[], Awaitable[Delivery]]
    ) -> tuple[Delivery, Exchange | None]:
        """Deliver; when it went to the listener itself, also the exchange the listener recorded of it."""
        if not self._own(url):
            return await deliver(), None
        watch = self.inspector.hub.subscribe_queue(1000)
        try:
            delivery = await deliver()
            return delivery, await self._claim(watch, body)
        finally:
            watch.close()

    async def _claim(self, watch: QueueSubscription, body: bytes) -> Exchange | None:
        # The listener publishes before it answers, so the exchange is almost always queued already.
        deadline = time.monotonic() + SELF_WAIT
        while (left := deadline - time.monotonic()) > 0:
            try:
                record = await asyncio.wait_for(watch.get(), left)
            except TimeoutError:
                return None
            if isinstance(record, Exchange) and record.body == body and record.id not in self._claimed:
                self._claimed.append(record.id)
                return record
        return None

    async def replay(self, request: web.Request) -> web.Response:
        """POST /api/exchanges/{id}/replay {"to", "body"}: deliver it again (changed); answers the new exchange."""
        from comethook_cli.cometchat.payloads import encode
        from comethook_cli.engine import replay

        history = self._history()
        try:
            original = await history.aget(request.match_info["id"])
        except UsageError as error:
            raise ApiError(404, error.message, error.hint) from None
        document = await self._body(request)
        to, body = document.get("to"), document.get("body")
        if to is not None and not isinstance(to, str):
            raise ApiError(400, '"to" must be a URL or null.')
        edits = replay.Edits(body=encode(body)) if "body" in document and body is not None else replay.Edits()
        session = self.inspector.session
        listener = session.local_url if session is not None and session.listener is not None else None
        url = replay.target_of(original, to, listener)
        if url is None:
            raise ApiError(
                400, f"{original.id} was not forwarded anywhere, so there is no default target.", "Type a URL to replay to."
            )
        plan = replay.plan(original, url, edits)
        extra = {REPLAY_HEADER: original.id, **self._own_headers(url)}
        started = time.time()
        delivery, exchange = await self._through(
            url, plan.outgoing.body, lambda: replay.replay(original.id, url, edits, history=history, headers=extra, timeout=SEND_TIMEOUT)
        )  # fmt: skip
        if exchange is None and not self._own(url):
            sent = {**{n: v for n, v in plan.headers.items() if n.lower() != REPLAY_HEADER.lower()}, **extra}
            exchange = replayed(original, url, plan.outgoing.body, sent, delivery, started)
            lost = await self.inspector.hub.commit(exchange)
            if lost is not None:  # the replay went out; only its record is missing, and the history must say why
                self.inspector.hub.warn(f"replay {exchange.id} of {original.id} not stored in the history: {lost.reason}")
            self.inspector.hub.publish(exchange)
        return json_response({
            "replay_of": original.id,
            "exchange": wire.Event(exchange).to_json() if exchange is not None else None,
            "delivery": wire.DeliveryRecord(delivery).to_json(),
        })  # fmt: skip

    async def send(self, request: web.Request) -> web.Response:
        """POST /api/send {"trigger", "to", "options"}: build a canned delivery and fire it; answers the delivery."""
        from comethook_cli.cometchat.payloads import build, encode, find_template
        from comethook_cli.engine.sender import Outgoing, connector, deliver, marked
        from comethook_cli.engine.urls import normalize_url

        document = await self._body(request)
        trigger, to = document.get("trigger"), document.get("to")
        if not isinstance(trigger, str) or not trigger:
            raise ApiError(400, '"trigger" must name a trigger of the catalog.', "GET /api/catalog lists them.")
        if to is not None and not isinstance(to, str):
            raise ApiError(400, '"to" must be a URL or null (the listener itself).')
        options = document.get("options") or {}
        if not isinstance(options, dict):
            raise ApiError(400, '"options" must be an object.')
        session = self.inspector.session
        if not to and (session is None or session.listener is None):
            raise ApiError(400, "No listener runs here to send to.", 'Give "to": the URL of your endpoint.')
        url = normalize_url(to) if to else session.local_url + WEBHOOK_PATH  # type: ignore[union-attr]
        template = find_template(trigger, bool(options.get("legacy")))
        payload = build(template, build_options(options))
        body = encode(payload)

        async def fire() -> Delivery:
            async with aiohttp.ClientSession(connector=connector(1, False)) as client:
                headers = marked(self._own_headers(url), "send")
                return await deliver(client, url, Outgoing(body, payload, template.trigger), headers, SEND_TIMEOUT)

        delivery, exchange = await self._through(url, body, fire)
        return json_response({
            "delivery": wire.DeliveryRecord(delivery).to_json(),
            "exchange": wire.Event(exchange).to_json() if exchange is not None else None,
        })  # fmt: skip

    async def rules(self, request: web.Request) -> web.Response:
        """GET /api/rules: how this session answers, and whether the canned answer can be switched here."""
        session = self.inspector.session
        if session is None or session.responder is None:
            return json_response({"editable": False, "answering": None})
        responder = session.responder
        # While before_message goes to an app, the app answers it: a canned answer switched here would change nothing.
        forwarded_to = session.forwarded_to("before_message")
        return json_response({
            "editable": forwarded_to is None,
            "forwarded_to": forwarded_to,
            "answering": session.answering,
            "respond": responder.action.label,
            "respond_body": parse_body(responder.action.body),
            "drop_if": responder.drop_if.pattern if responder.drop_if is not None else None,
            "rules": len(responder.rules),
            "delay_ms": responder.delay * 1000,
            "status": responder.status,
            "forwarding": session.config.forward.enabled,
        })  # fmt: skip

    async def set_rules(self, request: web.Request) -> web.Response:
        """PUT /api/rules {"respond": "pass" | "drop" | {JSON object to inject}}: switch the canned answer of the running
        listen (the older "inject:JSON" text is taken too). Parsed by engine.values, as --respond and respond= are."""
        from comethook_cli.engine import values

        session = self.inspector.session
        if session is None:
            raise ApiError(
                409, "No listen runs here: `comethook inspect` only reads the history.", "Use the page of `comethook listen`."
            )
        forwarded_to = session.forwarded_to("before_message")
        if forwarded_to is not None:
            raise ApiError(
                409, f"before_message is forwarded to {forwarded_to}: your app answers it, so a canned answer would change nothing.",
                "Change your app's answer; or forward only other triggers (--route TRIGGER=URL instead of --forward-to), and "
                "before_message gets the canned answer.",
            )  # fmt: skip
        document = await self._body(request)
        spec = document.get("respond")
        if not isinstance(spec, (str, dict)):
            raise ApiError(400, '"respond" must be pass, drop or a JSON object to inject.', 'e.g. {"respond": {"flag": true}}')
        # No `read`: a running session reads no file for its answer. The terminal says the change (its banner said otherwise).
        session.set_action(values.action(spec), changed_in="the inspector")
        return await self.rules(request)


def build_options(options: dict[str, Any]) -> Any:
    """The send panel's options → BuildOptions (strings, `sets` as PATH=VALUE, `legacy`); ApiError for anything else."""
    from comethook_cli.engine import values

    unknown = set(options) - {*OPTION_FIELDS, "sets", "legacy"}
    if unknown:
        raise ApiError(400, f"Unknown option(s): {', '.join(sorted(unknown))}.", f"Use {', '.join(OPTION_FIELDS)}, sets, legacy.")
    given: dict[str, str | None] = {}
    for name in OPTION_FIELDS:
        value = options.get(name)
        if value not in (None, "") and not isinstance(value, str):
            raise ApiError(400, f'"{name}" must be a string.')
        given[name] = value or None  # an empty field of the panel: the default
    sets = options.get("sets") or []
    if not isinstance(sets, list) or not all(isinstance(item, str) for item in sets):
        raise ApiError(400, '"sets" must be a list of PATH=VALUE strings.')
    # The page's "Set" lines may make new paths (its example adds metadata): --add's meaning, as before issue 27.
    # region: InvalidSetting, a 400 that names the field
    return values.build_options(given, adds=[item for item in sets if item.strip()])
