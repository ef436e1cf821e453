"""Make the documentation's pictures from real runs, both through headless Chromium:

- docs/inspector.png: a real `comethook listen` with a realistic mix of deliveries, its inspector page;
- docs/terminal.png: `comethook listen` (terminal 1) and `comethook send` (terminal 2), each captured from a real
  pseudo-terminal of 80 columns, rendered with rich's SVG export, and that SVG photographed by the same Chromium.

    python docs/screenshot.py [--only inspector|terminal] [--dark] [--output docs/inspector.png] [--terminal-output ...]

Needs Playwright for Python and a Chromium (Debian: apt-get install chromium; CHROMIUM=path to choose another).
"""

from __future__ import annotations

import argparse
import fcntl
import io
import json
import os
import pty
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class App(BaseHTTPRequestHandler):
    """The developer's app: it answers message_sent with a small acknowledgement."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(2.3 if b"quarterly" in body else 0.04)  # one slow answer: past CometChat's 2 s budget
        answer = json.dumps({"received": True, "queued": 1}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


def chromium() -> str:
    return os.environ.get("CHROMIUM", "/usr/bin/chromium")


def inspector_shot(args: argparse.Namespace) -> None:
    """The inspector page of a real listener, after a realistic mix of deliveries (an INJECT opened)."""
    from playwright.sync_api import sync_playwright

    app = ThreadingHTTPServer(("127.0.0.1", 0), App)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    app_url = f"http://127.0.0.1:{app.server_address[1]}/hooks/cometchat"
    down = f"http://127.0.0.1:{free_port()}/hooks/cometchat"
    port = free_port()
    home = tempfile.mkdtemp(prefix="comethook-shot-")
    env = {**os.environ, "COMETHOOK_HOME": home, "NO_COLOR": "1"}
    inject = json.dumps({"moderation": {"score": 0.02, "label": "safe"}, "translated": {"es": "¿Seguimos con el almuerzo?"}})
    listen = subprocess.Popen(
        [sys.executable, "-m", "comethook_cli", "listen", "--port", str(port), "--no-tunnel", "--json",
         "--respond", f"inject:{inject}", "--drop-if", "(?i)crypto|buy now",
         "--route", f"message_sent={app_url}", "--route", f"after_message={down}", "--fallback", "pass"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=ROOT, text=True,
    )  # fmt: skip
    try:
        assert listen.stdout is not None
        ready = json.loads(listen.stdout.readline())
        webhook, inspector = ready["webhook_url"], ready["inspector_url"]

        def send(trigger: str, *flags: str) -> None:
            subprocess.run([sys.executable, "-m", "comethook_cli", "send", trigger, "--to", webhook, *flags],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT, check=False)  # fmt: skip

        send("message_read_receipt", "--sender", "cometchat-uid-2", "--receiver", "cometchat-uid-1")
        send("group_member_joined", "--sender", "cometchat-uid-4", "--group", "cometchat-guid-1")
        send("call_initiated")
        send("message_sent", "--text", "Shipping the new onboarding flow today 🚀", "--sender", "cometchat-uid-3")
        send("after_message", "--text", "Can someone review my PR?")
        send("before_message", "--text", "BUY NOW: cheap crypto, 1000% returns!!!", "--sender", "cometchat-uid-5")
        send("message_reaction_added", "--sender", "cometchat-uid-2")
        send("message_sent", "--text", "Uploading the quarterly report", "--type", "file", "--sender", "cometchat-uid-4")
        send("before_message", "--text", "Are we still on for lunch tomorrow?", "--group", "cometchat-guid-1")
        request = urllib.request.Request(inspector + "api/session")
        with urllib.request.urlopen(request) as answer:
            token = json.loads(answer.read())["token"]
        put = urllib.request.Request(
            inspector + "api/rules", data=json.dumps({"respond": "pass"}).encode(), method="PUT",
            headers={"X-Comethook-Token": token, "Origin": inspector.rstrip("/"), "Content-Type": "application/json"},
        )  # fmt: skip
        urllib.request.urlopen(put).read()
        send(
            "before_message", "--text", "See you at 12:30 then 👍", "--sender", "cometchat-uid-2", "--receiver", "cometchat-uid-1"
        )
        send("user_connection_status_changed", "--sender", "cometchat-uid-1")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium())
            page = browser.new_page(
                viewport={"width": 1440, "height": 820}, device_scale_factor=1, color_scheme="dark" if args.dark else "light"
            )
            page.goto(inspector)
            page.wait_for_selector(".viewport .row:not([hidden])")
            page.locator(".viewport .row", has_text="lunch tomorrow").click()
            page.wait_for_selector(".verdict-line.inject")
            page.wait_for_timeout(400)
            page.screenshot(path=args.output)
            browser.close()
        print(f"wrote {args.output}", file=sys.stderr)
    finally:
        listen.terminate()
        listen.wait(10)
        app.shutdown()


class Terminal:
    """A program in a real pseudo-terminal of 80 columns: what it writes is collected as the terminal got it."""

    def __init__(self, argv: list[str], env: dict[str, str], rows: int = 24) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, 80, 0, 0))
        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT, start_new_session=True)
        os.close(slave)
        self.master, self.chunks = master, bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the program and every child closed the terminal
                return
            if not chunk:
                return
            self.chunks.extend(chunk)

    def wait_for(self, text: str, seconds: float = 20, count: int = 1) -> None:
        deadline = time.monotonic() + seconds
        while self.chunks.count(text.encode()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} never appeared: {bytes(self.chunks)!r}")
            time.sleep(0.05)

    def finish(self, interrupt: bool = False) -> str:
        """Stop the program (Ctrl-C, as a user would) and return what the terminal showed."""
        if interrupt:
            os.killpg(self.process.pid, signal.SIGINT)
        self.process.wait(15)
        self.reader.join(5)
        os.close(self.master)
        return bytes(self.chunks).decode("utf-8", "replace").replace("\r\n", "\n")


def terminal_svg(title: str, command: str, captured: str) -> str:
    """The capture as rich's SVG of an 80-column terminal, with the prompt line, and no web font to fetch."""
    from rich.console import Console
    from rich.text import Text

    console = Console(record=True, width=80, file=io.StringIO(), force_terminal=True, color_system="truecolor")
    console.print(Text.from_ansi(f"$ {command}\n{captured.rstrip()}"), overflow="fold")
    svg = console.export_svg(title=title)
    return re.sub(r'url\("https?://[^"]+"\) format\("[^"]+"\),?\s*', "", svg)  # offline: local monospace fonts only


