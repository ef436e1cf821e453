"""`listen --public-url` (a tunnel of one's own) and the last public URL remembered per home (engine/public_url.py).

A second local listener stands in for the foreign tunnel (cloudflared, Tailscale Funnel, a reverse proxy): a TCP
relay to comethook's port that records what went through it and can be stopped mid-run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from comethook_cli.engine import health
from comethook_cli.engine.public_url import FILE_NAME, remember
from tests.conftest import delivery, ndjson, post_json


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ForeignTunnel:
    """A relay on 127.0.0.1:<port> to 127.0.0.1:<upstream>, as someone else's tunnel would be; stop() closes it."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.requests: list[bytes] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        with client, contextlib.suppress(OSError):
            first = client.recv(65536)
            self.requests.append(first.split(b"\r\n", 1)[0])
            with socket.create_connection(("127.0.0.1", self.upstream), timeout=5) as upstream:
                upstream.sendall(first)
                back = threading.Thread(target=self._pipe, args=(upstream, client), daemon=True)
                back.start()
                self._pipe(client, upstream)
                back.join(5)

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
            sink.shutdown(socket.SHUT_WR)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)  # close() alone does not wake accept() on Linux
        self.server.close()


async def test_public_url_is_shown_probed_through_the_foreign_tunnel_and_said_down_when_it_stops(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "PROBE_INTERVAL", 0.2)
    monkeypatch.setattr(health, "RETRY_INTERVAL", 0.2)
    port = free_port()
    tunnel = ForeignTunnel(port)
    try:
        run = asyncio.ensure_future(
            cli.run("listen", "--port", str(port), "--public-url", tunnel.url + "/", "--json", "--no-inspector", "--timeout", "6")
        )
        # The probes go through the foreign tunnel (the first one as soon as the listener serves)...
        for _ in range(200):
            if any(b"/_comethook/probe/" in line for line in tunnel.requests):
                break
            await asyncio.sleep(0.05)
        assert any(line.startswith(b"GET /_comethook/probe/") for line in tunnel.requests)
        tunnel.stop()  # ... until it stops
        result = await run
    finally:
        tunnel.stop()
    assert result.exit_code == 0, result.stderr
    lines = ndjson(result.stdout)
    ready = lines[0]
    assert ready["public_url"] == tunnel.url and ready["webhook_url"] == tunnel.url + "/webhook"
    (down,) = [line for line in lines if line["type"] == "tunnel"]
    assert down["state"] == "down" and down["url"] == tunnel.url and "could not reach" in down["detail"]
    assert f"Check that your tunnel forwards {tunnel.url} to http://127.0.0.1:{port}" in down["hint"]
    assert "TUNNEL DOWN" in result.stderr and "Hint: Check that your tunnel forwards" in result.stderr
    assert [line["type"] for line in lines] == ["ready", "tunnel", "stopped"]  # no probe is an event
    assert "ngrok" not in result.stderr.split("comethook listening")[0]  # no agent started, no progress line


def test_public_url_deliveries_arrive_through_it_and_the_banner_names_it(listen_process: Any, tmp_path: Path) -> None:
    port = free_port()
    tunnel = ForeignTunnel(port)
    try:
        listener = listen_process("--port", str(port), "--public-url", tunnel.url, "--max-events", "1", json_out=False)
        banner = "".join(listener.lines)
        assert f"Public       {tunnel.url}\n" in banner and "your own tunnel (--public-url)" in banner
        assert f"Webhook URL  {tunnel.url}/webhook" in banner and "Paste it in the CometChat Dashboard" in banner
        assert post_json(tunnel.url + "/webhook", delivery(text="via my tunnel"))[0] == 200
        code, out, err = listener.finish()
        assert code == 0, err
        assert "via my tunnel" in out
    finally:
        tunnel.stop()


def test_a_public_url_that_changed_since_the_last_run_is_called_out(listen_process: Any, tmp_path: Path) -> None:
    first, second = "https://one.example.test", "https://two.example.test"
    runs = []
    for url in (first, second, second):
        listener = listen_process("--public-url", url, "--port", "0", json_out=False)
        listener.kill()
        runs.append("".join(listener.lines))
    assert "URL changed" not in runs[0]
    assert f"the last run announced {first}: CometChat still calls that one" in runs[1]
    assert "--domain" in runs[1] and "static domain" in runs[1]
    assert "URL changed" not in runs[2]  # the same URL again: nothing to say
    kept = tmp_path / "home" / FILE_NAME
    assert second in kept.read_text() and stat.S_IMODE(os.stat(kept).st_mode) == 0o600


def test_remember_survives_a_damaged_file(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / FILE_NAME).write_bytes(b"\xff not json")
    assert remember("https://a.example.test") is None
    assert remember("https://b.example.test") == "https://a.example.test"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ftp://example.test", "is not an http:// or https:// URL"),
        ("example.test", "is not an http:// or https:// URL"),
        ("https://", "names no host"),
        ("https://user:pw@example.test", "holds credentials"),
        ("https://example.test/?a=1", "has a query"),
        ("https://example.test:99999", "Malformed --public-url"),
    ],
)
def test_a_malformed_public_url_is_a_usage_error(cli: Any, value: str, message: str) -> None:
    result = cli("listen", "--public-url", value, "--port", "0")
    assert result.exit_code == 2 and message in result.stderr and "Hint:" in result.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--tunnel",), "--public-url is your own tunnel, and --tunnel asks for an ngrok one"),
        (("--domain", "me.ngrok.app"), "--public-url is your own tunnel, and --domain asks for an ngrok one"),
    ],
)
def test_public_url_with_an_ngrok_tunnel_is_a_usage_error(cli: Any, extra: tuple[str, ...], message: str) -> None:
    result = cli("listen", "--public-url", "https://me.example.test", *extra, "--port", "0")
    assert result.exit_code == 2 and message in result.stderr


def test_public_url_in_a_strangers_project_file_needs_trust(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "comethook.toml").write_text('[tunnel]\npublic-url = "https://attacker.example.test"\n')
    monkeypatch.chdir(project)
    result = cli("listen", "--port", "0", "--timeout", "0.1")
    assert result.exit_code == 2 and "public-url" in result.stderr and "comethook trust" in result.stderr
