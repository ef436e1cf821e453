"""`comethook mcp`: comethook as an MCP server over stdio, on the official SDK (`pip install 'comethook[mcp]'`).

Each tool is declared here with its typed input schema (the SDK builds it from the signature) and a structured
result (a TypedDict: the SDK publishes its output schema); tools.py does the work through the engine. Every call is
bounded in time (TOOL_SECONDS) and in bytes (limits.bound), has the secrets it read scrubbed from its result, and
turns a ComethookError into a tool error with the CLI's message and hint: the server keeps serving.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from comethook_cli import __version__
from comethook_cli.engine.config import Checking, Delivering, default
from comethook_cli.errors import ComethookError, InvalidSetting
from comethook_cli.mcp import tools
from comethook_cli.mcp.limits import Secrets, bound

#: The longest one tool call may take (seconds), whatever it waits for: an agent is never left hanging.
TOOL_SECONDS = 90.0
#: The tools that send nothing: all that `--read-only` offers.
READ_ONLY = ("list_payloads", "show_payload", "explain_answer", "history_list", "history_show", "listen_status")
#: How many exchanges the recent-exchanges resource holds.
RECENT = 20
INSTRUCTIONS = (
    "comethook knows CometChat's webhooks: its canned deliveries (list_payloads, show_payload), what CometChat does "
    "with a before_message answer (explain_answer: PASS, INJECT, DROP or INVALID), and it can fire deliveries at a "
    "handler (send, check), read and replay what a running `comethook listen` received (history_list, history_show, "
    "replay, listen_status) and make CometChat or `comethook emulate` fire real webhooks (trigger). Secrets are never "
    "arguments: name the environment variable that holds them (basic_auth_env, header_env)."
)

Generation = Literal["current", "legacy"]
Verdict = Literal["pass", "inject", "drop", "invalid"]
Expect = Literal["ok", "pass", "inject", "drop"]
#: engine.restvalues.TriggerExpectation's values, spelled out for the tool's schema (a test keeps the two equal).
TriggerExpect = Literal["ok", "delivered", "pass", "inject", "drop", "dropped", "blocked"]
Timeout = Annotated[float, Field(gt=0, le=tools.MAX_TIMEOUT, description="Seconds to wait for the answer.")]
Overrides = Annotated[
    dict[str, str] | None,
    Field(description=f"Builder options, as `comethook send`'s flags of the same name: {', '.join(tools.OVERRIDES)}."),
]
Sets = Annotated[
    list[str] | None,
    Field(description='PATH=VALUE changes to paths that exist, e.g. "data.data.text=hello" (VALUE: JSON or text).'),
]
Adds = Annotated[list[str] | None, Field(description="PATH=VALUE for paths to make (metadata, a new key).")]
Unsets = Annotated[list[str] | None, Field(description="PATHs to take out of the body.")]
Headers = Annotated[dict[str, str] | None, Field(description="Extra request headers (never a credential: see header_env).")]
HeaderEnv = Annotated[
    dict[str, str] | None, Field(description="Secret headers: header name → the environment variable holding its value.")
]
BasicAuthEnv = Annotated[str | None, Field(description="The environment variable holding Basic auth USER:PASS.")]


class Result(TypedDict):
    """Every result may say it was cut to fit (limits.bound)."""

    truncated: NotRequired[str]


class PayloadList(Result):
    """The catalog: `payload` records."""

    payloads: list[dict[str, Any]]


class PayloadShown(Result):
    """One payload record, its live-vs-docs note and the body `send` would deliver."""

    type: str
    trigger: str
    generation: str
    family: str
    description: str
    note: str | None
    body: dict[str, Any]


class Explained(Result):
    """The `explanation` record."""

    type: str
    verdict: str
    verdict_reason: str | None
    meaning: str
    webhook_id: str | None
    metadata: dict[str, Any] | None
    acknowledgement: bool


class Sent(Result):
    """The `delivery` record, its `explanation` (before_message) and the `assertion` (when asked)."""

    delivery: dict[str, Any]
    explanation: dict[str, Any] | None
    assertion: dict[str, Any] | None


class Checked(Result):
    """The suite: `check` records, the `summary`, the failures and warnings by cause."""

    url: str
    reached: bool
    wants_auth: bool
    summary: dict[str, Any]
    causes: list[dict[str, Any]]
    results: list[dict[str, Any]]


class HistoryPage(Result):
    """A page of `event` records, the cursor of the next one, and the history's file."""

    exchanges: list[dict[str, Any]]
    next: int | None
    history: str


