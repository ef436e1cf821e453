"""The CI recipe (docs/guides/ci.md): its workflows parse and run the check, its shell script checks a real app."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CI_DOC = (ROOT / "docs" / "guides" / "ci.md").read_text(encoding="utf-8")
CHECK = re.compile(r"(?:comethook|\$COMETHOOK) check --to \S+ --triggers all --junit report\.xml")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", CI_DOC, re.DOTALL)


def test_the_github_workflow_is_valid_yaml_that_checks_and_publishes_the_report() -> None:
    [workflow] = [yaml.safe_load(block) for block in blocks("yaml") if "runs-on" in block]
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request"} <= set(triggers)
    [job] = workflow["jobs"].values()
    steps = job["steps"]
    assert all("uses" in step or "run" in step for step in steps)
    runs = [step.get("run", "") for step in steps]
    start = next(i for i, run in enumerate(runs) if "&" in run and "8000" in run)
    check = next(i for i, run in enumerate(runs) if CHECK.search(run))
    assert start < check, "the app starts before the check"
    assert steps[check]["env"]["COMETHOOK_BASIC_AUTH"] == "${{ secrets.COMETHOOK_BASIC_AUTH }}"
    published = [s for s in steps[check + 1 :] if s.get("if") == "always()" and "report.xml" in str(s.get("with"))]
    assert published, "the JUnit report is published even when the check fails"


def test_the_gitlab_job_is_valid_yaml_and_reports_junit() -> None:
    [pipeline] = [yaml.safe_load(block) for block in blocks("yaml") if "script:" in block]
    job = pipeline["comethook-check"]
    assert any(CHECK.search(line) for line in job["script"])
    assert job["artifacts"]["reports"]["junit"] == "report.xml" and job["artifacts"]["when"] == "always"


INSTALL = re.compile(r'pip install (?:-r requirements\.txt )?"(comethook @ git\+(\S+)@(\S+))"')


def test_every_recipe_installs_comethook_from_its_repository_pinned_and_that_line_resolves(tmp_path: Path) -> None:
    """comethook is not on PyPI, so `pip install comethook` failed at the recipes' first line. Each recipe's exact
    requirement is resolved by pip, with the repository URL pointed at a local clone of this checkout (tagged as pinned)."""
    import tomllib

    lines = [line for line in CI_DOC.splitlines() if "pip install" in line]
    found = {INSTALL.search(line).groups() for line in lines if INSTALL.search(line)}  # type: ignore[union-attr]
    assert len(lines) == 3 and len(found) == 1, lines  # the sample, GitHub Actions and GitLab: one requirement
    [(requirement, url, ref)] = found
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert url == project["project"]["urls"]["Source"] and ref.startswith("v")
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone")
    clone = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=60)
    subprocess.run(["git", "-C", str(clone), "tag", ref], check=True)
    env = {
        **os.environ,
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.{clone.as_uri()}.insteadOf",
        "GIT_CONFIG_VALUE_0": url,
    }
    report = tmp_path / "report.json"
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--dry-run",
        "--no-deps",
        "--no-build-isolation",
        "--ignore-installed",
    ]
    subprocess.run([*command, "--report", str(report), requirement], check=True, env=env, timeout=120, capture_output=True)
    [install] = json.loads(report.read_text())["install"]
    assert install["metadata"]["name"] == "comethook" and install["download_info"]["url"] == url


TEAM_APP = """
import json, sys
from aiohttp import web

BROKEN = sys.argv[2] == "broken"


async def hook(request):
    try:
        payload = json.loads(await request.read())
    except ValueError:
        return web.json_response({"error": "not JSON"}, status=400)
    if BROKEN and payload.get("trigger") == "before_message":
        return web.Response(status=500, text="boom")
    return web.json_response({})


app = web.Application()
app.router.add_post("/cometchat/webhook", hook)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(("mode", "code"), [("working", 0), ("broken", 3)])
def test_the_shell_script_checks_a_real_app(tmp_path: Path, mode: str, code: int) -> None:
    [script] = blocks("sh")[-1:]
    assert script.startswith("#!/bin/sh") and CHECK.search(script)
    (tmp_path / "check.sh").write_text(script)
    (tmp_path / "team_app.py").write_text(TEAM_APP)
    port = free_port()
    env = {
        **os.environ,
        "APP_CMD": f"{sys.executable} team_app.py {port} {mode}",
        "APP_URL": f"http://127.0.0.1:{port}/cometchat/webhook",
        "COMETHOOK": f"{sys.executable} -m comethook_cli",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(["sh", "check.sh"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == code, done.stderr
    report = ET.parse(tmp_path / "report.xml").getroot()
    cases = report.findall(".//testcase")
    assert len(cases) > 60  # every trigger of the catalog, and the other checks
    failures = [case.get("name") for case in cases if case.find("failure") is not None]
    assert (failures == []) if mode == "working" else ("before_message (legacy) accepted" in failures)
    deadline = time.monotonic() + 10  # the script stopped the app (its exit may take a moment)
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                break
        assert time.monotonic() < deadline, "the app is still listening after the script ended"
        time.sleep(0.1)
