"""``postflow`` command line: one parser, each command a small function, imports kept lazy.

Lazy imports keep ``postflow sandbox`` and ``postflow --version`` fast and keep Qt out of every
command that does not show a window.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

from app import __version__
from app.core.errors import ConfigError, PostFlowError

T = TypeVar("T")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_RUNNING = 3  # pause/resume/retry/cancel need the running app
EXIT_CONFIG = 78  # sysexits EX_CONFIG
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `… | head -1` with other tools


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number: use 0 to 65535 (0 picks a free port)")
    return port


def _host(text: str) -> str:
    """What ``bind()`` would refuse with a TypeError or UnicodeError instead of an OSError."""
    try:
        if "\0" in text:
            raise UnicodeError("contains a NUL character")
        text.encode("idna")
    except UnicodeError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a host name or IP address") from None
    return text


def _non_negative(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: expected a finite number ≥ 0")
    return number


def _whole_number(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid: expected a whole number ≥ 1")
    return number


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (override the config file and environment)")
    # SUPPRESS: a flag given before the command is not reset by the command's own parser.
    quiet = argparse.SUPPRESS
    group.add_argument("--sandbox", action="store_const", const=True, default=quiet,
                       help="use the built-in sandbox instead of Frame.io and Adobe")  # fmt: skip
    group.add_argument("--api-url", dest="api_url", default=quiet, help="Frame.io API base URL")
    group.add_argument("--ims-url", dest="ims_url", default=quiet, help="Adobe IMS base URL")
    group.add_argument("--client-id", dest="client_id", default=quiet, help="Adobe client id")
    group.add_argument("--log-level", dest="log_level", default=quiet, help="DEBUG, INFO, WARNING or ERROR")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="postflow",
        description="PostFlow delivers finished media files from watched folders to Frame.io.",
    )
    parser.add_argument("--version", action="version", version=f"PostFlow {__version__}")
    _add_settings_flags(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run the upload engine")
    run.add_argument("--headless", action="store_true", help="no tray icon, log to the console")
    run.add_argument("--watch", type=Path, action="append", help="folder to watch")
    run.add_argument("--project", help="Frame.io project name or id for --watch")
    run.add_argument("--folder", help="sub-folder path inside the project for --watch")
    _add_settings_flags(run)

    login = sub.add_parser("login", help="sign in with Adobe in your browser")
    login.add_argument("--no-browser", action="store_true", help="print the URL instead of opening it")
    _add_settings_flags(login)

    logout = sub.add_parser("logout", help="sign out: revoke tokens and remove them from the keychain")
    _add_settings_flags(logout)

    status = sub.add_parser("status", help="show the upload queue (from the running app, or the saved queue)")
    status.add_argument("--json", action="store_true", help="machine-readable output (docs/automation.md)")
    _add_settings_flags(status)

    for name, words in (("pause", "pause every upload (remembered across restarts)"),
                        ("resume", "resume uploads")):  # fmt: skip
        _add_settings_flags(sub.add_parser(name, help=f"{words} in the running app"))
    retry = sub.add_parser("retry", help="upload failed files again (running app)")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every failed file")
    which.add_argument("id", nargs="?", type=_whole_number, help="a job id from `postflow status`")
    _add_settings_flags(retry)
    cancel = sub.add_parser("cancel", help="stop a file's upload and remove what it left on Frame.io")
    cancel.add_argument("id", type=_whole_number, help="a job id from `postflow status`")
    _add_settings_flags(cancel)

    move = sub.add_parser(
        "move-folder", help="a watched folder moved (filespace mounted elsewhere): keep its history"
    )
    move.add_argument("old", help="where the watched folder was")
    move.add_argument("new", help="where the same folder is now")
    _add_settings_flags(move)

    confirm = sub.add_parser(
        "confirm-account", help="upload the waiting queue into the account signed in now"
    )
    _add_settings_flags(confirm)

    doctor = sub.add_parser(
        "doctor", help="check sign-in, folders, Frame.io, disk and clock (exit 1 if any fails)"
    )
    doctor.add_argument(
        "--bundle", type=Path, metavar="FILE", help="also write a diagnostics zip for support"
    )
    _add_settings_flags(doctor)

    proxy_login = sub.add_parser(
        "proxy-login", help="keep the proxy's user name and password in the keychain (network.proxy)"
    )
    proxy_login.add_argument("user", nargs="?", help="the proxy user name (asks for the password)")
    proxy_login.add_argument("--clear", action="store_true", help="forget the stored user name and password")
    _add_settings_flags(proxy_login)

    login_item = sub.add_parser(
        "start-at-login",
        help="start PostFlow when you log in: on, off, or status (what is really registered)",
    )
    login_item.add_argument("state", nargs="?", choices=("on", "off", "status"), default="status")

    publish = sub.add_parser(
        "publish", help="serve one file as pull mode does and print its URL (first line) until Ctrl-C"
    )
    publish.add_argument("file", type=Path, help="the file to serve")
    publish.add_argument(
        "--tunnel", action="store_true", help="through a cloudflared quick tunnel (public URL)"
    )
    publish.add_argument("--lifetime", type=_non_negative, default=3600.0,
                         help="seconds the link lives at most (default 3600)")  # fmt: skip
    _add_settings_flags(publish)

    sandbox = sub.add_parser("sandbox", help="run the local Frame.io/Adobe/Discord emulator")
    sandbox.add_argument("--host", type=_host, default="127.0.0.1", help="address to serve on")
    sandbox.add_argument("--port", type=_port, default=0, help="0 to 65535; 0 picks a free port")
    sandbox.add_argument("--state", type=Path, help="folder that keeps the sandbox's state")
    sandbox.add_argument("--token-lifetime", type=_non_negative, help="access token lifetime in seconds")
    sandbox.add_argument("--rate-limit-scale", type=_non_negative,
                         help="multiply documented rate limits (0 disables them)")  # fmt: skip
    sandbox.add_argument("--part-size", type=_whole_number, help="upload part size in bytes")
    sandbox.add_argument("--faults", help='JSON fault settings, e.g. \'{"parts": {"rate": 0.2}}\'')
    sandbox.add_argument("--seed", type=int, default=0, help="seed for injected faults")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("sandbox", "api_url", "ims_url", "client_id", "log_level")
    return {k: getattr(args, k, None) for k in keys}


def _run_async(work: Coroutine[Any, Any, T]) -> T:
    """asyncio, imported when a command needs it: the tray app's icon shows before it loads."""
    import asyncio

    return asyncio.run(work)


