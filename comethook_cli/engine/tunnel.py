"""The only module that talks to pyngrok: find the agent, open the tunnel within a bounded time, watch it, close it.

pyngrok blocks (subprocess, readline, urllib) and can block forever on an agent that starts but never
prints; every call here runs in a worker thread under an outer deadline, and on that deadline the agent
is killed, which ends pyngrok's readline. Agent log lines never reach the terminal raw: the `pyngrok`
logger gets a NullHandler and does not propagate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from comethook_cli.engine.config import TunnelConfig
from comethook_cli.errors import Named, SettingText, TunnelError

AUTHTOKEN_URL = "https://dashboard.ngrok.com/get-started/your-authtoken"
TOKEN_HINT = SettingText("Set NGROK_AUTHTOKEN or pass ", Named("ngrok_authtoken"), f"; get yours at {AUTHTOKEN_URL}.")
#: Extra seconds past pyngrok's own start-up timeout before the agent is killed (it only checks between lines).
#: Read at use time: the test suite monkeypatches it to test that deadline without waiting 3 s.
DEADLINE_SLACK = 3.0
WATCH_INTERVAL = 0.5
_CODE = re.compile(r"ERR_NGROK_\d+")
_HINTS = {
    "ERR_NGROK_4018": ("ngrok needs a verified account and authtoken", TOKEN_HINT),
    "ERR_NGROK_105": ("ngrok rejected the authtoken", TOKEN_HINT),
    "ERR_NGROK_107": ("ngrok rejected the authtoken", TOKEN_HINT),
    "ERR_NGROK_108": (
        "your ngrok account is already running its limit of agent sessions",
        "Stop the other ngrok agent (https://dashboard.ngrok.com/agents), then start comethook again.",
    ),
    "ERR_NGROK_334": (
        "that domain is already online in another ngrok session",
        SettingText("Stop the agent that uses it, or choose another ", Named("domain"), "."),
    ),
}


def ngrok_dir() -> Path:
    """ngrok's own config directory (computed now, not at import)."""
    from pyngrok import installer

    return Path(installer.get_default_ngrok_dir())


def find_agent(config: TunnelConfig) -> tuple[Path, str]:
    """The ngrok agent and where it was found: --ngrok-path, else COMETHOOK_NGROK_PATH, else where pyngrok installs
    it when it is there, else an agent on $PATH that proves to be one (is_real_agent), else pyngrok's place (missing:
    the caller offers to download it there)."""
    from pyngrok import installer

    if config.ngrok_path:
        return Path(config.ngrok_path).expanduser(), "--ngrok-path"
    explicit = os.environ.get("COMETHOOK_NGROK_PATH")
    if explicit:
        return Path(explicit).expanduser(), "COMETHOOK_NGROK_PATH"
    installed = ngrok_dir() / installer.get_ngrok_bin()
    if installed.exists():
        return installed, "installed by pyngrok"
    on_path = shutil.which("ngrok")
    if on_path is not None and is_real_agent(Path(on_path)):
        return Path(on_path), "found on PATH"
    return installed, "installed by pyngrok"


#: How long `ngrok version` may take to answer before the file is taken for something else.
VERSION_TIMEOUT = 5.0
_AGENT_VERSION = re.compile(r"^ngrok version 3\.", re.MULTILINE)


def is_real_agent(path: Path) -> bool:
    """Whether an `ngrok` found on PATH is the ngrok v3 agent. pyngrok installs a console script named `ngrok` that is
    its downloader, not the agent (run, it downloads the agent from the internet): a script that mentions Python or
    pyngrok is never run. Anything else must answer `ngrok version` like the agent (`ngrok version 3.x`), within
    VERSION_TIMEOUT, started without comethook's settings in its environment."""
    try:
        with path.open("rb") as file:
            head = file.read(4096)
    except OSError:
        return False
    if head.startswith(b"#!") and (b"python" in head.split(b"\n", 1)[0] or b"pyngrok" in head):
        return False
    try:
        answer = subprocess.run(
            [str(path), "version"], capture_output=True, text=True, timeout=VERSION_TIMEOUT, env=agent_environment(),
            stdin=subprocess.DEVNULL, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError, ValueError):
        return False
    return answer.returncode == 0 and _AGENT_VERSION.search(answer.stdout) is not None


def config_file() -> Path:
    """The user's ngrok config when it exists, else a comethook-owned one (so nothing is written to ngrok's dir)."""
    from comethook_cli.engine.home import home, make_private_directory

    user = ngrok_dir() / "ngrok.yml"
    if user.exists():
        return user
    # pyngrok creates the file's directory when it is missing, with the umask's mode: make comethook's home private first.
    with contextlib.suppress(OSError):  # unwritable: pyngrok's own error says so when it needs the file
        make_private_directory(home())
    return home() / "ngrok.yml"


