"""The typed configuration of a listening session: one frozen dataclass per section.

Each section is what a future `comethook.toml` section will hold, and each field is named after its
long flag (`forward_to` is `--forward-to`): the option groups in cli/options.py read their
defaults from here, so every default has exactly one source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal

from comethook_cli.cometchat.payloads import DEFAULT_APP_ID, DEFAULT_REGION
from comethook_cli.models import (
    DEFAULT_ANSWER_BUDGET,
    DEFAULT_BODY_BUDGET,
    DEFAULT_HISTORY_MAX_AGE_DAYS,
    DEFAULT_HISTORY_MAX_MB,
    DEFAULT_MAX_ANSWER,
    DEFAULT_MAX_BODY,
    DEFAULT_PORT,
)

TunnelMode = Literal["auto", "on", "off"]
#: The regions the ngrok agent accepts for --region.
NGROK_REGIONS = ("us", "eu", "ap", "au", "sa", "jp", "in")
#: What `check` delivers unless --triggers says otherwise ([check]).
CHECK_TRIGGERS = ("before_message", "after_message", "message_sent")


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


@dataclass(frozen=True)
class AnswerConfig:
    """How comethook answers when no app is forwarded to: canned answers and rules ([listen])."""

    respond: str = "pass"
    drop_if: str | None = None
    #: The --rules file the entries in inline_rules came from, to name it; the adapter (cli/) reads it, never the engine.
    rules: str | None = None
    #: The rules, as JSON entries: a --rules file's (read by the CLI), `[[listen.rules]]` in comethook.toml, or a
    #: Python caller's list.
    inline_rules: tuple[Any, ...] = ()
    #: Milliseconds to wait before every canned answer.
    delay: float = 0.0
    status: int = 200


@dataclass(frozen=True)
class ForwardConfig:
    """Relaying deliveries to the developer's app ([listen])."""

    forward_to: tuple[str, ...] = ()
    route: tuple[str, ...] = ()
    forward_timeout: float = 30.0
    fallback: str = "error"
    max_answer: int = DEFAULT_MAX_ANSWER
    #: Bytes of answers being read at once, over every forward and copy; past it a new answer gets the --fallback.
    answer_budget: int = DEFAULT_ANSWER_BUDGET

    @property
    def enabled(self) -> bool:
        """Whether any delivery is forwarded."""
        return bool(self.forward_to or self.route)


@dataclass(frozen=True)
class TunnelConfig:
    """The ngrok tunnel ([tunnel])."""

    tunnel: TunnelMode = "auto"
    ngrok_path: str | None = None
    ngrok_authtoken: str | None = None
    domain: str | None = None
    region: str | None = None
    install_ngrok: bool = False
    tunnel_timeout: float = 10.0
    #: The public URL of a tunnel the user runs (cloudflared, Tailscale Funnel, a reverse proxy): no ngrok tunnel is
    #: opened; this URL is shown, probed and remembered instead.
    public_url: str | None = None


@dataclass(frozen=True)
class HistoryConfig:
    """What is kept of each exchange ([history])."""

    history: bool = True
    history_max_mb: float = DEFAULT_HISTORY_MAX_MB
    history_max_age: float = DEFAULT_HISTORY_MAX_AGE_DAYS
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
    headers: Sequence[str] = ()
    timeout: float = 10.0
    count: int = 1
    concurrency: int = 1
    json_out: bool = False
    expect: str | None = None
    expect_json: Sequence[str] = ()
    max_latency: float | None = None
    simulate_retries: bool = False
    retry_delays: str | None = None
    verbose: bool = False
    content_type: str | None = None
    max_answer: int = DEFAULT_MAX_ANSWER
    insecure: bool = False


@dataclass(frozen=True)
class TriggerOptions:
    """The flags every `trigger` subcommand shares ([trigger])."""

    app_id: str | None = None
    region: str = "us"
    api_key: str | None = None
    api_base: str | None = None
    timeout: float = 15.0
    json_out: bool = False
    verbose: bool = False
    wait: bool = False
    wait_timeout: float = 30.0
    expect: str | None = None


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

HookFailure = Literal["pass", "drop"]


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
    """How `emulate` runs (one field per flag)."""

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
    region: str = DEFAULT_REGION
    hook_timeout: float = 2.0
    on_hook_failure: HookFailure = "pass"
    #: Deliver a failed webhook again at CometChat's cadence (`retry_delays`, compressible for tests).
    retry_on_failure: bool = False
    #: None: CometChat's own cadence, 10 s then 30 s (engine.sender.COMETCHAT_RETRY_DELAYS).
    retry_delays: tuple[float, ...] | None = None
    #: How long an asynchronous webhook delivery may take.
    delivery_timeout: float = 10.0
    state: str | None = None
