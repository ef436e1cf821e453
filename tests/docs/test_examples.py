"""Every shell and Python example of README.md, CONTRIBUTING.md and docs/ runs, as written, with Sybil.

Shell examples run in bash (`set -eo pipefail`, so every command must succeed) against real comethook processes
this module starts on loopback and shares between documents: a listener (the examples' `127.0.0.1:8765`, its
inspector `8766`) and an "app" (`localhost:8000`: a second listener with rules that answer like a small handler).
The well-known ports of the examples are mapped to free ones, so nothing collides with a real comethook on this
machine; any other port an example names (8780 for `emulate`, 9000 ...) gets a free port of its own. A
`comethook listen` or `comethook inspect` in the foreground runs until Ctrl-C, so the runner gives it a moment
(`--timeout 0.2` / SIGINT after 2 s) and a free port when it names none; a command sent to the background with `&`
is stopped when its block ends. Each document runs in its own directory, in order, so a block may use a file an
earlier block wrote. An example that cannot run here is marked `<!-- skip: next "the reason" -->`: the reason is
required (test_every_skip_gives_a_reason).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sybil import Sybil
from sybil.example import Example
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser, SkipParser

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted(
    [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").rglob("*.md")], key=lambda p: str(p.relative_to(ROOT))
)
SHELLS = ("sh", "bash", "shell")
#: Ports the examples name: 8000 is "your app", 8765/8766 the listener and its inspector; the rest get free ones.
WELL_KNOWN = re.compile(r"(?<![\d.])(8000|8001|8765|8766|8780|9000)(?!\d)")
PORT = re.compile(r"(?<![\w-])--port\b")
LONG_RUNNING = re.compile(r"(^|[;&|(]\s*|\s)comethook (listen|inspect)\b")
APP_RULES = [
    {"match": {"trigger": "before_message", "text": "(?i)pills|spam|buy now"}, "action": "drop"},
    {"match": {"trigger": "message_sent"}, "action": {"body": {"status": "queued"}}},
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_listener(base: Path, name: str, *flags: str) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """A real `comethook listen` on loopback, and its ready record. Its NDJSON goes to a file: nobody reads a pipe."""
    output = base / f"{name}.ndjson"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "comethook_cli", "listen", "--no-tunnel", "--json", "--port", "0", *flags],
            stdout=sink, stderr=subprocess.DEVNULL, cwd=base, env={**clean_environment(), "COMETHOOK_HOME": str(base / "home")},
        )  # fmt: skip
    for _ in range(300):
        first = output.read_bytes().partition(b"\n")
        if first[1]:
            ready = json.loads(first[0])
            assert ready["type"] == "ready", ready
            return process, ready
        assert process.poll() is None, f"{name} exited {process.returncode}"
        time.sleep(0.05)
    raise AssertionError(f"{name} did not start within 15 s")


def clean_environment() -> dict[str, str]:
    """This machine's environment less what would change what an example does (a real token, CI, colours)."""
    drop = ("NGROK_AUTHTOKEN", "COMETHOOK_", "COMETCHAT_", "CI", "GITHUB_", "FORCE_COLOR", "PYTEST_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update({"NO_COLOR": "1", "COLUMNS": "80", "TERM": "dumb", "BROWSER": "true", "EDITOR": "true", "VISUAL": "true"})
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


@dataclass
class Services:
    """What the shell examples run against, shared by every document of this module."""

    base: Path
    ports: dict[str, int]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def environment(self) -> dict[str, str]:
        env = clean_environment()
        env.update({"COMETHOOK_HOME": str(self.base / "home"), "HOME": str(self.base / "user"),
                    "URL": f"http://127.0.0.1:{self.ports['8000']}/hook"})  # fmt: skip
        return env


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    base = tmp_path_factory.mktemp("docs")
    (base / "user").mkdir()
    (base / "rules.json").write_text(json.dumps(APP_RULES))
    app, app_ready = start_listener(base, "app", "--no-history", "--no-inspector", "--quiet", "--rules", "rules.json")
    inspector_port = free_port()
    listener, ready = start_listener(base, "listener", "--inspector-port", str(inspector_port))
    ports = {"8000": int(app_ready["local_url"].rsplit(":", 1)[1]), "8765": int(ready["local_url"].rsplit(":", 1)[1]),
             "8766": inspector_port}  # fmt: skip
    found = Services(base, ports, [app, listener])
    yield found
    for process in found.processes:
        process.send_signal(signal.SIGINT)
        process.wait(10)


def shell_script(source: str, ports: dict[str, int]) -> str:
    """The example as the runner runs it: ports mapped, long-running commands bounded (see the module's docstring)."""
    source = WELL_KNOWN.sub(lambda m: str(ports.setdefault(m.group(1), free_port())), source.replace("\\\n", " "))
    lines = []
    for line in source.splitlines():
        command = line.split(" #", 1)[0].rstrip()
        if LONG_RUNNING.search(command) and not command.endswith("&"):
            if " listen" in command:
                extra = "" if re.search(r"--(timeout|max-events)\b", command) else " --timeout 0.2"
                extra += "" if PORT.search(command) else " --port 0"
                line = line.replace("comethook listen", "comethook listen" + extra, 1)
            else:
                extra = "" if "--inspector-port" in command else " --inspector-port 0"
                line = "timeout --preserve-status -s INT 2 " + line.replace("comethook inspect", "comethook inspect" + extra, 1)
        lines.append(line)
    return "set -eo pipefail\n" + "\n".join(lines) + "\n"


def run_shell(example: Example) -> None:
    """Run one shell example; anything it left running in the background is stopped afterwards."""
    services: Services = example.namespace["services"]
    cwd: Path = example.namespace["cwd"]
    script = shell_script(example.parsed, services.ports)
    process = subprocess.Popen(["bash", "-c", script], cwd=cwd, env=services.environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    try:
        output, _ = process.communicate(timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
    if process.returncode != 0:
        raise AssertionError(f"exit {process.returncode}\n--- the script:\n{script}--- its output:\n{output}")


SYBIL = Sybil(
    parsers=[SkipParser(), PythonCodeBlockParser(), *(CodeBlockParser(language, run_shell) for language in SHELLS)],
)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_examples_run(path: Path, services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    document = SYBIL.parse(path)
    document.namespace.update(services=services, cwd=tmp_path, __name__="__docs__")
    monkeypatch.chdir(tmp_path)
    for key, value in services.environment().items():  # the Python examples see what the shell ones see
        monkeypatch.setenv(key, value)
    for example in document:
        try:
            example.evaluate()
        except unittest.SkipTest:
            continue
        except Exception as error:
            raise AssertionError(f"{path.relative_to(ROOT)}, line {example.line}: {error}") from error


SKIP = re.compile(r"<!--\s*skip:\s*(\w+)(.*?)-->", re.DOTALL)


def test_every_skip_gives_a_reason() -> None:
    for path in DOCUMENTS:
        for action, reason in SKIP.findall(path.read_text(encoding="utf-8")):
            if action in ("next", "start"):
                assert re.fullmatch(r'\s*"[^"]{12,}"\s*', reason), f"{path.relative_to(ROOT)}: skip without a reason"


def test_every_document_has_shell_or_python_that_runs() -> None:
    """The runner finds the examples (a parser that matched nothing would make every page pass)."""
    found = {language: 0 for language in ("python", *SHELLS)}
    for path in DOCUMENTS:
        for example in SYBIL.parse(path):
            language = getattr(example.region, "lexemes", {}).get("arguments", "")
            if language in found:
                found[language] += 1
    assert found["python"] >= 3 and found["sh"] >= 30, found


def test_the_runner_bounds_long_running_commands_and_maps_ports() -> None:
    ports = {"8000": 18000, "8765": 18765}
    script = shell_script(
        "comethook listen -f 8000\ncomethook listen --port 9000 --json > x &\ncomethook inspect --open\n", ports
    )
    assert "comethook listen --timeout 0.2 --port 0 -f 18000" in script
    assert f"comethook listen --port {ports['9000']} --json > x &" in script
    assert "timeout --preserve-status -s INT 2 comethook inspect --inspector-port 0 --open" in script
    assert shutil.which("bash") and shutil.which("timeout")