def find_authtoken(config: TunnelConfig) -> str | None:
    """--ngrok-authtoken, else NGROK_AUTHTOKEN, else `authtoken` in the user's ngrok config."""
    return authtoken_and_source(config)[0]


def authtoken_and_source(config: TunnelConfig) -> tuple[str | None, str]:
    """The authtoken and where it came from: --ngrok-authtoken, NGROK_AUTHTOKEN, or the path of ngrok's config file."""
    if config.ngrok_authtoken:
        return config.ngrok_authtoken, "--ngrok-authtoken"
    token = os.environ.get("NGROK_AUTHTOKEN")
    if token:
        return token, "NGROK_AUTHTOKEN"
    path = ngrok_dir() / "ngrok.yml"  # what `ngrok config add-authtoken` writes (ngrok v3, the only agent pyngrok runs)
    token = _token_in(path)
    return (token, str(path)) if token else (None, "")


def _token_in(path: Path) -> str | None:
    import yaml  # pyngrok's own dependency

    try:
        settings = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, yaml.YAMLError):  # a malformed file is the user's to fix, not a crash
        return None
    if not isinstance(settings, dict):
        return None
    agent = settings.get("agent")
    token = agent.get("authtoken") if isinstance(agent, dict) else None
    token = token or settings.get("authtoken")
    return token if isinstance(token, str) and token else None


class Tunnel:
    """An open tunnel: its public URL, a watchdog on the agent, and close()."""

    def __init__(self, public_url: str, agent: Any, pyngrok_config: Any, origin: str = "") -> None:
        self.public_url = public_url
        self._agent = agent  # pyngrok's NgrokProcess
        self._config = pyngrok_config
        #: Which agent runs and where the authtoken came from, for the banner (never the token).
        self.origin = origin

    def agent_exit_code(self) -> int | None:
        """None while the agent runs, else its exit code."""
        code: int | None = self._agent.proc.poll()
        return code

    async def watch(self) -> None:
        """Return never while the agent lives; raise TunnelError when it dies."""
        while True:
            code = self.agent_exit_code()
            if code is not None:
                raise TunnelError(
                    f"The ngrok agent died (exit code {code}): CometChat can no longer reach this listener.",
                    SettingText("Start `comethook listen` again; the public URL changes unless you use ", Named("domain"), "."),
                )
            await asyncio.sleep(WATCH_INTERVAL)

    async def close(self) -> None:
        """Close the tunnel and kill the agent."""
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        from pyngrok import ngrok
        from pyngrok.exception import PyngrokError

        try:
            if self.agent_exit_code() is None:
                ngrok.disconnect(self.public_url, pyngrok_config=self._config)
        except (PyngrokError, OSError):
            pass
        finally:
            ngrok.kill(pyngrok_config=self._config)


async def open_for(
    port: int,
    config: TunnelConfig,
    on_warning: Callable[[str], None],
    confirm_install: Callable[[str], bool] | None = None,
    on_opening: Callable[[], None] | None = None,
) -> Tunnel | None:
    """Open a tunnel to the local port. Auto mode (not required): None without a token, and a warning instead of an error.
    `on_opening` is called once the agent is about to start (a display shows progress from then on)."""
    token, source = authtoken_and_source(config)
    if token is None and config.mode != "on":
        return None
    try:
        return await _open(port, config, (token, source), confirm_install, on_opening)
    except TunnelError as error:
        if config.mode == "on":
            raise
        on_warning(SettingText(error.message, " Listening locally only.", *((" ", error.hint) if error.hint else ())))
        return None