def terminal_shot(args: argparse.Namespace) -> None:
    """Terminal 1 runs `comethook listen`, terminal 2 sends it three deliveries; both photographed together."""
    from playwright.sync_api import sync_playwright

    port = 8765 if port_is_free(8765) else free_port()  # the port the documentation's examples show, when it is free
    home = tempfile.mkdtemp(prefix="comethook-shot-")
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "NGROK_AUTHTOKEN")}
    env.update({"COMETHOOK_HOME": home, "TERM": "xterm-256color", "COLUMNS": "80", "HOME": home})
    comethook = [sys.executable, "-m", "comethook_cli"]
    listen = Terminal([*comethook, "listen", "--port", str(port), "--drop-if", "(?i)pills", "--no-inspector"], env)
    listen.wait_for("Ctrl-C")
    url = f"http://127.0.0.1:{port}/webhook"
    sends = [["before_message", "--text", "buy cheap pills"], ["message_sent", "--text", "lunch at 12:30?"],
             ["before_message", "--text", "see you then"]]  # fmt: skip
    shown = ""
    for flags in sends:
        send = Terminal([*comethook, "send", *flags, "--to", url], env)
        shown = send.finish()
    listen.wait_for("--> ", count=len(sends))
    time.sleep(0.3)
    first = terminal_svg("terminal 1", "comethook listen --drop-if '(?i)pills'", listen.finish(interrupt=True))
    last = " ".join(f"'{f}'" if " " in f else f for f in sends[-1])
    second = terminal_svg("terminal 2", f"comethook send {last} --to {url}", shown)
    page_html = (
        f"<!doctype html><html><body style='margin:0;padding:8px;background:#fff;width:1000px'>{first}{second}</body></html>"
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium())
        page = browser.new_page(viewport={"width": 1000, "height": 400}, device_scale_factor=1)
        page.route("**/*", lambda route: route.abort() if route.request.url.startswith("http") else route.continue_())
        page.set_content(page_html)
        page.locator("body").screenshot(path=args.terminal_output)
        browser.close()
    print(f"wrote {args.terminal_output}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", default=str(ROOT / "docs" / "inspector.png"))
    parser.add_argument("--terminal-output", default=str(ROOT / "docs" / "terminal.png"))
    parser.add_argument("--only", choices=["inspector", "terminal"])
    parser.add_argument("--dark", action="store_true")
    args = parser.parse_args()
    if args.only in (None, "inspector"):
        inspector_shot(args)
    if args.only in (None, "terminal"):
        terminal_shot(args)


if __name__ == "__main__":
    main()