def _load(args: argparse.Namespace) -> Any:
    from app.core.settings import load_settings

    return load_settings(overrides=_overrides(args))


def cmd_sandbox(args: argparse.Namespace) -> int:
    import json

    from app.sandbox.config import SandboxConfig
    from app.sandbox.server import serve_forever

    config = SandboxConfig(host=args.host, port=args.port, state_dir=args.state, seed=args.seed)
    if args.token_lifetime is not None:
        config.access_token_lifetime = args.token_lifetime
    if args.rate_limit_scale is not None:
        config.rate_limit_scale = args.rate_limit_scale
    if args.part_size is not None:
        config.part_size = args.part_size
    if args.faults:
        try:
            config.initial_faults = json.loads(args.faults)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"option --faults: not valid JSON: {exc}") from None
    try:
        _run_async(serve_forever(config))
    except BrokenPipeError:
        raise  # stdout closed (`postflow sandbox | head -1`): main() ends quietly
    except OSError as exc:
        raise PostFlowError(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc}") from None
    except (OverflowError, ValueError) as exc:  # bind() refusing a host or port the parser let by
        raise ConfigError(f"cannot serve on {args.host}:{args.port}: {exc}") from None
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from app import doctor

    settings = _load(args)
    lines, checks = doctor.run(settings)
    print(doctor.render(lines, checks))
    if args.bundle:
        from app.diagnostics import write_bundle

        write_bundle(settings, args.bundle, lines, checks)
        print(f"Diagnostics written to {args.bundle} (no tokens, secrets or webhook addresses in it).")
    return EXIT_FAILURE if any(not c["ok"] for c in checks) else EXIT_OK


