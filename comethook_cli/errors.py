"""Errors a user can cause or meet, and the exit code each one maps to.

    ComethookError                 exit 1  (operational failure)
    ├── UsageError                 exit 2  bad option, unknown trigger, unreadable file
    ├── ListenerError              exit 1  listener could not start (port in use ...)
    ├── TunnelError                exit 1  ngrok could not open or died
    ├── AssertionFailed            exit 3  --expect, --expect-json, --max-latency, a check
    └── UnreachableError           exit 4  could not connect, or timed out

Every error carries a message (what failed) and an optional hint (what to do next).
cli's funnel is the one place that turns them into stderr lines and exit codes.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The exit codes every command shares (see README, "Exit codes")."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    ASSERTION = 3
    UNREACHABLE = 4
    INTERRUPTED = 130


class ComethookError(Exception):
    """Base of every error comethook reports to its user."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(ComethookError):
    """The user asked for something comethook cannot do as asked."""

    exit_code = ExitCode.USAGE


class ListenerError(ComethookError):
    """The local listener could not start."""


class TunnelError(ComethookError):
    """The ngrok tunnel could not open, or died while listening."""

    def __init__(self, message: str, hint: str | None = None, code: str | None = None) -> None:
        super().__init__(message, hint)
        self.code = code


class AssertionFailed(ComethookError):
    """A CI assertion did not hold."""

    exit_code = ExitCode.ASSERTION


class UnreachableError(ComethookError):
    """The endpoint could not be reached, or did not answer in time."""

    exit_code = ExitCode.UNREACHABLE
