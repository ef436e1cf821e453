"""The typed configuration of a listening session, `send`, `check`, `trigger` and `emulate`: one frozen dataclass per
section.

Each section holds domain values (an Action, compiled Rules, Routes, URLs, a Retention, seconds, enums), never a
flag's string: the adapters (the CLI, the project file through it, the inspector, the Python API) parse what their
users write with engine/values.py, once, and hand over these. The constructors check only invariants of values
that are already typed (a status in 100-599, sizes of at least 1 byte), with errors.InvalidSetting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

from comethook_cli.cometchat.payloads import DEFAULT_APP_ID, Template
from comethook_cli.cometchat.rest import Region
from comethook_cli.engine.history.retention import Retention
from comethook_cli.engine.restvalues import HookFailure, TriggerExpectation
from comethook_cli.engine.values import Fallback, NgrokRegion, Route
from comethook_cli.errors import InvalidSetting
from comethook_cli.models import (
    DEFAULT_ANSWER_BUDGET,
    DEFAULT_BODY_BUDGET,
    DEFAULT_MAX_ANSWER,
    DEFAULT_MAX_BODY,
    DEFAULT_PORT,
)

if TYPE_CHECKING:  # the rules' modules load RE2: only a config that has rules pays for it
    from comethook_cli.cometchat.moderation import ModerationRule
    from comethook_cli.cometchat.rules import Action, Regex, Rule
    from comethook_cli.engine.runs import Expectations

TunnelMode = Literal["auto", "on", "off"]
#: What `check` delivers unless --triggers says otherwise ([check]).
CHECK_TRIGGERS = ("before_message", "after_message", "message_sent")


def _at_least_one(setting: str, value: int | None, hint: str) -> None:
    if value is not None and value < 1:
        raise InvalidSetting(setting, " admits nothing.", hint, value=value)


@dataclass(frozen=True)
class ListenerConfig:
    """Where to listen and what to accept ([listen])."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    max_body: int = DEFAULT_MAX_BODY
    #: USER:PASS that every delivery must carry (None: no Basic auth).
    basic_auth: str | None = None
    #: Open connections allowed; from 90% of it each new one closes the slowest other. None: from the descriptor limit.
    max_connections: int | None = None
    #: Bytes of request bodies held at once, over every connection; past it a new body gets 503 and Retry-After.
    body_budget: int = DEFAULT_BODY_BUDGET
    #: Seconds a body may take to start arriving, and the longest it may pause later (bytes sent ahead of the rate earn
    #: at most this much credit). A delivery's body arrives with its headers, so it never waits on this.
    body_grace: float = 5.0
    #: Bytes per second a body must keep arriving at, on average, once `body_grace` is spent; slower gets 408.
    body_min_rate: int = 1024
    #: Accept requests carrying an Origin header. CometChat never sends one; a web page does, so without this a page
    #: the developer visits cannot post forged deliveries into the listener (and on to the app).
    allow_browser_origin: bool = False

    def __post_init__(self) -> None:
        if self.max_body < 1:
            raise InvalidSetting("max_body", " must be at least 1 byte.", "The default is 1048576 (1 MiB).")
        _at_least_one("max_connections", self.max_connections, "Give it 1 or more, or leave it out for the default.")
        _at_least_one("body_budget", self.body_budget, "Give it 1 or more, or leave it out for the default.")


def _pass() -> Action:
    from comethook_cli.cometchat.rules import PASS_BODY, Action

    return Action(PASS_BODY, "pass")


@dataclass(frozen=True)
class AnswerConfig:
    """How comethook answers when no app is forwarded to: canned answers and rules ([listen])."""

    #: The answer to before_message that no rule (and no `drop_if`) decides.
    action: Action = field(default_factory=_pass)
    #: before_message whose text matches is dropped.
    drop_if: Regex | None = None
    #: Tried first, in order: the first match decides.
    rules: tuple[Rule, ...] = ()
    #: Seconds to wait before every canned answer a rule does not time itself.
    delay: float = 0.0
    #: The HTTP status of every canned answer a rule does not set itself.
    status: int = 200

    def __post_init__(self) -> None:
        from comethook_cli.engine import values

        values.status(self.status)
        if self.delay < 0:
            raise InvalidSetting("delay", " cannot be negative.", "Use 0 or more.")


