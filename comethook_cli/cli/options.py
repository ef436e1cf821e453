"""The options several commands share, declared once as `Annotated` types, and the flag helpers they share.

A command declares each of its options as a plain parameter typed with one of these (or with its own, in its
module), and turns the values into the engine's config objects itself (`build_options`, `delivering`, `basic_auth`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from comethook_cli.cli import completion
from comethook_cli.cometchat.payloads import BuildOptions
from comethook_cli.engine.config import Delivering
from comethook_cli.engine.userfiles import MAX_USER_FILE as MAX_USER_FILE  # the one bounded reader, shared with the
from comethook_cli.engine.userfiles import read_user_file as read_user_file  # pytest plugin and the Python API
from comethook_cli.errors import UsageError

if TYPE_CHECKING:
    from comethook_cli.cometchat.payloads import Template
    from comethook_cli.cometchat.rules import Action, Rule
    from comethook_cli.models import JSON

JsonOut = Annotated[bool, typer.Option("--json", help="NDJSON on stdout: one JSON object per line.")]
Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="PATH=VALUE",
        help="Change a dotted path that exists in the body (VALUE as JSON, else string). Repeatable.",
        autocompletion=completion.set_paths,
    ),
]
Adds = Annotated[
    list[str] | None,
    typer.Option("--add", metavar="PATH=VALUE", help="Create a dotted path in the body (objects made on the way). Repeatable."),
]
Unsets = Annotated[
    list[str] | None,
    typer.Option(
        "--unset", metavar="PATH", help="Remove a dotted path from the body. Repeatable.", autocompletion=completion.set_paths
    ),
]
Fixtures = Annotated[
    str | None,
    typer.Option(
        "--fixtures",
        metavar="DIR",
        help="The project's fixtures directory (default: comethook/fixtures beside comethook.toml, else here).",
    ),
]
SECRET_ON_ARGV = {
    "basic_auth": "--basic-auth USER:PASS on the command line is visible to every local user (ps, shell history): "
    "set COMETHOOK_BASIC_AUTH, use --basic-auth-file FILE, or give only USER to be asked for the password.",
    "ngrok_authtoken": "--ngrok-authtoken on the command line is visible to every local user (ps, shell history): "
    "set NGROK_AUTHTOKEN, or save it with `ngrok config add-authtoken`.",
    "api_key": "--api-key on the command line is visible to every local user (ps, shell history): set COMETCHAT_API_KEY.",
    "forward_to": "--forward-to {url}: a password on the command line is visible to every local user (ps, shell "
    'history). Read the URL from the environment in comethook.toml instead: [listen] forward-to = { env = "APP_URL" }.',
    "route": "--route {url}: a password on the command line is visible to every local user (ps, shell history). Read "
    'it from the environment in comethook.toml instead: [listen] route = { env = "APP_ROUTE" }.',
}


def warn_secret_on_argv(ctx: typer.Context, param: typer.CallbackParam, value: str | None) -> str | None:
    """Warn once (never showing the value) when a secret came on the command line rather than from the environment."""
    source = ctx.get_parameter_source(param.name or "")
    on_argv = value and source is not None and source.name == "COMMANDLINE" and not ctx.resilient_parsing
    if on_argv and (param.name != "basic_auth" or ":" in (value or "")):  # USER alone is no secret: it gets a prompt
        from comethook_cli.outputs.terminal import Renderer

        Renderer().warning(SECRET_ON_ARGV[param.name or ""])
    return value


def warn_password_on_argv(ctx: typer.Context, param: typer.CallbackParam, value: list[str] | None) -> list[str] | None:
    """Warn once per URL (its password redacted) when a --forward-to (or --route TRIGGER=URL) URL on the command line
    holds a password."""
    from comethook_cli.models import redact_url

    source = ctx.get_parameter_source(param.name or "")
    if value and source is not None and source.name == "COMMANDLINE" and not ctx.resilient_parsing:
        for given in value:
            trigger, _, url = given.partition("=") if param.name == "route" else ("", "", given)
            shown = f"{trigger}={redact_url(url)}" if trigger else redact_url(url)
            if ":***@" in shown:
                from comethook_cli.outputs.terminal import Renderer

                Renderer().warning(SECRET_ON_ARGV[param.name or ""].replace("{url}", shown))
    return value


BasicAuth = Annotated[
    str | None,
    typer.Option(
        "--basic-auth",
        metavar="USER:PASS",
        envvar="COMETHOOK_BASIC_AUTH",
        show_envvar=True,
        callback=warn_secret_on_argv,
        help="HTTP Basic credentials. Prefer the env var or --basic-auth-file (argv shows in ps); USER alone asks for the password.",
    ),
]
BasicAuthFile = Annotated[
    str | None,
    typer.Option("--basic-auth-file", metavar="FILE", help="Read HTTP Basic USER:PASS from the first line of FILE."),
]
NgrokAuthtoken = Annotated[
    str | None,
    typer.Option(
        "--ngrok-authtoken",
        metavar="TOKEN",
        callback=warn_secret_on_argv,
        help="ngrok authtoken. Better: NGROK_AUTHTOKEN or your ngrok config (argv shows in ps).",
    ),
]
ContentType = Annotated[
    str | None,
    typer.Option(
        "--content-type", metavar="VALUE", help="Content-Type to send (default Application/json, the casing CometChat sends)."
    ),
]
Legacy = Annotated[bool, typer.Option("--legacy", help="Use the legacy shape where a trigger has both (receipts).")]
MaxAnswer = Annotated[
    int, typer.Option("--max-answer", metavar="BYTES", min=1, help="Read at most this much of an answer (larger: a failure).")
]
Insecure = Annotated[
    bool, typer.Option("--insecure", "-k", help="Do not verify TLS certificates (self-signed test endpoints); warns.")
]

ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        metavar="KEY",
        envvar="COMETCHAT_API_KEY",
        show_envvar=True,
        callback=warn_secret_on_argv,
        help="REST API key (fullAccess). Prefer the env var: argv shows in ps.",
    ),
]

InspectorPort = Annotated[
    int | None,
    typer.Option(
        "--inspector-port",
        metavar="PORT",
        min=0,
        max=65535,
        help="Port of the inspector page (default: the listener's port + 1; 0 picks a free one).",
        rich_help_panel="Inspector",
    ),
]
NoInspector = Annotated[
    bool, typer.Option("--no-inspector", help="Do not serve the inspector page.", rich_help_panel="Inspector")
]
OpenBrowser = Annotated[
    bool, typer.Option("--open", help="Open the inspector page in your browser.", rich_help_panel="Inspector")
]


#: How a payload is built (`payloads show`, `send`); the defaults are BuildOptions'.
MessageType = Annotated[
    str,
    typer.Option(
        "--type", help="Message type: text, image, video, audio, file, custom.", autocompletion=completion.message_types
    ),
]
Text = Annotated[str | None, typer.Option("--text", help="Message text (caption for media).")]
Sender = Annotated[str, typer.Option("--sender", metavar="UID", help="Sending user's uid.")]
Receiver = Annotated[str, typer.Option("--receiver", metavar="UID", help="Receiving user's uid.")]
ToGroup = Annotated[str | None, typer.Option("--group", metavar="GUID", help="Send to a group (receiverType group).")]
WebhookId = Annotated[str, typer.Option("--webhook-id", help="The webhook id configured in the Dashboard.")]
PayloadAppId = Annotated[str, typer.Option("--app-id", help="CometChat app id.")]
PayloadRegion = Annotated[str, typer.Option("--region", help="App region: us, eu, in.", autocompletion=completion.regions)]

#: How a delivery is made and judged (`send`, `replay`); the defaults are Delivering's.
Headers = Annotated[
    list[str] | None, typer.Option("--header", "-H", metavar="'NAME: VALUE'", help="Extra request header. Repeatable.")
]
AnswerTimeout = Annotated[float, typer.Option("--timeout", metavar="SECONDS", min=0.001, help="Seconds to wait for each answer.")]
Expect = Annotated[
    str | None,
    typer.Option(
        "--expect",
        metavar="pass|inject|drop|ok",
        help="Assert the verdict, or that all got 2xx.",
        autocompletion=completion.expectations,
    ),
]
ExpectJson = Annotated[
    list[str] | None, typer.Option("--expect-json", metavar="PATH=VALUE", help="Assert a value in the answer. Repeatable.")
]
MaxLatency = Annotated[float | None, typer.Option("--max-latency", metavar="MS", help="Assert every answer came within MS.")]
SimulateRetries = Annotated[
    bool, typer.Option("--simulate-retries", help="Deliver the same body again at CometChat's retry cadence (10 s, 30 s).")
]
RetryDelays = Annotated[
    str | None, typer.Option("--retry-delays", metavar="S,S", help="Compress the retry cadence, e.g. 0.1,0.3.")
]
DeliveryVerbose = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show every attempt's answer body, and more of a long one.")
]

#: The option names (parameter names) of each group that a project-file section configures (see config.TARGETS).
BUILDER = frozenset({"type_", "text", "sender", "receiver", "group", "webhook_id", "app_id", "region", "set_", "add", "unset"})
DELIVERING = frozenset({
    "basic_auth", "basic_auth_file", "header", "timeout", "content_type", "json_out", "expect", "expect_json", "max_latency",
    "simulate_retries", "retry_delays", "verbose", "max_answer", "insecure",
})  # fmt: skip
TUNNEL = frozenset(
    {"tunnel", "ngrok_path", "ngrok_authtoken", "domain", "region", "install_ngrok", "tunnel_timeout", "public_url"}
)
HISTORY = frozenset({"no_history", "history_max_mb", "history_max_age", "keep_secrets"})

# --- the shared flags, turned into what the engine takes --------------------------------------------------


def build_options(
    type_: str,
    text: str | None,
    sender: str,
    receiver: str,
    group: str | None,
    webhook_id: str,
    app_id: str,
    region: str,
    sets: Sequence[str] | None,
    adds: Sequence[str] | None = None,
    unsets: Sequence[str] | None = None,
) -> BuildOptions:
    """BuildOptions from the shared builder flags, validated."""
    from comethook_cli.engine import values

    given = {"type": type_, "text": text, "sender": sender, "receiver": receiver, "group": group, "webhook_id": webhook_id,
             "app_id": app_id, "region": region}  # fmt: skip
    return values.build_options(given, sets or (), adds or (), unsets or ())


def delivering(
    *,
    basic_auth: str | None,
    basic_auth_file: str | None,
    header: list[str] | None,
    timeout: float,
    content_type: str | None,
    json_out: bool,
    expect: str | None,
    expect_json: list[str] | None,
    max_latency: float | None,
    simulate_retries: bool,
    retry_delays: str | None,
    verbose: bool,
    max_answer: int,
    insecure: bool,
) -> Delivering:
    """The delivering flags (`send`, `replay`) → Delivering, each value parsed (engine/values.py)."""
    from comethook_cli.engine import values

    credentials = _basic_auth(basic_auth, basic_auth_file)
    headers = tuple(values.header(line) for line in header or ())
    expectations = values.expectations(expect, expect_json or (), max_latency)
    delays = values.retry_delays(retry_delays) if retry_delays else None
    return Delivering(
        basic_auth=credentials, headers=headers, timeout=timeout, json_out=json_out, expectations=expectations,
        simulate_retries=simulate_retries, retry_delays=delays, verbose=verbose, content_type=content_type,
        max_answer=max_answer, insecure=insecure,
    )  # fmt: skip


def project_fixtures(configured: str | None) -> dict[str, Template]:
    """The project's fixtures by name (--fixtures, `[payloads] fixtures`, else comethook/fixtures beside the project
    file or here); a warning on stderr for each file that is not a fixture."""
    from comethook_cli.engine import fixtures

    found, warnings = fixtures.load(fixtures_directory(configured))
    if warnings:
        from comethook_cli.outputs.terminal import Renderer

        for warning in warnings:
            Renderer().warning(warning)
    return found


def fixtures_directory(configured: str | None) -> Path:
    """Where the project's fixtures are (see project_fixtures)."""
    from comethook_cli.cli import project
    from comethook_cli.engine import fixtures

    loaded = project.active()
    return fixtures.directory(configured, loaded.file.path if loaded is not None and loaded.file is not None else None)