def cmd_start_at_login(args: argparse.Namespace) -> int:
    """The login item of this PostFlow (the installed app when frozen), read back after a change:
    for IT's deployment scripts and machines set up over SSH, as Settings → General does it."""
    from app.desktop.login_item import LoginItem

    item = LoginItem()
    if args.state != "status":
        item.set_enabled(args.state == "on")
    print(item.describe())
    if args.state == "status":
        return EXIT_OK
    done = item.points_here() if args.state == "on" else not item.enabled()  # read back, not assumed
    return EXIT_OK if done else EXIT_FAILURE


def cmd_proxy_login(args: argparse.Namespace) -> int:
    import getpass

    from app.auth.proxy_config import PROXY_KEY
    from app.auth.service import backend_for, keychain_service
    from app.auth.token_store import TokenStore

    settings = _load(args)
    store = TokenStore(keychain_service(settings), backend_for(settings))
    if args.clear:
        store.set_secret(PROXY_KEY, None)
        print("The proxy's user name and password are forgotten.")
        return EXIT_OK
    if not args.user or ":" in args.user:
        raise ConfigError("give the proxy's user name (without ':'), e.g. postflow proxy-login jane")
    password = getpass.getpass(f"Password for {args.user} on the proxy: ")
    store.set_secret(PROXY_KEY, f"{args.user}:{password}")
    where = settings.proxy_url or "(set network.proxy in config.toml to use it)"
    print(f"Kept in the keychain for the proxy {where}.")
    return EXIT_OK


def cmd_publish(args: argparse.Namespace) -> int:
    from app.pull.publish_command import publish

    settings = _load(args)
    _setup_logging(settings, console=False)
    try:
        return _run_async(publish(settings, args.file, tunnel=args.tunnel, lifetime=args.lifetime))
    except KeyboardInterrupt:
        return EXIT_OK  # Ctrl-C is how it is meant to end


def _setup_logging(settings: Any, console: bool) -> None:
    from app.core.logging_setup import setup_logging

    setup_logging(settings.log_level, settings.paths.log_file, console=console)


def cmd_login(args: argparse.Namespace) -> int:
    from app.login_command import login

    settings = _load(args)
    _setup_logging(settings, console=False)
    return _run_async(login(settings, open_browser=not args.no_browser))


def cmd_logout(args: argparse.Namespace) -> int:
    from app.login_command import logout

    settings = _load(args)
    _setup_logging(settings, console=False)
    return _run_async(logout(settings))


def cmd_run(args: argparse.Namespace) -> int:
    from app.core.roots import make_root
    from app.headless import run_headless

    settings = _load(args)
    if args.watch and not args.project:
        raise ConfigError("option --watch needs --project NAME (the Frame.io project to upload into)")
    for folder in args.watch or ():
        _check_watch_folder(folder)
    roots = tuple(make_root(str(p), args.project, args.folder or "") for p in args.watch or ())
    if not args.headless:
        return _tray(lambda: settings, roots)
    _setup_logging(settings, console=True)
    # Until the event loop installs its graceful handler, SIGTERM stops like Ctrl+C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return _run_async(run_headless(settings, roots))
    except KeyboardInterrupt:
        return EXIT_OK  # stopped on request before start-up finished


