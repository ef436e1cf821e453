"""The conformance suite behind `comethook check`: judge an endpoint the way CometChat will use it.

Reuses the catalog, the delivery code and the verdict; this module only adds the checks.
"""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import aiohttp

from comethook_cli.cometchat.payloads import BuildOptions, IdSource, Template, build, encode, find_template
from comethook_cli.engine.auth import basic_auth_header
from comethook_cli.engine.config import Checking, default
from comethook_cli.engine.sender import CHECK_USER_AGENT, CONTENT_TYPE, Outgoing, connector, deliver
from comethook_cli.models import COMETCHAT_BUDGET_MS, DEFAULT_MAX_ANSWER, JSON, ORIGIN_HEADER, Delivery, Failure

Status = Literal["pass", "fail", "warn"]
#: A delivery answered this slowly passes, with a warning: little headroom under CometChat's 2 s.
HEADROOM_MS = 1000.0
MALFORMED = b'{"trigger": "message_sent", "data": {"message": '


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome."""

    name: str
    status: Status
    latency_ms: float | None
    detail: str


@dataclass(frozen=True)
class CheckRun:
    """What the suite came to: the results in a stable order, and whether the endpoint could be reached at all."""

    results: list[CheckResult]
    reached: bool
    #: Why the endpoint could not be reached (None when it was): "tls" gets a hint about certificates.
    failure: Failure | None
    seconds: float
    #: The endpoint answered 401 to a suite run without --basic-auth: it wants credentials.
    wants_auth: bool = False


async def run_checks(
    url: str,
    templates: Sequence[Template],
    basic_auth: str | None = None,
    timeout: float = default(Checking, "timeout"),
    content_type: str = CONTENT_TYPE,
    volatile: Sequence[tuple[str, ...]] = (),
    max_answer: int = DEFAULT_MAX_ANSWER,
    insecure: bool = False,
    concurrency: int = default(Checking, "concurrency"),
    budget_ms: float = COMETCHAT_BUDGET_MS,
) -> CheckRun:
    """Every check against one endpoint (the command layer turns the outcome into an exit code); an answer slower than
    `budget_ms` fails its check."""
    suite = Suite(url, basic_auth, templates, timeout, content_type, volatile, max_answer, insecure, concurrency, budget_ms)
    started = time.perf_counter()
    results, deliveries = await suite.run()
    missed = [d.failure for d in deliveries if not d.reached]
    reached = len(missed) < len(deliveries)
    wants_auth = not basic_auth and any(d.status == 401 for d in deliveries)
    return CheckRun(results, reached, None if reached else missed[0], time.perf_counter() - started, wants_auth)


class Suite:
    """Runs every check against one URL."""

    def __init__(
        self,
        url: str,
        basic_auth: str | None,
        templates: Sequence[Template],
        timeout: float,
        content_type: str = CONTENT_TYPE,
        volatile: Sequence[tuple[str, ...]] = (),
        max_answer: int = DEFAULT_MAX_ANSWER,
        insecure: bool = False,
        concurrency: int = default(Checking, "concurrency"),
        budget_ms: float = COMETCHAT_BUDGET_MS,
    ) -> None:
        Checking(timeout, concurrency)  # its invariants, checked where the section is defined
        self.gate = asyncio.Semaphore(concurrency)
        self.url = url
        self.content_type = content_type
        self.volatile = list(volatile)
        self.max_answer = max_answer
        self.insecure = insecure
        self.auth = {"Authorization": basic_auth_header(basic_auth)} if basic_auth else {}
        self.basic_auth = basic_auth
        self.templates = list(templates)
        self.timeout = timeout
        self.budget_ms = budget_ms
        self.ids = IdSource()

    def _outgoing(self, template: Template) -> Outgoing:

        payload = build(template, BuildOptions(), self.ids)
        return Outgoing(encode(payload), payload, template.trigger)

    async def run(self) -> tuple[list[CheckResult], list[Delivery]]:
        """(results in a stable order, the first delivery of each check: whether they got through tells reachability)."""
        pool = connector(100, self.insecure)
        # The User-Agent marks these as probes, so a `comethook listen` in front of the endpoint shows them as such.
        headers = {"User-Agent": CHECK_USER_AGENT, ORIGIN_HEADER: "check"}
        async with aiohttp.ClientSession(skip_auto_headers=("Content-Type",), connector=pool, headers=headers) as session:
            jobs = [self._delivery(session, t) for t in self.templates]
            if any(t.trigger == "before_message" for t in self.templates):
                jobs.append(self._before_message(session))
            if self.basic_auth:
                jobs += [self._auth(session, None), self._auth(session, "comethook-wrong:credentials")]
            jobs += [self._retry(session), self._malformed(session), self._content_type(session)]
            if any(t.trigger == "before_message" for t in self.templates):
                jobs.append(self._before_message_retry(session))
            gathered = await asyncio.gather(*jobs)
        results = [result for result, _ in gathered]
        deliveries = [delivery for _, delivery in gathered]
        if not self.basic_auth:
            results.append(
                CheckResult(
                    "basic auth enforced",
                    "warn",
                    None,
                    "not tested: give credentials (COMETHOOK_BASIC_AUTH or --basic-auth-file; CometChat recommends Basic auth)",
                )
            )
        return results, deliveries

    async def _post(
        self, session: aiohttp.ClientSession, outgoing: Outgoing, extra: dict[str, str] | None = None, auth: bool = True
    ) -> Delivery:
        async with self.gate:  # latency is measured inside the gate: the endpoint's time, not the wait for a turn
            return await self._deliver(session, outgoing, extra, auth)

    async def _deliver(
        self, session: aiohttp.ClientSession, outgoing: Outgoing, extra: dict[str, str] | None, auth: bool
    ) -> Delivery:
        return await deliver(
            session,
            self.url,
            outgoing,
            {**(self.auth if auth else {}), **(extra or {})},
            self.timeout,
            content_type=self.content_type,
            max_answer=self.max_answer,
        )

    async def _delivery(self, session: aiohttp.ClientSession, template: Template) -> tuple[CheckResult, Delivery]:
        name = f"{template.trigger} ({template.generation}) accepted"
        d = await self._post(session, self._outgoing(template))
        if d.status is None:
            return CheckResult(name, "fail", None, d.error or "no answer"), d
        if not 200 <= d.status < 300:
            hint = (
                f" (it was sent with Content-Type: {self.content_type}; compare it case-insensitively)" if d.status == 415 else ""
            )
            return CheckResult(name, "fail", d.latency_ms, f"answered {d.status}; CometChat expects 2xx{hint}"), d
        if d.response is None and d.error:  # a 2xx whose answer could not be read (over --max-answer)
            return CheckResult(name, "fail", d.latency_ms, d.error), d
        return _budget(name, d, self.budget_ms), d

    async def _before_message(self, session: aiohttp.ClientSession) -> tuple[CheckResult, Delivery]:
        name = "before_message answer usable"
        d = await self._post(session, self._outgoing(find_template("before_message")))
        verdict = d.verdict
        if d.status is None or verdict is None:
            return CheckResult(name, "fail", None, d.error or "no answer"), d
        if verdict.kind == "invalid":
            return CheckResult(name, "fail", d.latency_ms, f"INVALID: {verdict.reason}"), d
        if verdict.kind == "inject" and verdict.reason:
            return CheckResult(name, "warn", d.latency_ms, f"INJECT: {verdict.reason}"), d
        return CheckResult(name, "pass", d.latency_ms, f"verdict {verdict.kind.upper()}"), d

    async def _auth(self, session: aiohttp.ClientSession, wrong: str | None) -> tuple[CheckResult, Delivery]:
        name = "wrong credentials refused" if wrong else "missing credentials refused"
        headers = {"Authorization": basic_auth_header(wrong)} if wrong else {}
        d = await self._post(session, self._outgoing(find_template("message_sent")), headers, auth=False)
        if d.status is None:
            return CheckResult(name, "fail", None, d.error or "no answer"), d
        if d.status in (401, 403):
            return CheckResult(name, "pass", d.latency_ms, f"refused with {d.status}"), d
        if 200 <= d.status < 300:
            return CheckResult(name, "fail", d.latency_ms, f"accepted with {d.status}: anyone can post to this URL"), d
        return CheckResult(name, "warn", d.latency_ms, f"refused with {d.status}; 401 is what an auth failure should say"), d

    async def _retry(self, session: aiohttp.ClientSession) -> tuple[CheckResult, Delivery]:
        """A fire-and-forget trigger twice: CometChat ignores the answer body, so only the 2xx matters."""
        name = "retry of the same delivery"
        template = next((t for t in self.templates if t.trigger != "before_message"), find_template("message_sent"))
        outgoing = self._outgoing(template)
        first = await self._post(session, outgoing)
        if first.status is None:
            return CheckResult(name, "fail", None, first.error or "no answer"), first
        second = await self._post(session, outgoing)
        latency = max(first.latency_ms or 0, second.latency_ms or 0)
        if second.status is None:
            return CheckResult(name, "fail", None, f"the retry got no answer: {second.error}"), first
        if not (200 <= first.status < 300 and 200 <= second.status < 300):
            return CheckResult(name, "fail", latency, f"answers {first.status} then {second.status}; both must be 2xx"), first
        if first.response != second.response:
            detail = f"{template.trigger} twice: {first.status} then {second.status}; the bodies differ, which CometChat ignores"
            return CheckResult(name, "pass", latency, detail), first
        return CheckResult(name, "pass", latency, f"{template.trigger} twice: same {first.status} answer"), first

    async def _before_message_retry(self, session: aiohttp.ClientSession) -> tuple[CheckResult, Delivery]:
        """before_message twice: the same verdict, and the same injected content outside the --volatile fields."""
        name = "before_message retry: same verdict"
        outgoing = self._outgoing(find_template("before_message"))
        first = await self._post(session, outgoing)
        if first.status is None or first.verdict is None:
            return CheckResult(name, "fail", None, first.error or "no answer"), first
        second = await self._post(session, outgoing)
        latency = max(first.latency_ms or 0, second.latency_ms or 0)
        if second.status is None or second.verdict is None:
            return CheckResult(name, "fail", None, f"the retry got no answer: {second.error}"), first
        kinds = (first.verdict.kind.upper(), second.verdict.kind.upper())
        if "INVALID" in kinds:
            return CheckResult(
                name, "fail", latency, f"verdicts {kinds[0]} then {kinds[1]}: an INVALID answer is no verdict"
            ), first
        if kinds[0] != kinds[1]:
            return CheckResult(name, "fail", latency, f"verdict {kinds[0]} then {kinds[1]} for the same message"), first
        if kinds[0] == "INJECT":
            changed = differences(first.response, second.response, self.volatile)
            if changed:
                shown = ", ".join(changed[:3]) + (f" (+{len(changed) - 3} more)" if len(changed) > 3 else "")
                detail = f"injected content differs at {shown}; name fields that may change with --volatile PATH"
                return CheckResult(name, "fail", latency, detail), first
        return CheckResult(name, "pass", latency, f"verdict {kinds[0]} both times"), first

    async def _malformed(self, session: aiohttp.ClientSession) -> tuple[CheckResult, Delivery]:
        name = "malformed body gets a 4xx"
        d = await self._post(session, Outgoing(MALFORMED, None, None))
        if d.status is None:
            why = " (a hang, or a dropped connection)" if d.failure in ("timeout", "protocol") else ""
            return CheckResult(name, "fail", None, f"{d.error}{why}"), d
        if d.status == 401 and not self.basic_auth:
            # A 401 says nothing about the body: the endpoint refused before it read it.
            return CheckResult(name, "fail", d.latency_ms, "answered 401 before reading the body: pass --basic-auth"), d
        if 400 <= d.status < 500:
            return CheckResult(name, "pass", d.latency_ms, f"answered {d.status}"), d
        if d.status >= 500:
            return CheckResult(name, "fail", d.latency_ms, f"answered {d.status}: the endpoint crashes on bad JSON"), d
        return CheckResult(name, "warn", d.latency_ms, f"answered {d.status}: it accepted invalid JSON"), d

    async def _content_type(self, session: aiohttp.ClientSession) -> tuple[CheckResult, Delivery]:
        """Every other request carries the casing CometChat sends; this one the other (documented) casing."""
        probe = "application/json" if self.content_type != "application/json" else CONTENT_TYPE
        name = f"Content-Type: {probe} accepted"
        template = next((t for t in self.templates if t.trigger != "before_message"), find_template("message_sent"))
        d = await self._post(session, self._outgoing(template), {"Content-Type": probe})
        if d.status is None:
            return CheckResult(name, "fail", None, d.error or "no answer"), d
        if 200 <= d.status < 300:
            return CheckResult(name, "pass", d.latency_ms, "accepted in this casing too"), d
        usual = self.content_type or CONTENT_TYPE
        same = await self._post(session, self._outgoing(template), {"Content-Type": usual})
        if same.status == d.status:  # an endpoint failing everything: the casing hint would send its developer astray
            detail = f"answered {d.status}, as it does in the {usual} casing: the casing is not the cause"
            return CheckResult(name, "fail", d.latency_ms, detail), d
        detail = (
            f"answered {d.status}: compare the Content-Type case-insensitively "
            "(CometChat documents application/json and sends Application/json)"
        )
        return CheckResult(name, "fail", d.latency_ms, detail), d


def differences(first: JSON, second: JSON, volatile: Sequence[tuple[str, ...]] = (), at: tuple[str, ...] = ()) -> list[str]:
    """The dotted paths where two answers differ, leaving out the volatile ones (and everything under them)."""
    if any(len(v) <= len(at) and all(p in ("*", a) for p, a in zip(v, at, strict=False)) for v in volatile):
        return []
    if isinstance(first, dict) and isinstance(second, dict):
        keys = list(dict.fromkeys([*first, *second]))
        return [d for k in keys for d in differences(first.get(k, _MISSING), second.get(k, _MISSING), volatile, (*at, str(k)))]
    if isinstance(first, list) and isinstance(second, list) and len(first) == len(second):
        return [d for i, (a, b) in enumerate(zip(first, second, strict=True)) for d in differences(a, b, volatile, (*at, str(i)))]
    return [] if first == second else [".".join(at) or "the whole answer"]


_MISSING = object()


def _budget(name: str, d: Delivery, budget: float) -> CheckResult:
    latency = d.latency_ms or 0.0
    if latency > budget:
        return CheckResult(name, "fail", latency, f"{d.status} after {latency / 1000:.2f} s, over CometChat's 2 s budget")
    if latency > HEADROOM_MS:
        return CheckResult(name, "warn", latency, f"{d.status}, but only {budget - latency:.0f} ms under the 2 s budget")
    return CheckResult(name, "pass", latency, f"{d.status}")


def summary(results: Sequence[CheckResult]) -> tuple[int, int, int, int]:
    """(total, passed, failed, warnings)."""
    count = {s: sum(1 for r in results if r.status == s) for s in ("pass", "fail", "warn")}
    return len(results), count["pass"], count["fail"], count["warn"]


def junit_xml(results: Sequence[CheckResult], url: str, elapsed: float) -> str:
    """JUnit XML, one testcase per check (warnings pass, with the detail in system-out)."""
    failures = sum(1 for r in results if r.status == "fail")
    suite = ET.Element(
        "testsuite", name="comethook check", tests=str(len(results)), failures=str(failures), errors="0", skipped="0",
        time=f"{elapsed:.3f}", timestamp=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )  # fmt: skip
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="url", value=url)
    for r in results:
        case = ET.SubElement(
            suite, "testcase", classname="comethook.check", name=r.name, time=f"{(r.latency_ms or 0) / 1000:.3f}"
        )
        if r.status == "fail":
            failure = ET.SubElement(case, "failure", message=r.detail, type="CheckFailed")
            failure.text = r.detail
        elif r.status == "warn":
            ET.SubElement(case, "system-out").text = f"WARN: {r.detail}"
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