def read_body(source: str) -> tuple[bytes, JSON]:
    """The bytes of `--body FILE|-` and what they parse to (strict JSON, as the listener reads it)."""
    from comethook_cli import jsonbody

    if source == "-" and sys.stdin.isatty():
        from comethook_cli.outputs.terminal import Renderer

        Renderer().note("Reading the body from stdin (Ctrl-D to end).", style="bold")
    if source == "-":
        raw = sys.stdin.buffer.read()
    else:  # unbounded as before: a payload of any size is a fair test of an app's own limit
        raw = read_user_file(source, "--body", "Check the path, or pass - for stdin.", limit=None)
    try:
        return raw, jsonbody.parse(raw)
    except jsonbody.JsonBodyError as error:
        raise UsageError(
            f"--body {source!r} is not valid JSON: {error}.", "Fix the file, or start from `comethook payloads show`."
        ) from None


def rules_document(path: str) -> list[JSON]:
    """The entries of a --rules JSON file (a list), read once; engine.values.rules parses them (errors name the file)."""
    from comethook_cli import jsonbody

    raw = read_user_file(path, "--rules")
    try:
        document = jsonbody.parse(raw)
    except jsonbody.JsonBodyError as error:
        raise UsageError(
            f"--rules {path!r} is not valid JSON: {error}.", "The rules file format: docs/guides/moderation.md."
        ) from None
    if not isinstance(document, list):
        raise UsageError(f"--rules {path!r} must hold a JSON list of rules.", "The rules file format: docs/guides/moderation.md.")
    return document


