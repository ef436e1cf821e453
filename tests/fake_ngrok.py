"""A stand-in for the ngrok v3 agent, for tests: speaks the protocol pyngrok uses, on loopback only.

`start --none --log stdout [--config P] [--authtoken T] [--region R]` prints the three ready lines,
serves the agent API (`/api/endpoints`, `/api/tunnels`, `/api/status`) and, for each endpoint it is
asked to create, listens on 127.0.0.1:<free port> and pipes every connection byte for byte to the
upstream. Failure modes are picked with FAKE_NGROK_MODE:

  ok (default)     healthy
  4018             the real agent's lines for a missing authtoken, then exit 1
  token            like ok, but 4018 unless a token came by --authtoken, NGROK_AUTHTOKEN or the config
  108              session limit error, exit 1
  334              healthy, but refuses an endpoint with a domain (ERR_NGROK_334)
  exit             exit 1 at once, printing nothing
  offline          web service up, then "failed to reconnect session" errors every 0.3 s, forever
  silent           prints nothing, runs forever
  die              healthy, then exits after FAKE_NGROK_DIE_AFTER seconds (default 1)

FAKE_NGROK_PAUSE_FILE, when set, stops forwarding mid-run: while that file exists, every connection to a public URL
is answered as ngrok's edge answers for an agent it lost (404, ERR_NGROK_3200 "endpoint offline") instead of being
piped to the upstream; once the file is gone, forwarding resumes. A test creates and removes the file.

FAKE_NGROK_LOG, when set, gets one JSON line per run: argv, pid, the NGROK_AUTHTOKEN it inherited, its --config file, and its whole environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

MODE = os.environ.get("FAKE_NGROK_MODE", "ok")
ENDPOINTS: dict[str, dict[str, Any]] = {}
LISTENERS: dict[str, socket.socket] = {}
LOCK = threading.Lock()


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def arg(argv: list[str], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv and argv.index(flag) + 1 < len(argv) else None


def watch_parent() -> None:
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while True:
            chunk = source.recv(65536)
            if not chunk:
                break
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def paused() -> bool:
    pause = os.environ.get("FAKE_NGROK_PAUSE_FILE")
    return bool(pause) and os.path.exists(pause)  # type: ignore[arg-type]


def serve_connection(client: socket.socket, upstream: str) -> None:
    if paused():
        client.settimeout(2)
        with contextlib.suppress(OSError):  # read the request first: closing over unread bytes resets the connection
            client.recv(65536)
        body = b"The endpoint is offline.\r\n\r\nERR_NGROK_3200\r\n"
        client.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)
        client.close()
        return
    parts = urlsplit(upstream if "://" in upstream else f"tcp://{upstream}")
    try:
        server = socket.create_connection((parts.hostname or "localhost", parts.port or 80), timeout=5)
        server.settimeout(None)
    except OSError:
        body = b"ERR_NGROK_8012: failed to dial the upstream"
        client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        client.close()
        return
    back = threading.Thread(target=pipe, args=(server, client), daemon=True)
    back.start()
    pipe(client, server)
    back.join()
    client.close()
    server.close()


def accept_loop(listener: socket.socket, upstream: str) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=serve_connection, args=(client, upstream), daemon=True).start()


class Api(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def reply(self, status: int, document: Any = None) -> None:
        body = b"" if document is None else json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path in ("/api/endpoints", "/api/tunnels"):
            with LOCK:
                items = list(ENDPOINTS.values())
            self.reply(200, {"endpoints" if "endpoints" in self.path else "tunnels": items})
        elif self.path == "/api/status":
            self.reply(200, {"status": "online", "agent_version": "3.99.0-fake", "session": {}, "uri": "/api/status"})
        else:
            self.reply(404, {"error_code": "ERR_NGROK_404", "msg": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        if MODE == "334" and str(request.get("url", "")).startswith("https://"):
            self.reply(
                400,
                {
                    "error_code": "ERR_NGROK_334",
                    "status_code": 400,
                    "msg": "failed to start tunnel: The endpoint is already online.\r\n\r\nERR_NGROK_334\r\n",
                },
            )
            return
        name = request.get("name") or f"endpoint-{uuid.uuid4()}"
        upstream = (request.get("upstream") or {}).get("url") or str(request.get("addr"))
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        endpoint = {
            "name": name,
            "uri": f"/api/endpoints/{name}",
            "public_url": f"http://127.0.0.1:{port}",
            "upstream": {"url": upstream, "protocol": "http1"},
            "proto": "http",
            "metrics": {},
        }
        with LOCK:
            ENDPOINTS[name] = endpoint
            LISTENERS[name] = listener
        threading.Thread(target=accept_loop, args=(listener, upstream), daemon=True).start()
        self.reply(201, endpoint)

    def do_DELETE(self) -> None:
        name = self.path.rsplit("/", 1)[-1]
        with LOCK:
            ENDPOINTS.pop(name, None)
            listener = LISTENERS.pop(name, None)
        if listener is not None:
            with contextlib.suppress(OSError):  # close() alone does not wake accept() on Linux
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        self.send_response(204)
        self.end_headers()


def token_given(argv: list[str]) -> bool:
    if arg(argv, "--authtoken") or os.environ.get("NGROK_AUTHTOKEN"):
        return True
    config = arg(argv, "--config")
    try:
        return bool(config) and "authtoken" in open(config, encoding="utf-8").read()  # type: ignore[arg-type]
    except OSError:
        return False


def cloud_round_trip() -> None:
    """The real agent's errors from the cloud come a round trip after its web service starts. Without the pause, an
    agent that printed everything and exited at once could be found dead by pyngrok after the first line, with the
    error lines still unread in the pipe ("unable to start": a race of the stand-in's, seen on a loaded machine)."""
    time.sleep(0.2)


def fail_4018() -> None:
    err = (
        "authentication failed: Usage of ngrok requires a verified account and authtoken.\\n\\nSign up for an account: "
        "https://dashboard.ngrok.com/signup\\r\\n\\r\\nERR_NGROK_4018\\r\\n"
    )
    say('t=2026-11-28T00:00:00+0000 lvl=info msg="starting web service" obj=web addr=127.0.0.1:4040 allow_hosts=[]')
    cloud_round_trip()
    for msg in ("failed to reconnect session", "session closing", "terminating with error"):
        say(f't=2026-11-28T00:00:00+0000 lvl=eror msg="{msg}" obj=tunnels.session err="{err}"')
    say(f't=2026-11-28T00:00:00+0000 lvl=crit msg="command failed" err="{err}"')
    sys.exit(1)


def main() -> None:
    argv = sys.argv[1:]
    log = os.environ.get("FAKE_NGROK_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as stream:
            config = arg(argv, "--config")
            config_text = Path(config).read_text(encoding="utf-8") if config and os.path.exists(config) else ""
            seen = {"argv": argv, "pid": os.getpid(), "env_token": os.environ.get("NGROK_AUTHTOKEN"), "config": config,
                    "config_text": config_text, "env": dict(os.environ)}  # fmt: skip
            stream.write(json.dumps(seen) + "\n")
    if argv[:1] in (["version"], ["--version"]):
        say("ngrok version 3.99.0-fake")
        return
    if argv[:1] != ["start"]:
        sys.exit(2)
    threading.Thread(target=watch_parent, daemon=True).start()
    if MODE == "exit":
        sys.exit(1)
    if MODE == "silent":
        while True:
            time.sleep(1)
    if MODE == "4018" or (MODE == "token" and not token_given(argv)):
        fail_4018()
    if MODE == "108":
        err = "Your account is limited to 1 simultaneous ngrok agent sessions.\\r\\n\\r\\nERR_NGROK_108\\r\\n"
        say('lvl=info msg="starting web service" obj=web addr=127.0.0.1:4040')
        cloud_round_trip()
        say(f'lvl=eror msg="session closing" obj=tunnels.session err="{err}"')
        sys.exit(1)
    api = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    say(f'lvl=info msg="starting web service" obj=web addr=127.0.0.1:{api.server_address[1]}')
    if MODE == "offline":
        while True:
            say(
                'lvl=eror msg="failed to reconnect session" obj=tunnels.session err="dial tcp: lookup connect.ngrok-agent.com: no such host"'
            )
            time.sleep(0.3)
    say('lvl=info msg="client session established" obj=tunnels.session')
    say('lvl=info msg="tunnel session started" obj=tunnels.session')
    if MODE == "die":
        time.sleep(float(os.environ.get("FAKE_NGROK_DIE_AFTER", "1")))
        os._exit(3)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