@dataclass(frozen=True)
class ForwardConfig:
    """Relaying deliveries to the developer's app ([listen])."""

    #: Normalised URLs (engine.values.targets): the first is the primary, the others get copies.
    targets: tuple[str, ...] = ()
    #: Triggers with a primary target of their own.
    routes: tuple[Route, ...] = ()
    #: Seconds to wait for the app.
    timeout: float = 30.0
    fallback: Fallback = Fallback.ERROR
    max_answer: int = DEFAULT_MAX_ANSWER
    #: Bytes of answers being read at once, over every forward and copy; past it a new answer gets the fallback.
    answer_budget: int = DEFAULT_ANSWER_BUDGET

    def __post_init__(self) -> None:
        _at_least_one("max_answer", self.max_answer, "Give it 1 or more, or leave it out for the default.")
        _at_least_one("answer_budget", self.answer_budget, "Give it 1 or more, or leave it out for the default.")

    @property
    def enabled(self) -> bool:
        """Whether any delivery is forwarded."""
        return bool(self.targets or self.routes)

    def target_for(self, trigger: str) -> str | None:
        """The primary target a trigger is relayed to (its route, else the first target), or None: comethook answers it."""
        routed = next((route.url for route in self.routes if route.trigger == trigger), None)
        return routed or (self.targets[0] if self.targets else None)


@dataclass(frozen=True)
class TunnelConfig:
    """The ngrok tunnel ([tunnel])."""

    mode: TunnelMode = "auto"
    ngrok_path: str | None = None
    ngrok_authtoken: str | None = None
    #: A reserved domain's bare name (engine.values.domain).
    domain: str | None = None
    #: None: the agent picks the nearest.
    region: NgrokRegion | None = None
    install_ngrok: bool = False
    #: Seconds the agent gets to open the tunnel.
    timeout: float = 10.0
    #: The public URL of a tunnel the user runs (cloudflared, Tailscale Funnel, a reverse proxy): no ngrok tunnel is
    #: opened; this URL is shown, probed and remembered instead.
    public_url: str | None = None


@dataclass(frozen=True)
class HistoryConfig:
    """What is kept of each exchange ([history])."""

    enabled: bool = True
    retention: Retention = field(default_factory=Retention)
    #: Store secret query values (?token=) exactly, for replays; displays and exports still redact them.
    keep_secrets: bool = False


