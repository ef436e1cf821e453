"""Errors a user can cause or meet, and the exit code each one maps to.

    ComethookError                 exit 1  (operational failure)
    ├── UsageError                 exit 2  bad option, unknown trigger, unreadable file
    │   └── InvalidSetting         exit 2  a setting's value the core cannot take (named per adapter)
    ├── ListenerError              exit 1  listener could not start (port in use ...)
    ├── TunnelError                exit 1  ngrok could not open or died
    ├── AssertionFailed            exit 3  --expect, --expect-json, --max-latency, a check
    └── UnreachableError           exit 4  could not connect, or timed out

Every error carries a message (what failed) and an optional hint (what to do next).
cli's funnel is the one place that turns them into stderr lines and exit codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """The exit codes every command shares (docs/reference/exit-codes.md)."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    ASSERTION = 3
    UNREACHABLE = 4
    INTERRUPTED = 130


class ComethookError(Exception):
    """Base of every error comethook reports to its user."""

    exit_code: ExitCode = ExitCode.FAILURE
    #: Its `error` record is already written (`listen --json` writes it in order, before `stopped`).
    reported: bool = False

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(ComethookError):
    """The user asked for something comethook cannot do as asked."""

    exit_code = ExitCode.USAGE


class InvalidSetting(UsageError, ValueError):
    """A setting's value the core cannot take, named in domain terms (`status`, `fallback`), never as a flag.

    The message is `before` + the setting (with its value when one is given) + `problem`; the hint may hold
    `{example}`, the setting with an example value, and `{name}`, the setting alone. Each adapter says the setting the way its user wrote it:
    `named("flag")` gives `--status 700` / `--status 503` (the CLI, cli/app.py's funnel), `named("keyword")`
    gives `status=700` / `status=503` (the Python API; it is also `message` and `hint` as raised, so a Python
    caller of the engine sees it too). It is a ValueError as well, for Python callers who catch that.
    `label`: how the adapter itself named the setting, said as it is in every style (a rule's error says where
    the adapter found the rule: `--rules hooks.json rule 2`, `rules rule 2`); "" when only the hint names it.
    """

    def __init__(
        self,
        setting: str,
        problem: str,
        hint: str | None = None,
        *,
        value: object = None,
        before: str = "",
        example: object = None,
        label: str | None = None,
    ) -> None:
        self.setting = setting
        self.label = label
        self.problem = problem
        self.value = value
        self.before = before
        self.template = hint
        self.example = example
        message, said = self.named("keyword")
        super().__init__(message, said)

    def named(self, style: str, name: str | None = None, example_name: str | None = None) -> tuple[str, str | None]:
        """(message, hint) naming the setting as a `flag` (`--name VALUE`) or a `keyword` (`name=VALUE`); `name`
        overrides the flag's spelling when it is not `--` + the setting with dashes, `example_name` the hint's."""
        if style == "flag":
            name = name or "--" + self.setting.replace("_", "-")
            shown = repr(self.value) if isinstance(self.value, str) else str(self.value)
            given = name if self.value is None else f"{name} {shown}"
            example_name = example_name or name
            example = f"{example_name} {self.example}"
        else:
            name = name or self.setting
            given = name if self.value is None else f"{name}={self.value!r}"
            quoted = isinstance(self.example, str) and self.example.startswith("'")  # already quoted, as for a shell
            example = f"{name}={self.example if quoted else repr(self.example)}"
            example_name = name
        hint = None
        if self.template is not None:
            hint = self.template.replace("{example}", example).replace("{name}", example_name)
        if self.label is not None:
            given = self.label
        return self.before + given + self.problem, hint


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


@dataclass(frozen=True)
class Named:
    """A setting inside a SettingText's text, said by each adapter its own way."""

    setting: str


class SettingText(str):
    """A warning's, or an error's message or hint, that names settings in domain terms, as InvalidSetting does.

    Built from text, Named settings and other SettingTexts; the string itself names the settings as keywords
    (`forward_to`), which is what a Python caller reads (comethook.Listener.warnings), and `said("flag")` as the CLI
    does (`--forward-to`, cli/app.py). It travels as any text does (Hub.warn, on_warning, an error's message), so
    only the adapter that shows it needs to know.
    """

    parts: tuple[str | Named, ...]

    def __new__(cls, *parts: str | Named) -> SettingText:
        flat = tuple(p for part in parts for p in (part.parts if isinstance(part, SettingText) else (part,)))
        made = super().__new__(cls, "".join(part if isinstance(part, str) else part.setting for part in flat))
        made.parts = flat
        return made

    def said(self, style: str) -> str:
        """The text with each setting as a `flag` (`--keep-secrets`) or a `keyword` (`keep_secrets`)."""
        return "".join(
            part if isinstance(part, str) else "--" + part.setting.replace("_", "-") if style == "flag" else part.setting
            for part in self.parts
        )