class HistoryShown(Result):
    """One `event` record with the body as stored (`raw`)."""

    exchange: dict[str, Any]


class Replayed(Result):
    """The `delivery` record of a replay."""

    replay_of: str
    delivery: dict[str, Any]


class ListenStatus(Result):
    """Whether a listen runs on this home, and (when it does) its `ready` record and health."""

    running: bool
    home: str
    history_path: str
    history_exists: bool
    hint: NotRequired[str]
    ready: NotRequired[dict[str, Any]]
    pid: NotRequired[int]
    history: NotRequired[bool]
    started_at: NotRequired[str]
    health: NotRequired[dict[str, Any]]


class Triggered(Result):
    """The `trigger` record, the `rest` records of its calls, and an --expect that did not hold."""

    trigger: dict[str, Any]
    calls: list[dict[str, Any]]
    expectation_failed: dict[str, Any] | None


def tool_error(error: ComethookError) -> str:
    """The CLI's message and hint for an error, naming a setting as the tool's argument (`region='mars'`)."""
    message, hint = error.named("keyword") if isinstance(error, InvalidSetting) else (error.message, error.hint)
    return message + (f"\nHint: {hint}" if hint else "")  # the SDK puts "Error executing tool NAME: " before it


class Guard:
    """Wraps each tool: time bound, errors as tool errors, secrets scrubbed, bytes bounded."""

    def __init__(self) -> None:
        self.secrets = Secrets()

    def __call__(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """The tool `fn`, guarded (its signature, which the SDK reads for the schemas, kept by functools.wraps)."""

        @functools.wraps(fn)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                async with asyncio.timeout(TOOL_SECONDS):
                    result = await fn(*args, **kwargs)
            except TimeoutError:
                raise ToolError(f"The call took over {TOOL_SECONDS:g} s and was stopped.\nHint: Ask for less at once.") from None
            except ComethookError as error:
                raise ToolError(self.secrets.scrub(tool_error(error))) from None
            except ToolError:
                raise
            except Exception as error:  # a defect: said, scrubbed, and the server keeps serving
                raise ToolError(self.secrets.scrub(f"{type(error).__name__}: {error}")) from None
            return bound(self.secrets.scrub(result))

        return guarded


def build(read_only: bool = False) -> MCPServer[Any]:
    """The server: every tool (only those that send nothing when `read_only`), and the resources. Long because each
    tool is declared here, its signature being its input schema and its docstring its description, each body a call
    into tools.py; they close over the one Secrets of this server."""
    server: MCPServer[Any] = MCPServer(
        "comethook", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING", warn_on_duplicate_resources=False
    )
    guard = Guard()
    secrets = guard.secrets
    reading = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    sending = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)

    def add(fn: Callable[..., Awaitable[Any]]) -> None:
        if fn.__name__ in READ_ONLY:
            server.add_tool(guard(fn), annotations=reading, structured_output=True)
        elif not read_only:
            server.add_tool(guard(fn), annotations=sending, structured_output=True)

    async def list_payloads(generation: Generation | None = None) -> PayloadList:
        """List CometChat's canned webhook payloads: trigger, generation (current or legacy), family, description."""
        return tools.list_payloads(generation)  # type: ignore[return-value]

    async def show_payload(
        trigger: str,
        generation: Generation | None = None,
        overrides: Overrides = None,
        sets: Sets = None,
        adds: Adds = None,
        unsets: Unsets = None,
    ) -> PayloadShown:
        """The exact JSON body `send` would deliver for a trigger (e.g. before_message, message_sent)."""
        return tools.show_payload(trigger, generation, overrides, (sets, adds, unsets))  # type: ignore[return-value]

    async def explain_answer(
        answer: Annotated[Any, Field(description='The handler\'s answer as JSON, e.g. {} or {"status": "ok"}.')] = None,
        answer_text: Annotated[str | None, Field(description="Or the answer's exact text (one that may not be JSON).")] = None,
        status: Annotated[int, Field(ge=100, le=599, description="The HTTP status answered.")] = 200,
        request: Annotated[Any, Field(description="The before_message delivery answered (default: a canned one).")] = None,
    ) -> Explained:
        """What CometChat does with a before_message answer: PASS, INJECT (and the message's metadata after it), DROP
        or INVALID, and whether the answer reads as an acknowledgement that CometChat would inject by mistake."""
        return tools.explain_answer(answer, answer_text, status, request)  # type: ignore[return-value]

    async def send(
        to: Annotated[str, Field(description="The endpoint URL, e.g. http://localhost:8000/webhook.")],
        trigger: Annotated[str | None, Field(description="A canned trigger to fire (list_payloads).")] = None,
        body: Annotated[Any, Field(description="Or your own JSON body.")] = None,
        overrides: Overrides = None,
        sets: Sets = None,
        adds: Adds = None,
        unsets: Unsets = None,
        headers: Headers = None,
        header_env: HeaderEnv = None,
        basic_auth_env: BasicAuthEnv = None,
        expect: Annotated[Expect | None, Field(description="Assert the verdict (before_message) or ok (a 2xx).")] = None,
        expect_json: Annotated[list[str] | None, Field(description="Assert PATH=VALUE in the answer.")] = None,
        max_latency_ms: Annotated[float | None, Field(gt=0, description="Assert the answer's latency.")] = None,
        timeout: Timeout = default(Delivering, "timeout"),
    ) -> Sent:
        """Fire one realistic CometChat delivery at an endpoint: the delivery, the answer, and (before_message) what
        CometChat would do with it."""
        return await tools.send(  # type: ignore[return-value]
            to, trigger, body, (overrides, (sets, adds, unsets)), (headers, header_env, basic_auth_env),
            (expect, expect_json or [], max_latency_ms), timeout, secrets,
        )  # fmt: skip

    async def check(
        to: Annotated[str, Field(description="The endpoint URL to judge.")],
        triggers: Annotated[str | None, Field(description="legacy, current, all, or NAME,NAME (default: the CLI's).")] = None,
        volatile: Annotated[list[str] | None, Field(description="Answer fields that may change on a retry.")] = None,
        basic_auth_env: BasicAuthEnv = None,
        timeout: Timeout = default(Checking, "timeout"),
    ) -> Checked:
        """Run the conformance suite against an endpoint the way CometChat will use it; failures grouped by cause."""
        return await tools.check(to, triggers, volatile or [], basic_auth_env, timeout, secrets)  # type: ignore[return-value]

    async def history_list(
        trigger: Annotated[list[str] | None, Field(description="Only these triggers.")] = None,
        verdict: Verdict | None = None,
        status: Literal["2xx", "3xx", "4xx", "5xx"] | None = None,
        q: Annotated[str | None, Field(max_length=500, description="Text in the id, trigger, summary or body.")] = None,
        limit: Annotated[int, Field(ge=1, le=tools.MAX_LIST)] = 20,
        cursor: Annotated[int | None, Field(ge=0, description="`next` of the previous page.")] = None,
    ) -> HistoryPage:
        """What `comethook listen` received on this machine, newest first (works while a listen runs)."""
        page = await asyncio.to_thread(tools.history_list, trigger, verdict, status, q, limit, cursor)
        return page  # type: ignore[return-value]

    async def history_show(
        exchange_id: Annotated[str, Field(min_length=1, description="An id, or a unique end of one.")],
    ) -> HistoryShown:
        """One stored exchange in full: request, headers (redacted), body, answer, verdict."""
        shown = await asyncio.to_thread(tools.history_show, exchange_id)
        return shown  # type: ignore[return-value]

    async def replay(
        exchange_id: Annotated[str, Field(min_length=1, description="An id, or a unique end of one.")],
        to: Annotated[str | None, Field(description="Where to (default: where it was forwarded, else the listen).")] = None,
        body: Annotated[Any, Field(description="A new JSON body in place of the stored one.")] = None,
        edits: Sets = None,
        adds: Adds = None,
        unsets: Unsets = None,
        headers: Headers = None,
        header_env: HeaderEnv = None,
        basic_auth_env: BasicAuthEnv = None,
        timeout: Timeout = default(Delivering, "timeout"),
    ) -> Replayed:
        """Deliver a stored exchange again (optionally changed) and show the answer and its verdict."""
        return await tools.replay(  # type: ignore[return-value]
            exchange_id, to, body, (edits, adds, unsets), (headers, header_env, basic_auth_env), timeout, secrets
        )

    async def listen_status() -> ListenStatus:
        """Whether `comethook listen` runs on this history home: its local, public, webhook and inspector URLs and its
        tunnel health."""
        status = await asyncio.to_thread(tools.listen_status)
        return status  # type: ignore[return-value]

    async def trigger(
        verb: Annotated[str, Field(description="message, edit, delete, react, group, member ... (`comethook trigger --help`).")],
        args: Annotated[dict[str, Any] | None, Field(description="The verb's arguments, as in a scenario file's step.")] = None,
        api_base: Annotated[
            str | None, Field(description="`comethook emulate`'s …/v3 URL (default: COMETCHAT_APP_ID's).")
        ] = None,
        wait: Annotated[bool, Field(description="Wait for the webhooks in the running listen's history.")] = False,
        wait_timeout: Annotated[float, Field(gt=0, le=tools.MAX_TIMEOUT)] = 10.0,
        expect: Annotated[TriggerExpect | None, Field(description="What must come of it (`trigger --expect`).")] = None,
    ) -> Triggered:
        """Make CometChat (COMETCHAT_APP_ID, COMETCHAT_REGION, COMETCHAT_API_KEY) or `comethook emulate` fire real
        webhooks through its REST API."""
        return await tools.trigger(verb, args or {}, api_base, wait, wait_timeout, expect, secrets)  # type: ignore[return-value]

    for fn in (
        list_payloads,
        show_payload,
        explain_answer,
        send,
        check,
        history_list,
        history_show,
        replay,
        listen_status,
        trigger,
    ):
        add(fn)
    add_resources(server)
    return server