def load_rules(path: str) -> tuple[Rule, ...]:
    """Rules from a --rules JSON file: a list of {"match": {...}, "action": ...} (read here, parsed by engine.values)."""
    from comethook_cli.engine import values

    return values.rules(rules_document(path), f"--rules {path}")


def respond_action(spec: str) -> Action:
    """--respond → an Action, `inject:@FILE` read here (the engine reads no files)."""
    from comethook_cli.engine import values

    return values.action(spec, read=lambda path: read_user_file(path, "--respond file"))


def basic_auth(credentials: str | None, path: str | None) -> str | None:
    """USER:PASS from --basic-auth / COMETHOOK_BASIC_AUTH or from --basic-auth-file; for USER alone, asks the password."""
    from comethook_cli.cli.project import prefer_given

    credentials, path = prefer_given(credentials, path)
    if path is not None:
        if credentials:
            raise UsageError(
                "Both --basic-auth-file and --basic-auth (or COMETHOOK_BASIC_AUTH) give credentials.",
                "Use one: drop a flag, or unset COMETHOOK_BASIC_AUTH.",
            )
        credentials = read_credentials(path)
    if credentials and ":" not in credentials:
        if not (sys.stdin.isatty() and sys.stderr.isatty()):
            raise UsageError(
                "Malformed Basic auth credentials: USER without :PASS, and no terminal to ask for the password.",
                "Pass USER:PASS in COMETHOOK_BASIC_AUTH or with --basic-auth-file FILE.",
            )
        from comethook_cli.outputs.terminal import Renderer

        try:
            password = Renderer().secret(f"Password for {credentials}")
        except EOFError:
            raise UsageError("No password given for Basic auth.", "Type it at the prompt, or pass USER:PASS.") from None
        credentials = f"{credentials}:{password}"
    return credentials


