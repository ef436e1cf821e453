"""comethook's benchmarks: every figure is a ratio against a baseline measured in the same run.

    python bench/run.py                  # everything, writes BENCHMARKS.md (a few minutes)
    python bench/run.py --only startup,send --rounds 3

Needs `wrk` and `hey` on PATH (Debian: apt-get install wrk hey) and comethook installed in this
Python. Not a test: nothing here asserts; it measures and writes the results down.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
COMETHOOK = [str(Path(PY).with_name("comethook"))] if Path(PY).with_name("comethook").exists() else [PY, "-m", "comethook_cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


@contextmanager
def server(
    command: list[str], port: int, env: dict[str, str], stdout: Any = subprocess.DEVNULL
) -> Iterator[subprocess.Popen[bytes]]:
    # Every server starts with an empty history of its own: a history left by the runs before it (hundreds of MB
    # under wrk, pruned at its cap) would make each figure depend on how many runs came first.
    home = tempfile.mkdtemp(prefix="home-", dir=Path(env["COMETHOOK_HOME"]).parent)
    proc = subprocess.Popen(command, stdout=stdout, stderr=subprocess.DEVNULL, env={**env, "COMETHOOK_HOME": home})
    try:
        wait_port(port)
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(home, ignore_errors=True)


def baseline_server(port: int, uvloop: bool = False) -> list[str]:
    return [PY, str(HERE / "baseline_server.py"), str(port), *(["--uvloop"] if uvloop else [])]


def listen(port: int, *flags: str) -> list[str]:
    return [*COMETHOOK, "listen", "--port", str(port), "--no-tunnel", *flags]


def wrk(url: str, body: Path, connections: int, seconds: float, threads: int = 2) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(HERE / "post.lua"), url],
        capture_output=True, text=True, env={**os.environ, "BODY_FILE": str(body)}, check=True,
    ).stdout  # fmt: skip
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "99"):
        found = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if found:
            value, unit = float(found.group(1)), found.group(2)
            result[f"p{pct}_ms"] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    if "Non-2xx" in out:
        raise RuntimeError(f"non-2xx answers under wrk:\n{out}")
    return result


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    return time.perf_counter() - started


def alternate(rounds: int, runs: dict[str, Callable[[], Any]]) -> dict[str, list[Any]]:
    """Run each contender once per round, in turn, so drift hits all of them alike."""
    results: dict[str, list[Any]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            results[name].append(run())
    return results


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def paired(ours: list[float], base: list[float]) -> float:
    """The median of each round's own ratio (ours / base, both measured back to back): on a shared machine whose speed
    drifts by half between rounds, a ratio of two medians pairs a fast round's baseline with a slow round's contender."""
    return median([o / b for o, b in zip(ours, base, strict=True)])


# --- the benchmarks ------------------------------------------------------------------------------


def bench_startup(rounds: int, env: dict[str, str]) -> list[dict[str, Any]]:
    minimal = [PY, str(HERE / "minimal_typer.py")]
    rows = []
    for args in (["--help"], ["--version"]):
        timed([*COMETHOOK, *args], env)  # warm: the bytecode is written once, as pip does at install
        timed([*minimal, *args], env)
        got = alternate(
            rounds * 5,
            {"comethook": lambda a=args: timed([*COMETHOOK, *a], env), "typer": lambda a=args: timed([*minimal, *a], env)},
        )
        ours, base = median(got["comethook"]) * 1000, median(got["typer"]) * 1000
        ratio = paired(got["comethook"], got["typer"])
        limit = 1.10 if args[0] == "--help" else 1.05
        rows.append({"benchmark": f"start-up `comethook {args[0]}`", "comethook": f"{ours:.0f} ms", "baseline": f"{base:.0f} ms (minimal Typer app)",
                     "ratio": ratio, "target": f"≤ {limit:.2f}×", "met": ratio <= limit})  # fmt: skip
    return rows


def bench_throughput(rounds: int, env: dict[str, str], body: Path, seconds: float, work: Path) -> list[dict[str, Any]]:
    variants = {
        "baseline": ([], None),
        "baseline on uvloop": ([], None),
        "listen --json (history on)": (["--json"], work / "events.ndjson"),
        "listen --quiet --no-history": (["--quiet", "--no-history"], None),
        "listen (pretty display, history on)": ([], work / "pretty.txt"),
        "listen --json, history pruned at its cap all along (--history-max-mb 20)": (
            ["--json", "--history-max-mb", "20"],
            work / "capped.ndjson",
        ),
    }

    def run(name: str) -> Callable[[], float]:
        def go() -> float:
            flags, out = variants[name]
            port = free_port()
            command = baseline_server(port, uvloop="uvloop" in name) if name.startswith("baseline") else listen(port, *flags)
            with open(out or os.devnull, "wb") as stdout, server(command, port, env, stdout):
                return wrk(f"http://127.0.0.1:{port}/webhook", body, 32, seconds)["rps"]

        return go

    got = alternate(rounds, {name: run(name) for name in variants})
    base, fast = median(got["baseline"]), median(got["baseline on uvloop"])
    # Issue 22's floors (bench/NOTES.md says where the --json row stands against the 0.6x aimed for before it).
    targets = {"listen --json (history on)": 0.4, "listen (pretty display, history on)": 0.3}
    rows = []
    for name in variants:
        if name.startswith("baseline"):
            continue
        ours, ratio = median(got[name]), paired(got[name], got["baseline"])
        target = targets.get(name)
        rows.append({"benchmark": f"throughput, {name}, wrk -c32", "comethook": f"{ours:,.0f} req/s",
                     "baseline": f"{base:,.0f} req/s (bare aiohttp)", "ratio": ratio,
                     "target": f"≥ {target}×" if target else "(reported)", "met": ratio >= target if target else None})  # fmt: skip
        if name == "listen --json (history on)":
            rows.append({"benchmark": f"throughput, {name}, against the bare server on uvloop", "comethook": f"{ours:,.0f} req/s",
                         "baseline": f"{fast:,.0f} req/s (bare aiohttp, uvloop)", "ratio": paired(got[name], got["baseline on uvloop"]),
                         "target": "(reported)", "met": None})  # fmt: skip
    return rows


def bench_latency(rounds: int, env: dict[str, str], body: Path, seconds: float) -> list[dict[str, Any]]:
    def direct() -> dict[str, float]:
        port = free_port()
        with server(baseline_server(port), port, env):
            return wrk(f"http://127.0.0.1:{port}/webhook", body, 1, seconds, threads=1)

    def through(flags: list[str], app: bool = False) -> Callable[[], dict[str, float]]:
        def go() -> dict[str, float]:
            port = free_port()
            if not app:
                with server(listen(port, "--quiet", *flags), port, env):
                    return wrk(f"http://127.0.0.1:{port}/webhook", body, 1, seconds, threads=1)
            app_port = free_port()
            with (
                server(baseline_server(app_port), app_port, env),
                server(listen(port, "--quiet", "--forward-to", str(app_port), *flags), port, env),
            ):
                return wrk(f"http://127.0.0.1:{port}/webhook", body, 1, seconds, threads=1)

        return go

    got = alternate(rounds, {"direct": direct, "listen": through([]), "forward": through([], app=True)})
    rows = []
    for name, label, base_label in (("listen", "before_message answered by `listen`", "bare aiohttp"),
                                    ("forward", "before_message through `listen --forward-to`", "the app directly")):  # fmt: skip
        for pct in ("p50_ms", "p99_ms"):
            ours, base = median([r[pct] for r in got[name]]), median([r[pct] for r in got["direct"]])
            targeted = name == "listen" and pct == "p99_ms"
            rows.append({"benchmark": f"{label}, {pct[:3]} latency (1 connection)", "comethook": f"{ours:.3f} ms",
                         "baseline": f"{base:.3f} ms ({base_label})", "ratio": ours / base, "target": "≤ 3×" if targeted else "(reported)",
                         "met": ours / base <= 3 if targeted else None})  # fmt: skip
    return rows


def bench_send(rounds: int, env: dict[str, str], body: Path, count: int) -> list[dict[str, Any]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhook"
    send = [*COMETHOOK, "send", "message_sent", "--to", url, "--count", str(count), "--concurrency", "32", "--json"]
    hey = ["hey", "-n", str(count), "-c", "32", "-m", "POST", "-T", "application/json", "-D", str(body), url]
    bare = [PY, str(HERE / "bare_client.py"), url, str(body), str(count), "32"]
    with server(baseline_server(port), port, env):
        timed(send, env)  # a warm-up: the bytecode cache and the page cache, as a user's second run has them
        got = alternate(
            rounds, {"send": lambda: timed(send, env), "hey": lambda: timed(hey, env), "bare": lambda: timed(bare, env)}
        )
    ours, base, python = count / median(got["send"]), count / median(got["hey"]), count / median(got["bare"])
    ratio = paired(got["hey"], got["send"])  # times: hey's over ours is ours' rate over hey's
    return [{"benchmark": f"`send --count {count} --concurrency 32` (whole command)", "comethook": f"{ours:,.0f} req/s",
             "baseline": f"{base:,.0f} req/s (hey -c 32)", "ratio": ratio, "target": "≥ 0.6×", "met": ratio >= 0.6},
            {"benchmark": "the same, against a bare aiohttp client (one fixed body, no output)", "comethook": f"{ours:,.0f} req/s",
             "baseline": f"{python:,.0f} req/s (bench/bare_client.py)", "ratio": paired(got["bare"], got["send"]),
             "target": "(reported)", "met": None}]  # fmt: skip


def bench_check(rounds: int, env: dict[str, str]) -> list[dict[str, Any]]:
    """`check --triggers all` against the bare server: the whole command, wall clock."""
    port = free_port()
    command = [*COMETHOOK, "check", "--to", f"http://127.0.0.1:{port}/webhook", "--triggers", "all", "--json"]
    with server(baseline_server(port), port, env):
        times = [timed(command, env) for _ in range(rounds * 3)]
    took = median(times)
    return [{"benchmark": "`check --triggers all` against the bare server (whole command)", "comethook": f"{took:.2f} s",
             "baseline": "wall clock", "ratio": None, "seconds": took, "target": "< 2 s", "met": took < 2}]  # fmt: skip


def stream_reader(port: int, stop: threading.Event, received: list[int], frozen: bool = False) -> threading.Thread:
    """An inspector event-stream client on a thread: it reads and discards everything, or (frozen) never reads."""

    def run() -> None:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            if frozen:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(f"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            if frozen:
                stop.wait()
                return
            sock.settimeout(0.5)
            while not stop.is_set():
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                received.append(len(chunk))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def bench_inspector(rounds: int, env: dict[str, str], body: Path, seconds: float, work: Path) -> list[dict[str, Any]]:
    """`listen --json` throughput with the inspector on and 3 event-stream clients reading, and with one frozen
    client, against the same run with --no-inspector."""
    if shutil.which("wrk") is None:
        print("   skipped: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return []
    received: list[int] = []

    def run(readers: int, frozen: bool) -> Callable[[], float]:
        def go() -> float:
            port, inspector = free_port(), free_port()
            flags = (
                ["--json", "--no-inspector"] if readers == 0 and not frozen else ["--json", "--inspector-port", str(inspector)]
            )
            stop = threading.Event()
            with open(work / "inspector.ndjson", "wb") as stdout, server(listen(port, *flags), port, env, stdout):
                if "--no-inspector" not in flags:
                    wait_port(inspector)
                threads = [stream_reader(inspector, stop, received) for _ in range(readers)]
                threads += [stream_reader(inspector, stop, received, frozen=True)] if frozen else []
                time.sleep(0.3)  # the clients are subscribed
                try:
                    return wrk(f"http://127.0.0.1:{port}/webhook", body, 32, seconds)["rps"]  # raises on any non-2xx
                finally:
                    stop.set()
                    for thread in threads:
                        thread.join(5)

        return go

    got = alternate(rounds, {"off": run(0, False), "three": run(3, False), "frozen": run(0, True)})
    base = median(got["off"])
    if not received:
        raise RuntimeError("the event-stream clients received nothing")
    three, frozen = median(got["three"]), median(got["frozen"])
    return [{"benchmark": "`listen --json` with the inspector and 3 event-stream clients reading, wrk -c32", "comethook": f"{three:,.0f} req/s",
             "baseline": f"{base:,.0f} req/s (--no-inspector)", "ratio": paired(got["three"], got["off"]), "target": "≥ 0.9×",
             "met": paired(got["three"], got["off"]) >= 0.9},
            {"benchmark": "the same with one frozen event-stream client (it never reads); every answer 2xx", "comethook": f"{frozen:,.0f} req/s",
             "baseline": f"{base:,.0f} req/s (--no-inspector)", "ratio": paired(got["frozen"], got["off"]), "target": "≥ 0.9×",
             "met": paired(got["frozen"], got["off"]) >= 0.9}]  # fmt: skip


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def bench_memory(env: dict[str, str], first: int, total: int) -> list[dict[str, Any]]:
    port, bare_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}/webhook"

    def fire(n: int, to: str = url) -> None:
        subprocess.run([*COMETHOOK, "send", "after_message", "--to", to, "--count", str(n), "--concurrency", "32", "--json"],
                       stdout=subprocess.DEVNULL, env=env, check=True)  # fmt: skip

    with server(baseline_server(bare_port), bare_port, env) as bare:
        time.sleep(0.5)
        bare_idle = rss_mb(bare.pid)
    with server(listen(port, "--quiet"), port, env) as proc:
        time.sleep(0.5)
        idle = rss_mb(proc.pid)
        fire(first)
        time.sleep(0.5)
        early = rss_mb(proc.pid)
        fire(total - first)
        time.sleep(0.5)
        late = rss_mb(proc.pid)
    growth = late - early
    return [{"benchmark": f"listener RSS growth from {first:,} to {total:,} deliveries (history on)", "comethook": f"{early:.1f} → {late:.1f} MB",
             "baseline": f"after {first:,} deliveries", "ratio": None, "growth": growth, "target": "growth ≤ 5 MB", "met": growth <= 5},
            {"benchmark": "listener RSS when idle (history on, inspector on)", "comethook": f"{idle:.1f} MB",
             "baseline": f"{bare_idle:.1f} MB (bare aiohttp, idle)", "ratio": idle / bare_idle, "target": "(reported)", "met": None}]  # fmt: skip


def bench_hostile_memory(env: dict[str, str], count: int) -> list[dict[str, Any]]:
    """Listener RSS while its forward target streams an endless answer to every delivery (--max-answer caps each)."""
    port, app_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}/webhook"

    def fire(n: int) -> None:
        subprocess.run([*COMETHOOK, "send", "after_message", "--to", url, "--count", str(n), "--concurrency", "8", "--json",
                        "--timeout", "60"], stdout=subprocess.DEVNULL, env=env, check=True)  # fmt: skip

    with (
        server([PY, str(HERE / "endless_app.py"), str(app_port)], app_port, env),
        server(listen(port, "--quiet", "--forward-to", str(app_port), "--fallback", "pass"), port, env) as proc,
    ):
        fire(2)  # warm up: the forwarder's client session, the history database
        time.sleep(0.5)
        idle = rss_mb(proc.pid)
        fire(count)
        time.sleep(0.5)
        late = rss_mb(proc.pid)
    growth = late - idle
    return [{"benchmark": f"listener RSS, {count:,} deliveries whose app streams an endless answer", "comethook": f"{idle:.1f} → {late:.1f} MB",
             "baseline": "idle, after warm-up", "ratio": None, "growth": growth, "target": "growth ≤ 50 MB", "met": growth <= 50}]  # fmt: skip


async def deliver_during_flood(port: int, attackers: int, deliveries: int, headers: dict[str, str]) -> int:
    """How many of `deliveries` real deliveries (each on a new connection, 0.1 s apart, 10 s timeout) get a 2xx while
    `attackers` connections each send headers promising 100 kB, then one body byte a second, reconnecting when dropped."""
    import asyncio

    import aiohttp
    from attackers import drip_attacker  # bench/attackers.py: this script's folder is first on sys.path

    stop = asyncio.Event()
    tasks = [asyncio.ensure_future(drip_attacker(port, stop)) for _ in range(attackers)]
    answered = 0
    try:
        await asyncio.sleep(3 if attackers else 0)  # the flood fills the listener first
        body = b'{"trigger": "after_message", "data": {"data": {"text": "hello"}}}'
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:

            async def deliver(n: int) -> None:
                nonlocal answered
                await asyncio.sleep(n * 0.1)
                try:
                    async with session.post(f"http://127.0.0.1:{port}/webhook", data=body, headers=headers,
                                            timeout=aiohttp.ClientTimeout(total=10)) as response:  # fmt: skip
                        answered += 200 <= response.status < 300
                except (aiohttp.ClientError, TimeoutError):
                    pass

            await asyncio.gather(*(deliver(n) for n in range(deliveries)))
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    return answered


def bench_slow_bodies(env: dict[str, str], deliveries: int, limit: int = 256) -> list[dict[str, Any]]:
    """Real deliveries answered by `listen` under `ulimit -n LIMIT` (macOS's default) while as many slow-body attackers
    as the descriptor limit flood it, with and without --basic-auth, against the same deliveries without a flood."""
    import asyncio
    import base64
    import shlex

    rows = []
    for auth in (False, True):
        flags = ["--basic-auth", "u:p"] if auth else []
        headers = {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()} if auth else {}
        got = {}
        for attackers in (0, limit):
            port = free_port()
            command = ["bash", "-c", f"ulimit -n {limit}; exec {shlex.join(listen(port, '--quiet', *flags))}"]
            with server(command, port, env):
                got[attackers] = asyncio.run(deliver_during_flood(port, attackers, deliveries, headers))
        share, quiet = got[limit] / deliveries, got[0] / deliveries
        label = "with --basic-auth (attackers without it)" if auth else "no Basic auth"
        rows.append({"benchmark": f"share of real deliveries answered under a slow-body flood ({limit} attackers, 1 byte/s, "
                                  f"reconnecting; ulimit -n {limit}; {label})",
                     "comethook": f"{got[limit]} of {deliveries} ({share:.0%})", "baseline": f"{got[0]} of {deliveries} without the flood",
                     "ratio": share / quiet if quiet else 0.0, "target": "≥ 0.95×", "met": quiet > 0 and share / quiet >= 0.95})  # fmt: skip
    return rows


# --- report --------------------------------------------------------------------------------------


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    versions = {}
    for tool, args in (("wrk", ["wrk", "-v"]), ("hey", None)):
        if args and shutil.which(tool):
            out = subprocess.run(args, capture_output=True, text=True)
            found = re.search(r"wrk\s+(\S+)", out.stdout + out.stderr)
            versions[tool] = f"wrk {found.group(1)}" if found else "wrk"
    import aiohttp
    import typer

    return (f"{os.cpu_count()} cores, {cpu}; Linux {platform.release()}; Python {platform.python_version()}; "
            f"aiohttp {aiohttp.__version__}, typer {typer.__version__}; {versions.get('wrk', 'wrk ?')}; hey (Debian)")  # fmt: skip


def write_report(rows: list[dict[str, Any]], path: Path, seconds: float) -> None:
    lines = [
        "# comethook benchmarks",
        "",
        "Written by `python bench/run.py` (see CONTRIBUTING.md, Benchmarks). Every figure is a ratio against a baseline",
        "measured in the same run on the same machine, alternating contender and baseline. The figures shown are each one's",
        "median over the rounds; a throughput or start-up ratio is the median of each round's own ratio (contender and",
        "baseline measured back to back), which a machine whose speed drifts between rounds skews less than a ratio of medians.",
        "",
        f"Machine: {machine()}.",
        f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {seconds:.0f} s.",
        "",
        "| benchmark | comethook | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("ratio") is not None:
            ratio = f"{r['ratio']:.2f}×"
        elif "seconds" in r:
            ratio = f"{r['seconds']:.2f} s"
        else:
            ratio = f"{r['growth']:+.1f} MB"
        met = {True: "yes", False: "**no**", None: "—"}[r["met"]]
        lines.append(f"| {r['benchmark']} | {r['comethook']} | {r['baseline']} | {ratio} | {r['target']} | {met} |")
    notes = HERE / "NOTES.md"
    if notes.exists():
        lines += ["", notes.read_text().strip()]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="startup,throughput,latency,send,check,memory,hostile,inspector,slowbody")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--memory-total", type=int, default=100_000)
    parser.add_argument("--hostile-count", type=int, default=500)
    parser.add_argument("--output", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args()
    chosen = set(args.only.split(","))
    for tool, steps in (("wrk", {"throughput", "latency"}), ("hey", {"send"})):
        if chosen & steps and shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed: apt-get install wrk hey")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="comethook-bench-") as folder:
        work = Path(folder)
        # As an installed package runs: with its bytecode cached (pip compiles it at install). A PYTHONDONTWRITEBYTECODE
        # in the environment would have every start-up compile comethook's source again, which no user pays.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env |= {"COMETHOOK_HOME": str(work / "home"), "NO_COLOR": "1"}
        body = work / "after_message.json"
        before = work / "before_message.json"
        for name, target in (("after_message", body), ("before_message", before)):
            shown = subprocess.run([*COMETHOOK, "payloads", "show", name], capture_output=True, check=True, env=env).stdout
            # On one line, as a delivery arrives (`payloads show` indents it for people to read).
            target.write_bytes(json.dumps(json.loads(shown), ensure_ascii=False, separators=(",", ":")).encode())
        rows: list[dict[str, Any]] = []
        steps: list[tuple[str, Callable[[], list[dict[str, Any]]]]] = [
            ("startup", lambda: bench_startup(args.rounds, env)),
            ("throughput", lambda: bench_throughput(args.rounds, env, body, args.seconds, work)),
            ("latency", lambda: bench_latency(args.rounds, env, before, args.seconds)),
            ("send", lambda: bench_send(args.rounds, env, body, 5000)),
            ("check", lambda: bench_check(args.rounds, env)),
            ("memory", lambda: bench_memory(env, 1000, args.memory_total)),
            ("hostile", lambda: bench_hostile_memory(env, args.hostile_count)),
            ("inspector", lambda: bench_inspector(args.rounds, env, body, args.seconds, work)),
            ("slowbody", lambda: bench_slow_bodies(env, 100)),
        ]
        for name, step in steps:
            if name in chosen:
                print(f"-- {name}", file=sys.stderr, flush=True)
                found = step()
                for row in found:
                    print(f"   {row['benchmark']}: {row['comethook']} vs {row['baseline']}", file=sys.stderr, flush=True)
                rows += found
    write_report(rows, Path(args.output), time.perf_counter() - started)
    print(f"wrote {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