def _no_display() -> bool:
    """Linux/BSD with neither X11 nor Wayland (an SSH session, a server): Qt would abort."""
    if sys.platform in ("darwin", "win32") or os.environ.get("QT_QPA_PLATFORM"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _tray(load: Callable[[], Any], roots: tuple[Any, ...] = ()) -> int:
    if _no_display():
        print(
            "postflow: no desktop to show the tray app on (neither DISPLAY nor WAYLAND_DISPLAY is set).\n"
            "On a machine without a desktop run: postflow run --headless --watch DIR --project NAME",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from app.gui.launch import run_tray

    def settings_and_log() -> Any:
        settings = load()
        _setup_logging(settings, console=False)
        return settings

    return run_tray(settings_and_log, roots)


def cmd_tray(args: argparse.Namespace) -> int:
    """``postflow`` with no command: the tray app (the built-in sandbox when no account is set).
    Its icon shows before the settings are read; a bad config file is said in a dialog."""
    return _tray(lambda: _load(args))


def _check_watch_folder(folder: Path) -> None:
    """A --watch folder must exist now: it was just typed, so a typo is far likelier than a volume
    that is not mounted yet (folders from the config file are the engine's health problems)."""
    from app.core.roots import check_folder

    check_folder(folder, "option --watch ")


def cmd_move_folder(args: argparse.Namespace) -> int:
    from app.engine.maintenance import move_folder

    settings = _load(args)
    moved = _run_async(move_folder(settings, args.old, args.new))
    print(f"{moved} files of {args.old} now belong to {args.new}: nothing delivered is uploaded again.")
    print("Watch the new folder from now on (--watch, or path in config.toml).")
    return EXIT_OK


def cmd_confirm_account(args: argparse.Namespace) -> int:
    from app.auth.service import keychain_service
    from app.auth.token_store import TokenStore
    from app.engine.maintenance import confirm_account

    settings = _load(args)
    tokens = TokenStore(keychain_service(settings)).load()
    if tokens is None or not tokens.account_id:
        raise ConfigError("You are not signed in: run `postflow login` first.")
    _run_async(confirm_account(settings, tokens.account_id, tokens.user_email))
    print(f"The queue now uploads into account {tokens.account_id} ({tokens.user_email}).")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from app.control.client import ControlClient
    from app.control.status_document import dumps, offline_status
    from app.control.status_text import render

    settings = _load(args)
    client = ControlClient.connect(settings.paths.data_dir)
    if client is None:
        doc = offline_status(settings.paths.state_db, settings.watch_roots)
    else:
        with client:
            doc = client.get("/v1/status")
    print(dumps(doc) if args.json else render(doc))
    return EXIT_OK


def _running_app(settings: Any) -> Any:
    from app.control.client import ControlClient

    client = ControlClient.connect(settings.paths.data_dir)
    if client is None:
        raise NotRunning(
            "PostFlow is not running: start it (postflow, or postflow run --headless), then try again."
        )
    return client


class NotRunning(PostFlowError):
    title = "Not running"


def cmd_pause(args: argparse.Namespace) -> int:
    with _running_app(_load(args)) as client:
        client.post("/v1/pause")
    print("Uploads are paused (until `postflow resume`, also after a restart).")
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    with _running_app(_load(args)) as client:
        client.post("/v1/resume")
    print("Uploads resumed.")
    return EXIT_OK


def cmd_retry(args: argparse.Namespace) -> int:
    with _running_app(_load(args)) as client:
        answer = client.post("/v1/retry", {"all": True} if args.all else {"id": args.id})
    retried = answer.get("retried", [])
    print(f"{len(retried)} file(s) queued again." if args.all else f"Job {args.id} queued again.")
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    with _running_app(_load(args)) as client:
        client.post("/v1/cancel", {"id": args.id})
    print(f"Job {args.id} cancelled; what it left on Frame.io is removed.")
    return EXIT_OK


COMMANDS: dict[str | None, Callable[[argparse.Namespace], int]] = {
    "sandbox": cmd_sandbox,
    "doctor": cmd_doctor,
    "publish": cmd_publish,
    "proxy-login": cmd_proxy_login,
    "start-at-login": cmd_start_at_login,
    "run": cmd_run,
    "login": cmd_login,
    "logout": cmd_logout,
    "status": cmd_status,
    "pause": cmd_pause,
    "resume": cmd_resume,
    "retry": cmd_retry,
    "cancel": cmd_cancel,
    "move-folder": cmd_move_folder,
    "confirm-account": cmd_confirm_account,
    None: cmd_tray,
}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _main(argv)
        if sys.stdout is not None:
            sys.stdout.flush()  # a closed pipe shows here, not as a traceback at interpreter exit
    except BrokenPipeError:
        # `postflow status --json | head -1`: the reader has what it wanted. Output still buffered
        # goes nowhere, so Python's own flush at exit does not complain either.
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    return code


def _discard_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # stdout is not a real file (captured by a test): nothing is flushed to a pipe


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version or a usage error: flushed by main() like the rest
        return EXIT_OK if exc.code is None else exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"postflow: {exc.message}", file=sys.stderr)
        return EXIT_CONFIG
    except NotRunning as exc:
        print(f"postflow: {exc.message}", file=sys.stderr)
        return EXIT_NOT_RUNNING
    except PostFlowError as exc:
        print(f"postflow: {exc.title}: {exc.message}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