async def _open(
    port: int,
    config: TunnelConfig,
    found: tuple[str | None, str],
    confirm_install: Callable[[str], bool] | None,
    on_opening: Callable[[], None] | None,
) -> Tunnel:
    """Start the agent and open the tunnel (over 60 lines: the deadline, Ctrl-C and every failure are each handled
    here, where the pyngrok config they need is in scope)."""
    token, source = found
    path, where = await asyncio.to_thread(find_agent, config)  # an agent on PATH is asked `ngrok version`: off the loop
    await _ensure_agent(path, config, confirm_install)
    _quiet_pyngrok_logging()
    _clean_agent_environment()
    from pyngrok import conf

    if on_opening is not None:
        on_opening()
    origin = f"ngrok agent {path} ({where})" + (f"; authtoken from {source}" if token else "")
    with _agent_config(config.ngrok_authtoken) as config_path:
        pyngrok_config = conf.PyngrokConfig(
            ngrok_path=str(path),
            config_path=str(config_path),
            region=str(config.region) if config.region else None,
            startup_timeout=max(1, int(config.timeout)),
            start_new_session=True,
            monitor_thread=True,
        )
        # pyngrok would pass a token (even one it read from NGROK_AUTHTOKEN itself) as --authtoken, where `ps`
        # shows it to every local user: the agent reads it from its inherited environment or from its config instead.
        pyngrok_config.auth_token = None
        extra: dict[str, Any] = {"url": f"https://{config.domain}"} if config.domain else {}
        work = asyncio.ensure_future(asyncio.to_thread(_connect, port, pyngrok_config, extra))
        try:
            done, _ = await asyncio.wait([work], timeout=config.timeout + DEADLINE_SLACK)
        except asyncio.CancelledError:  # Ctrl-C while the agent starts: it must not outlive comethook
            _kill_starting_agent(pyngrok_config)
            work.add_done_callback(lambda done: done.cancelled() or done.exception())  # its error is expected, not news
            raise
    if not done:
        _kill_starting_agent(pyngrok_config)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(work, timeout=5)
        raise TunnelError(
            f"The ngrok agent at {path} started but was not ready within {config.timeout:g} s "
            f"(+{DEADLINE_SLACK:g} s of grace); it was stopped.",
            "Is it the ngrok v3 agent? Check your network, or run it by hand to see what it says.",
        )
    try:
        public_url, agent = work.result()
    except TunnelError:
        await asyncio.to_thread(_kill, pyngrok_config)
        raise
    except Exception as error:
        await asyncio.to_thread(_kill, pyngrok_config)
        raise _explain(error, path, token) from None
    return Tunnel(public_url, agent, pyngrok_config, origin)


@contextlib.contextmanager
def _agent_config(authtoken: str | None) -> Iterator[Path]:
    """The config file the agent starts with. With --ngrok-authtoken, a private copy of it (mode 0600, in a
    0700 directory, removed once the agent has read it) that adds the token: never the command line, where
    `ps` shows it, and never this process's environment, which everything started later would inherit."""
    base = config_file()
    if not authtoken:
        yield base
        return
    import tempfile

    import yaml  # pyngrok's own dependency

    settings: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError, yaml.YAMLError):
        loaded = yaml.safe_load(base.read_text(encoding="utf-8")) if base.exists() else None
        settings = loaded if isinstance(loaded, dict) else {}
    settings.setdefault("version", "3")
    agent = settings.get("agent")
    settings["agent"] = {**(agent if isinstance(agent, dict) else {}), "authtoken": authtoken}
    settings.pop("authtoken", None)
    with tempfile.TemporaryDirectory(prefix="comethook-ngrok-") as folder:
        path = Path(folder) / "ngrok.yml"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            yaml.safe_dump(settings, file)
        yield path


def _connect(port: int, pyngrok_config: Any, extra: dict[str, Any]) -> tuple[str, Any]:
    from pyngrok import ngrok

    tunnel = ngrok.connect(str(port), "http", pyngrok_config=pyngrok_config, **extra)
    if not tunnel.public_url:
        raise TunnelError("ngrok opened a tunnel without a public URL.", "Check the agent's version.")
    # The agent connect() just started (pyngrok's public accessor returns the running one).
    return str(tunnel.public_url), ngrok.get_ngrok_process(pyngrok_config)


def _kill_starting_agent(pyngrok_config: Any) -> None:
    """Kill an agent pyngrok is still waiting on. pyngrok holds its process lock while it waits for the
    agent's next line, so `ngrok.kill()` would wait forever, and no public call returns the process before
    connect() does: this is the one place comethook reads pyngrok's registry (the process is in it before
    that wait). A test against a silent stand-in agent holds this to pyngrok's behaviour."""
    from pyngrok import process

    starting = process._current_processes.get(pyngrok_config.ngrok_path)
    if starting is not None:
        with contextlib.suppress(OSError):
            starting.proc.kill()


def _kill(config: Any) -> None:
    from pyngrok import ngrok

    with contextlib.suppress(Exception):
        ngrok.kill(pyngrok_config=config)


#: Prefixes of the environment variables the agent does not inherit: comethook's and CometChat's settings, among them
#: its secrets (COMETHOOK_BASIC_AUTH, COMETCHAT_API_KEY ...). The agent needs none of them; NGROK_AUTHTOKEN it keeps.
AGENT_ENV_LEFT_OUT = ("COMETHOOK_", "COMETCHAT_")


def agent_environment() -> dict[str, str]:
    """This process's environment less comethook's own settings (AGENT_ENV_LEFT_OUT): what the ngrok agent starts with."""
    return {name: value for name, value in os.environ.items() if not name.upper().startswith(AGENT_ENV_LEFT_OUT)}