#: basic_auth under a name the flag parameters of the same name do not hide.
_basic_auth = basic_auth


def read_credentials(path: str) -> str:
    """The first line of a --basic-auth-file, checked to be USER:PASS (a warning when others may read the file)."""
    try:
        with open(path, encoding="utf-8") as file:
            first = file.readline(65536).rstrip("\r\n")
            mode = os.fstat(file.fileno()).st_mode
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else "not UTF-8 text"
        raise UsageError(
            f"Cannot read --basic-auth-file {path!r}: {reason}.", "The file holds USER:PASS on its first line."
        ) from None
    user, sep, _ = first.partition(":")
    if not sep or not user:
        # Never quote the line: it may be the password alone.
        raise UsageError(f"The first line of --basic-auth-file {path!r} is not USER:PASS.", "Write USER:PASS on its first line.")
    if os.name == "posix" and mode & 0o077:
        from comethook_cli.outputs.terminal import Renderer

        Renderer().warning(f"--basic-auth-file {path!r} is open to other users (mode {mode & 0o777:04o}): chmod 600 it.")
    return first


# --- trigger: how a verb reaches CometChat, what it waits for and asserts ----------------------------------

AppId = Annotated[str | None, typer.Option("--app-id", envvar="COMETCHAT_APP_ID", show_envvar=True, help="CometChat app id.")]
Region = Annotated[str, typer.Option("--region", envvar="COMETCHAT_REGION", show_envvar=True, help="App region: us, eu, in.")]
ApiBase = Annotated[
    str | None,
    typer.Option("--api-base", metavar="URL", help="Another REST server, e.g. `comethook emulate`: http://127.0.0.1:8780/v3."),
]
RestTimeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        min=0.001,
        help="Seconds for all of the command's REST calls together, 429 back-offs included (--wait has --wait-timeout).",
    ),
]
RestVerbose = Annotated[bool, typer.Option("--verbose", "-v", help="Show every REST answer in full.")]
Wait = Annotated[bool, typer.Option("--wait", help="Wait for the deliveries this call caused, in a running `listen`'s history.")]
WaitTimeout = Annotated[float, typer.Option("--wait-timeout", metavar="SECONDS", min=0.001, help="How long --wait waits.")]
TriggerExpect = Annotated[
    str | None,
    typer.Option("--expect", metavar="ok|delivered|pass|inject|drop|dropped|blocked", help="Assert the outcome (exit 3 if not)."),
]