@dataclass(frozen=True)
class ListenConfig:
    """Everything a listening session needs."""

    listener: ListenerConfig = field(default_factory=ListenerConfig)
    answers: AnswerConfig = field(default_factory=AnswerConfig)
    forward: ForwardConfig = field(default_factory=ForwardConfig)
    tunnel: TunnelConfig = field(default_factory=TunnelConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    #: Stop after this many events (None: run until stopped).
    max_events: int | None = None
    #: Give up after this many seconds (None: no limit).
    timeout: float | None = None
    #: Only these triggers (or generations, "legacy" / "current") are stored and shown; empty: every one (--events).
    events: tuple[str, ...] = ()

    def keeps(self, trigger: str, generation: str) -> bool:
        """Whether --events lets a delivery of this trigger and generation be stored and shown."""
        return not self.events or trigger in self.events or generation in self.events


@dataclass(frozen=True)
class Delivering:
    """How `send` and `replay` deliver, report and assert ([send])."""

    basic_auth: str | None = None
    #: Extra request headers, (name, value) each.
    headers: Sequence[tuple[str, str]] = ()
    timeout: float = 10.0
    count: int = 1
    concurrency: int = 1
    json_out: bool = False
    #: --expect, --expect-json, --max-latency; None: nothing asserted.
    expectations: Expectations | None = None
    simulate_retries: bool = False
    #: Seconds between simulated retries; None: CometChat's own cadence.
    retry_delays: tuple[float, ...] | None = None
    verbose: bool = False
    content_type: str | None = None
    max_answer: int = DEFAULT_MAX_ANSWER
    insecure: bool = False


@dataclass(frozen=True)
class TriggerOptions:
    """The flags every `trigger` subcommand shares ([trigger])."""

    app_id: str | None = None
    region: Region = Region.US
    api_key: str | None = None
    api_base: str | None = None
    timeout: float = 15.0
    json_out: bool = False
    verbose: bool = False
    wait: bool = False
    wait_timeout: float = 30.0
    #: What must come of each call (exit 3 if not); None: nothing asserted.
    expect: TriggerExpectation | None = None


@dataclass(frozen=True)
class Checking:
    """How `check` judges an endpoint ([check]): its defaults' one home (the CLI reads them with `default`, and so does
    engine.checks)."""

    #: Seconds to wait for each answer.
    timeout: float = 5.0
    #: Requests in flight at once: a burst of 64 overwhelms a small single-threaded server's accept queue, and then
    #: latency measures comethook's burst instead of the endpoint.
    concurrency: int = 4

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            hint = f"Use 1 or more (default {default(Checking, 'concurrency')})."
            raise InvalidSetting("concurrency", " sends nothing.", hint, value=self.concurrency)


def default(section: type[Any], name: str) -> Any:
    """The default of one field of a config section (the one source the option declarations read)."""
    for spec in fields(section):
        if spec.name == name:
            if spec.default is not MISSING:
                return spec.default
            if spec.default_factory is not MISSING:
                return spec.default_factory()
    raise KeyError(f"{section.__name__} has no field {name!r}")


# --- emulate ([emulate]) -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookTarget:
    """One webhook configured in the (emulated) Dashboard."""

    url: str
    webhook_id: str = "comethook-emulator"
    #: The triggers ticked for it; None: every trigger of the app's generation.
    triggers: frozenset[str] | None = None
    basic_auth: str | None = None

    def wants(self, trigger: str) -> bool:
        """Whether this webhook is subscribed to `trigger`."""
        return self.triggers is None or trigger in self.triggers


@dataclass(frozen=True)
class EmulatorConfig:
    """How `emulate` runs ([emulate]): domain values (a Region, a HookFailure, each webhook's ticked triggers, checked
    quirk names, parsed moderation rules, seconds), which the CLI (and comethook.toml through it) parses with
    engine/values.py; a flag's text never reaches the emulator."""

    host: str = "127.0.0.1"
    port: int = 8780
    #: Host names the emulator answers to beside loopback and the bound address (a container's service name): any
    #: other name in a Host header is refused, so a web page cannot reach it through DNS rebinding.
    allowed_hosts: tuple[str, ...] = ()
    #: The accepted REST API key; None: any non-empty key.
    api_key: str | None = None
    webhooks: tuple[WebhookTarget, ...] = ()
    legacy: bool = False
    #: What payloads carry as appId and region.
    app_id: str = DEFAULT_APP_ID
    region: Region = Region.US
    hook_timeout: float = 2.0
    on_hook_failure: HookFailure = HookFailure.PASS
    #: Deliver a failed webhook again at CometChat's cadence (`retry_delays`, compressible for tests).
    retry_on_failure: bool = False
    #: None: CometChat's own cadence, 10 s then 30 s (engine.sender.COMETCHAT_RETRY_DELAYS).
    retry_delays: tuple[float, ...] | None = None
    #: How long an asynchronous webhook delivery may take.
    delivery_timeout: float = 10.0
    state: str | None = None
    #: Production quirks turned off, by name (engine/emulator/quirks.py lists them; all are on by default).
    quirks_off: tuple[str, ...] = ()
    #: `--moderation`: the rules messages are judged by (None: moderation off; empty: every message approved).
    moderation: tuple[ModerationRule, ...] | None = None
    #: The project's fixtures by name: one named like a trigger is what the emulator fires for that trigger.
    fixtures: Mapping[str, Template] = field(default_factory=dict)