class _AgentSubprocess:
    """`subprocess` as pyngrok's process module sees it: the same, but Popen starts the agent with agent_environment()."""

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
        kwargs.setdefault("env", agent_environment())
        return subprocess.Popen(*args, **kwargs)


def _clean_agent_environment() -> None:
    """Start the agent without comethook's secrets in its environment. pyngrok has no setting for the agent's
    environment (its Popen inherits ours, and an agent's environment lasts as long as it does), so its process
    module is given a `subprocess` whose Popen passes one; tests/engine/test_tunnel.py holds this to pyngrok's behaviour
    (the stand-in agent records what it inherited)."""
    from pyngrok import process

    if not isinstance(getattr(process, "subprocess", None), _AgentSubprocess):
        setattr(process, "subprocess", _AgentSubprocess())  # noqa: B010 - a module global pyngrok does not export


def _quiet_pyngrok_logging() -> None:
    logger = logging.getLogger("pyngrok")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    logger.propagate = False


async def _ensure_agent(path: Path, config: TunnelConfig, confirm_install: Callable[[str], bool] | None) -> None:
    """The agent must exist and be executable; download it only when the user agreed."""
    if path.is_dir():
        raise TunnelError(
            SettingText(Named("ngrok_path"), f" {path} is a directory, not the ngrok agent."), "Point it at the ngrok executable."
        )
    if not path.exists():
        prompt = f"The ngrok agent is not installed at {path}. Download it from ngrok's CDN now?"
        agreed = config.install_ngrok or (confirm_install is not None and confirm_install(prompt))
        if not agreed:
            raise TunnelError(
                f"The ngrok agent was not found at {path}.",
                SettingText(
                    "Install ngrok (https://ngrok.com/download) and pass ",
                    Named("ngrok_path"),
                    " (or COMETHOOK_NGROK_PATH), or add ",
                    Named("install_ngrok"),
                    " to let comethook download it.",
                ),
            )
        await asyncio.to_thread(_install, path)
    if not os.access(path, os.X_OK):
        raise TunnelError(f"The ngrok agent at {path} is not executable.", f"Run: chmod +x {path}")


def _install(path: Path) -> None:
    from pyngrok import installer
    from pyngrok.exception import PyngrokError

    try:
        with contextlib.redirect_stdout(sys.stderr):  # pyngrok writes download progress to stdout
            installer.install_ngrok(str(path))
    except (PyngrokError, OSError) as error:
        raise TunnelError(
            f"Could not download the ngrok agent: {error}", SettingText("Install it by hand and pass ", Named("ngrok_path"), ".")
        ) from None


def _explain(error: Exception, path: Path, token: str | None) -> TunnelError:
    """A PyngrokError or OSError as a message a person can act on (the authtoken never appears)."""
    from pyngrok.exception import PyngrokNgrokError, PyngrokNgrokHTTPError

    text = str(error)
    if isinstance(error, PyngrokNgrokHTTPError):
        text = f"{text} {error.body}"
    detail = getattr(error, "ngrok_error", None) or text
    code_match = _CODE.search(f"{getattr(error, 'ngrok_error_code', '') or ''} {detail} {text}")
    code = code_match.group(0) if code_match else None
    first_line = " ".join(str(detail).split("\n")[0].split())
    if token:
        first_line = first_line.replace(token, "[redacted]")
    if code in _HINTS:
        what, hint = _HINTS[code]
        return TunnelError(f"ngrok could not open the tunnel: {what} ({code}).", hint, code)
    if isinstance(error, PermissionError):
        return TunnelError(f"The ngrok agent at {path} cannot be run: permission denied.", f"Run: chmod +x {path}")
    if isinstance(error, OSError):
        return TunnelError(
            f"The ngrok agent at {path} cannot be run: {error.strerror or error}.",
            SettingText("Check ", Named("ngrok_path"), "."),
        )
    if "unable to start" in text:
        return TunnelError(
            f"The ngrok agent at {path} exited at once without saying why.",
            f"Run `{path} version` to check it is the ngrok v3 agent.",
        )
    if any(
        word in first_line.lower() for word in ("no records", "dial tcp", "network", "lookup", "connection refused", "timeout")
    ):
        return TunnelError(
            f"ngrok's cloud is unreachable: {first_line}.", "Check your internet connection, proxy or firewall.", code
        )
    suffix = f" ({code})" if code and code not in first_line else ""
    hint = f"See https://ngrok.com/docs/errors/{code.lower().replace('_', '-')}" if code else "Run the agent by hand to see more."
    if isinstance(error, PyngrokNgrokError) or code:
        return TunnelError(f"ngrok could not open the tunnel: {first_line}{suffix}.", hint, code)
    return TunnelError(f"ngrok failed: {first_line}.", hint, code)