def add_resources(server: MCPServer[Any]) -> None:
    """Each canned payload template, and the most recent exchanges, readable without a tool call."""
    from comethook_cli.cometchat.payloads import BuildOptions, build, catalog
    from comethook_cli.outputs.wire import dumps

    def reader(template: Any) -> Callable[[], str]:
        def body() -> str:
            return dumps(build(template, BuildOptions()))

        return body

    for template in catalog():
        uri = f"comethook://payloads/{template.generation}/{template.trigger}"
        server.resource(uri, name=f"{template.trigger} ({template.generation})", description=template.description,
                        mime_type="application/json")(reader(template))  # fmt: skip

    @server.resource(
        "comethook://history/recent", name="recent exchanges", mime_type="application/json",
        description=f"The {RECENT} newest exchanges `comethook listen` received here, as `event` records.",
    )  # fmt: skip
    async def recent() -> str:
        try:
            page = await asyncio.to_thread(tools.history_list, None, None, None, None, RECENT, None)
        except ComethookError as error:
            return dumps({"exchanges": [], "error": error.message, "hint": error.hint})
        return dumps(bound(page))


def serve(read_only: bool = False) -> None:
    """Serve over stdio until the client closes it."""
    import anyio

    anyio.run(build(read_only).run_stdio_async)
