"""Make docs/inspector.png: a real `comethook listen` with a realistic mix of deliveries, seen in headless Chromium.

    python docs/screenshot.py [--dark] [--output docs/inspector.png]

Needs Playwright for Python and a Chromium (Debian: apt-get install chromium; CHROMIUM=path to choose another).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--output", default=str(ROOT / "docs" / "inspector.png"))
    parser.add_argument("--dark", action="store_true")
    args = parser.parse_args()
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
            browser = playwright.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
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


if __name__ == "__main__":
    main()
