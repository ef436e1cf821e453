"""What a user writes (a flag, a project-file key, a JSON field of the inspector, a Python argument) → the domain
values the configs hold: one parser per kind of value, shared by every adapter, so each value is checked here once.

Pure: no I/O and no output (`inject:@FILE` is read by the adapter's `read`; a warning goes to the caller's `warn`).
It lives in the engine because it builds both cometchat/'s types (Action, Rule, Region) and the engine's (Retention,
Route, Fallback), and every adapter sits above the engine. A bad value raises errors.InvalidSetting, which names the
setting in domain terms (`status`, `fallback`); the CLI says it as a flag, the Python API as a keyword argument.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from comethook_cli.cometchat.rest import Region
from comethook_cli.errors import InvalidSetting, Named, SettingText, UsageError
from comethook_cli.models import JSON

if TYPE_CHECKING:
    from comethook_cli.cometchat.payloads import BuildOptions, Template
    from comethook_cli.cometchat.rules import Action, Regex, Rule
    from comethook_cli.engine.history.retention import Retention
    from comethook_cli.engine.runs import Expectations, Expected


class Fallback(StrEnum):
    """What CometChat gets when the app forwarded to is down, too slow, or answers too much."""

    ERROR = "error"
    PASS = "pass"
    DROP = "drop"


class NgrokRegion(StrEnum):
    """The regions the ngrok agent accepts."""

    US = "us"
    EU = "eu"
    AP = "ap"
    AU = "au"
    SA = "sa"
    JP = "jp"
    IN = "in"


@dataclass(frozen=True)
class Route:
    """One trigger relayed to a primary target of its own (the URL normalised, user info still in it)."""

    trigger: str
    url: str


# --- canned answers ----------------------------------------------------------------------------------------


def action(spec: str | Mapping[str, Any], read: Callable[[str], bytes] | None = None) -> Action:
    """`pass`, `drop`, `inject:JSON`, `inject:@FILE` (read by `read`, the adapter's), or an object to inject → an Action."""
    from comethook_cli import jsonbody
    from comethook_cli.cometchat.rules import canned

    if not isinstance(spec, str):
        return _inject(dict(spec))
    named = canned(spec)
    if named is not None:
        return named
    if not spec.startswith("inject:"):
        raise InvalidSetting("respond", ".", "Use pass, drop, inject:JSON or inject:@FILE.", value=spec, before="Unknown ")
    source: str | bytes = spec.removeprefix("inject:")
    if spec.startswith("inject:@"):
        if read is None:  # no file is read here: only an adapter that may read one passes `read`
            raise InvalidSetting("respond", ": no file is read here.", 'Give the JSON itself: inject:{"key": 1}.', value=spec)
        source = read(spec[8:])
    try:
        value = jsonbody.parse(source)
    except jsonbody.JsonBodyError as error:
        raise InvalidSetting(
            "respond", f": not valid JSON ({error}).", 'Write inject:{"key": "value"} or inject:@file.json.', value=spec
        ) from None
    return _inject(value)


def _inject(value: JSON) -> Action:
    from comethook_cli.cometchat.rules import Action

    if not isinstance(value, dict) or not value:
        raise InvalidSetting(
            "respond", " inject: needs a non-empty JSON object.", "CometChat injects objects; {} would just pass."
        )
    try:
        body = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as error:  # a Python caller's dict may hold what JSON cannot
        raise InvalidSetting("respond", f" inject: not JSON ({error}).", 'e.g. {"flag": True}') from None
    return Action(body.encode(), "inject")


def drop_if(pattern: str | None) -> Regex | None:
    """--drop-if's pattern → a compiled Regex (RE2)."""
    from comethook_cli.cometchat.rules import compile_regex
    from comethook_cli.errors import UsageError

    if not pattern:
        return None
    try:
        return compile_regex(pattern, "")
    except UsageError as error:  # compile_regex says ": PATTERN uses ..." after the `where` it was given
        raise InvalidSetting("drop_if", error.message, error.hint) from None


def rules(entries: Any, where: str) -> tuple[Rule, ...]:
    """Rules from their JSON entries; `where` names them in errors as the adapter's user knows them (a file, a key)."""
    from comethook_cli.cometchat.rules import parse_rules

    return tuple(parse_rules(entries, where))


def status(code: int) -> int:
    """An HTTP status code for every canned answer (the domain's check, which a rule's `status` key shares)."""
    from comethook_cli.cometchat.rules import http_status

    return http_status(code)


def delay_seconds(milliseconds: float) -> float:
    """A delay given in milliseconds (--delay MS, `delay=` in the Python API) → seconds."""
    if isinstance(milliseconds, bool) or not isinstance(milliseconds, (int, float)) or not math.isfinite(milliseconds):
        raise InvalidSetting("delay", " is not a number of milliseconds.", "e.g. {example}.", value=milliseconds, example=2500)
    return milliseconds / 1000  # whether it is 0 or more is AnswerConfig's check, for every caller


# --- forwarding ---------------------------------------------------------------------------------------------


def fallback(spec: str) -> Fallback:
    """error, pass or drop."""
    try:
        return Fallback(spec)
    except ValueError:
        raise InvalidSetting("fallback", ".", f"Use one of: {', '.join(Fallback)}.", value=spec, before="Unknown ") from None


def targets(urls: str | Iterable[str]) -> tuple[str, ...]:
    """The URLs forwarded to (`8000`, `:8000/hook`, full URLs) → checked, normalised URLs; the first is the primary."""
    return tuple(_forward_target(url) for url in ((urls,) if isinstance(urls, str) else urls))


def routes(specs: Iterable[str], warn: Callable[[str], None]) -> tuple[Route, ...]:
    """`TRIGGER=URL` each → Routes; an unknown trigger is routed anyway (CometChat adds triggers), with a warning."""
    from comethook_cli.cometchat.payloads import known_trigger
    from comethook_cli.engine.urls import normalize_url

    found: dict[str, Route] = {}
    for spec in specs:
        trigger, sep, url = spec.partition("=")
        if not sep or not trigger.strip() or not url.strip():
            raise InvalidSetting(
                "route", ".", "Write it as TRIGGER=URL, e.g. {example}.", value=spec, before="Malformed ",
                example="before_message=:8001/moderate",
            )  # fmt: skip
        name, known = known_trigger(trigger, "route")
        if not known:
            warn(
                SettingText(
                    Named("route"), f" {trigger.strip()}: not a trigger comethook knows; routed anyway (CometChat adds triggers)."
                )
            )
        found[name] = Route(name, normalize_url(url))  # a trigger routed twice goes to the last URL, as before
    return tuple(found.values())


# --- regions, the tunnel ------------------------------------------------------------------------------------


def region(spec: str, also: str | None = None) -> Region:
    """A CometChat app region: us, eu or in (`also`: where else the value may have come from, for the hint)."""
    try:
        return Region(spec)
    except ValueError:
        where = f" ({also})" if also else ""
        raise InvalidSetting("region", ".", f"Use one of: {', '.join(Region)}{where}.", value=spec, before="Unknown ") from None


def ngrok_region(spec: str | None) -> NgrokRegion | None:
    """An ngrok region (case and spaces forgiven), with "did you mean"; None: ngrok picks the nearest."""
    if spec is None:
        return None
    folded = spec.strip().lower()
    try:
        return NgrokRegion(folded)
    except ValueError:
        names = [str(r) for r in NgrokRegion]
        close = difflib.get_close_matches(folded, names, n=1, cutoff=0.5)
        hint = (f"Did you mean {close[0]}? " if close else "") + f"ngrok's regions: {', '.join(names)}."
        raise InvalidSetting("tunnel_region", ".", hint, value=spec, before="Unknown ") from None


def domain(spec: str | None) -> str | None:
    """A reserved ngrok domain's bare name: https://my-app.ngrok.app/ (what the Dashboard shows) → my-app.ngrok.app."""
    if not spec:
        return spec
    bare = spec.strip().split("://", 1)[-1].rstrip("/")
    if not bare or "/" in bare or " " in bare:
        raise InvalidSetting(
            "domain", ".", "Give the reserved domain's name, e.g. {example}.", value=spec, before="Malformed ",
            example="my-app.ngrok.app",
        )  # fmt: skip
    return bare


# --- history ------------------------------------------------------------------------------------------------


def retention(max_mb: float, max_age_days: float) -> Retention:
    """A size cap in MiB and an age cap in days (0 turns a cap off) → a Retention in bytes and seconds."""
    from comethook_cli.engine.history.retention import Retention

    return Retention.from_options(max_mb, max_age_days)


# --- events -------------------------------------------------------------------------------------------------


def events(spec: str | None, warn: Callable[[str], None]) -> tuple[str, ...]:
    """`before_message,message_sent` / `legacy` / `current` / `all` → the triggers and generations kept (empty: all)."""
    from comethook_cli.cometchat.payloads import known_trigger

    if spec is None:
        return ()
    chosen: list[str] = []
    for part in (p.strip().lower() for p in spec.split(",")):
        if not part:
            continue
        if part == "all":
            return ()
        if part in ("legacy", "current"):
            chosen.append(part)
            continue
        name, known = known_trigger(part, "events")
        if not known:
            warn(SettingText(Named("events"), f" {part}: not a trigger comethook knows; kept anyway (CometChat adds triggers)."))
        chosen.append(name)
    if not chosen:
        raise InvalidSetting("events", " is empty.", "Name triggers separated by commas, or legacy, current or all.")
    return tuple(dict.fromkeys(chosen))


# --- building a payload (`send`, `payloads show`, the inspector's send panel, `comethook mcp`) ----------------

#: The builder's options given as text: `send`'s flags of the same name.
BUILD_FIELDS = ("type", "text", "sender", "receiver", "group", "webhook_id", "app_id", "region")


def build_options(
    fields: Mapping[str, str | None], sets: Iterable[str] = (), adds: Iterable[str] = (), unsets: Iterable[str] = ()
) -> BuildOptions:
    """The payload builder's options from text (BUILD_FIELDS; None: the default), `region` parsed, and the PATH=VALUE
    `sets` (paths that exist) and `adds` (paths made on purpose), and the PATH `unsets`."""
    from comethook_cli.cometchat.payloads import BuildOptions
    from comethook_cli.cometchat.payloads.paths import parse_set, parse_unset

    unknown = sorted(set(fields) - set(BUILD_FIELDS))
    if unknown:
        raise UsageError(f"Unknown builder option(s): {', '.join(unknown)}.", f"Use {', '.join(BUILD_FIELDS)}.")
    given: dict[str, Any] = {name: value for name, value in fields.items() if value is not None}
    if "region" in given:
        given["region"] = region(given["region"])
    return BuildOptions(
        **given,
        sets=tuple(parse_set(item) for item in sets),
        adds=tuple(parse_set(item, "add") for item in adds),
        unsets=tuple(parse_unset(item) for item in unsets),
    )


# --- delivering (`send`, `replay`, `emulate`) ---------------------------------------------------------------


def header(raw: str) -> tuple[str, str]:
    """`Name: value` → (name, value)."""
    name, sep, value = raw.partition(":")
    if not sep or not name.strip() or any(c.isspace() for c in name.strip()):
        # Only the part before any separator is said back: a pasted `X-Api-Key=sk_live_...` is a secret.
        first = re.split(r"[=:\s]", raw.strip(), maxsplit=1)[0]
        shown = first[:40] + ("…" if len(first) > 40 or len(first) < len(raw.strip()) else "")
        raise InvalidSetting("header", ".", "Write it as {example}.", value=shown, before="Malformed ", example="'Name: value'")
    return name.strip(), value.strip()


def retry_delays(raw: str) -> tuple[float, ...]:
    """`0.1,0.3` → (0.1, 0.3) seconds."""
    try:
        delays = tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        delays = ()
    if not delays or any(d < 0 or not math.isfinite(d) for d in delays):
        raise InvalidSetting(
            "retry_delays", ".", "Give seconds separated by commas, e.g. {example}.", value=raw, before="Malformed ",
            example="0.1,0.3",
        )  # fmt: skip
    return delays


def expectations(expect: str | None, expect_json: Sequence[str] = (), max_latency_ms: float | None = None) -> Expectations:
    """--expect (a verdict, or ok), --expect-json PATH=VALUE each, --max-latency MS → Expectations."""
    from comethook_cli.cometchat.payloads import parse_set
    from comethook_cli.engine.runs import EXPECTATIONS, Expectations

    verdict: Expected | None = next((e for e in EXPECTATIONS if e == expect), None)
    if expect is not None and verdict is None:
        raise InvalidSetting("expect", ".", f"Use one of: {', '.join(EXPECTATIONS)}.", value=expect, before="Unknown ")
    parsed = tuple(parse_set(e, "expect_json") for e in expect_json)
    return Expectations(verdict, parsed, max_latency_ms, tuple(expect_json))


# --- check -------------------------------------------------------------------------------------------------


def triggers(spec: str, fixtures: Mapping[str, Template] | None = None) -> tuple[Template, ...]:
    """legacy | current | all | NAME,NAME… → the templates `check` delivers; a project fixture (`fixtures`, by name)
    named like a trigger takes its place, and NAME may be any fixture's name."""
    from comethook_cli.cometchat.payloads import catalog, find_template, trigger_names

    fixtures = fixtures or {}
    if spec in ("legacy", "current", "all"):
        # A fixture takes the place of the template its name finds (the current one, unless the trigger is legacy-only).
        shadows = {find_template(name).key: fixtures[name] for name in fixtures if name in trigger_names()}
        return tuple(shadows.get(t.key, t) for t in catalog() if spec in ("all", t.generation))
    names = [name.strip() for name in spec.split(",") if name.strip()]
    if not names:
        raise InvalidSetting("triggers", " is empty.", "Use legacy, current, all, or trigger names separated by commas.")
    return tuple(find_template(name, fixtures=fixtures) for name in names)


def volatile(path: str) -> tuple[str, ...]:
    """A dotted path into an answer (`*` matches any one key) → its parts."""
    parts = tuple(path.strip().split("."))
    if not path.strip() or any(not part for part in parts):
        raise InvalidSetting(
            "volatile", ".", "Give a dotted path into the answer, e.g. {example}.", value=path, before="Malformed ",
            example="requestId",
        )  # fmt: skip
    return parts


# --- the listener's bounds on slow request bodies (the Python API's `body_grace=` and `body_min_rate=`) ---------


def body_grace(seconds: float) -> float:
    """Seconds a request body may take to start arriving, and the longest it may pause: a finite number above 0."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds <= 0:
        raise InvalidSetting(
            "body_grace", " is not a number of seconds above 0.", "e.g. {example} (the default).", value=seconds, example=5.0
        )
    return float(seconds)


def body_min_rate(rate: int) -> int:
    """Bytes per second a request body must keep arriving at, on average, once its grace is spent: 1 or more."""
    if isinstance(rate, bool) or not isinstance(rate, int) or rate < 1:
        raise InvalidSetting(
            "body_min_rate", " is not a whole number of bytes per second of 1 or more.", "e.g. {example} (the default).",
            value=rate, example=1024,
        )  # fmt: skip
    return rate


# --- the public URL (`listen --public-url`, `[tunnel] public-url`) ------------------------------------------


def public_url(given: str) -> str:
    """The public URL of a user's own tunnel, as comethook shows and probes it: http(s), a host, no credentials, query
    or fragment; the trailing slash taken off (the banner adds /webhook)."""
    from urllib.parse import urlsplit

    url = given.strip()
    hint = "Give the public address of your own tunnel, e.g. {example}."
    example = "https://hooks.example.com"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        raise InvalidSetting("public_url", ".", hint, value=given, before="Malformed ", example=example) from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidSetting("public_url", " is not an http:// or https:// URL.", hint, value=given, example=example)
    if not parts.hostname:
        raise InvalidSetting("public_url", " names no host.", hint, value=given, example=example)
    if parts.username is not None or parts.password is not None:
        raise InvalidSetting(
            "public_url", " holds credentials.", value=given,
            hint="Leave them out: CometChat's webhook has Basic auth settings of its own (and `listen --basic-auth`).",
        )  # fmt: skip
    if parts.query or parts.fragment or any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise InvalidSetting("public_url", " has a query, a fragment or spaces.", hint, value=given, example=example)
    return url.rstrip("/")


# --- helpers of the parsers above ---------------------------------------------------------------------------


def _forward_target(given: str) -> str:
    """One URL forwarded to, checked by urls.normalize_url (every URL comethook takes goes through it), its error said
    as the `forward_to` setting: the CLI says `URL 'ftp://x'` as it always has, the Python API `forward_to='ftp://x'`."""
    from comethook_cli.engine.urls import normalize_url

    try:
        return normalize_url(given)
    except UsageError as error:
        url = given.strip()
        # normalize_url names the URL as `URL 'x'` (repr of the stripped text) in every message but the empty one.
        before, found, problem = error.message.partition(f"URL {url!r}")
        if not found:  # an empty URL: normalize_url's hint names send's --to
            raise InvalidSetting(
                "forward_to", "No URL given to forward to.", "Give your app's URL, e.g. {example}.", label="",
                example="http://localhost:8000/webhook",
            ) from None  # fmt: skip
        raise InvalidSetting("forward_to", problem, error.hint, value=url, before=before) from None
