"""comethook's public, stable Python API: CometChat's webhook deliveries and verdicts for your own code and tests.

    from comethook import build_payload, judge, deliver, Listener

    body = build_payload("before_message", text="buy cheap pills", sender="cometchat-uid-3")
    verdict = judge(body, status=200, answer={"action": "do_not_propagate"})   # Verdict(kind="drop", ...)

Only the names in `__all__` are public and follow semantic versioning (a breaking change to one of them
comes with a new major version). Everything in `comethook_cli` is private and may change in any release.
The pytest plugin (`comethook.pytest_plugin`) is public too: its fixtures and `assert_verdict`.
"""

from __future__ import annotations

from comethook._api import Trigger, build_payload, deliver, judge, triggers
from comethook._listener import Listener
from comethook_cli import __version__
from comethook_cli.errors import ComethookError, InvalidSetting, UsageError
from comethook_cli.models import Delivery, Exchange, Verdict

__all__ = [
    "ComethookError",
    "Delivery",
    "Exchange",
    "InvalidSetting",
    "Listener",
    "Trigger",
    "UsageError",
    "Verdict",
    "__version__",
    "build_payload",
    "deliver",
    "judge",
    "triggers",
]
