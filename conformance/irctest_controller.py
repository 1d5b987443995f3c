"""irctest server controller for chatter.

irctest (https://github.com/progval/irctest) loads a server controller by
module path; with the repository root on PYTHONPATH this one is

    python -m pytest --controller conformance.irctest_controller ...

(`conformance/run.sh` does all of it.) Each test case gets its own chatter
process, started as

    target/release/chatter serve --listen 127.0.0.1:PORT
        --server-name My.Little.Server --model MODEL [--workers 2]
        [--ws-listen 127.0.0.1:WSPORT] [--password PASS] [--no-flood-control]

(``--ws-listen`` for the tests of IRC over WebSocket, which ask for it.)

Environment:

- ``CHATTER_BIN``: the chatter binary (default: ``target/release/chatter``
  under the repository root, found from this file's own location).
- ``CHATTER_MODEL``: ``iterative``, ``prethread`` (the default) or
  ``prefork``; the pool models run with ``--workers 2``.
- ``CHATTER_WORKERS``: pool size for the pool models (default 2).
- ``CHATTER_FLOOD_CONTROL``: ``0`` runs chatter with
  ``--no-flood-control``. By default flood control stays on, as on a real
  server: the busiest irctest client in the selection sends 15 lines in a
  test, under the burst of 20, and the results are the same either way
  (docs/CONFORMANCE.md).
- ``CHATTER_PID_DIR``: if set, a file named after each running chatter's
  PID is kept there while it runs, so `conformance/run.sh` can stop what
  it started even if pytest itself is killed.
- ``IRCTEST_DEBUG_LOGS=1`` (irctest's own): chatter's stderr is copied to
  the test output.

chatter listens on 127.0.0.1 only: irctest's own port helper binds the
wildcard address and hands out ``0.0.0.0`` as the host, so this controller
picks its ports on 127.0.0.1 and the test clients connect there.

What chatter does not have is refused with ``NotImplementedByController``,
which irctest reports as a skip: services (accounts, SASL). And TLS: no
server test asks for it (irctest's TLS tests are of clients), and chatter's
own tests run every behaviour test over TLS.
The operator the tests log in as (``OPER operuser operpassword``) is written
into a ``--config`` file for every server, with the password's hash made by
``chatter passwd``, as a deployment would have it.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path
import shutil
import socket
import subprocess
from typing import Dict, Optional, Set, Tuple, Type

from irctest import patma
from irctest.basecontrollers import BaseServerController, DirectoryBasedController
from irctest.runner import NotImplementedByController
from irctest.specifications import OptionalBehaviors

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BIN = REPO_ROOT / "target" / "release" / "chatter"
MODELS = ("iterative", "prethread", "prefork")

# The name irctest's tests expect as the source of server messages
# (server_tests/connection_registration.py, time.py, who.py).
SERVER_NAME = "My.Little.Server"
LISTEN_HOST = "127.0.0.1"


def chatter_bin() -> Path:
    return Path(os.environ.get("CHATTER_BIN") or DEFAULT_BIN)


def chatter_model() -> str:
    model = os.environ.get("CHATTER_MODEL") or "prethread"
    if model not in MODELS:
        raise ValueError(f"CHATTER_MODEL={model!r}: expected one of {MODELS}")
    return model


# Every chatter this process started and has not seen stopped, by PID.
# irctest makes a controller per test and stops its server in tearDown,
# which unittest skips when setUp raises (e.g. a capability check that
# skips the test after the server started): such servers are stopped here,
# before the next one starts and when pytest exits.
_running: Dict[int, "ChatterController"] = {}


def _stop_leftovers(keep: Optional["ChatterController"] = None) -> None:
    for pid, controller in list(_running.items()):
        if controller is not keep and controller.proc is not None:
            controller.kill_proc()
        _running.pop(pid, None)


atexit.register(_stop_leftovers)


def _free_loopback_port() -> Tuple[str, int]:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((LISTEN_HOST, 0))
        return s.getsockname()
    finally:
        s.close()


_OPERATOR_HASH: Optional[str] = None


def _operator_hash(binary: Path) -> str:
    """The hash of irctest's operator password, made once by `chatter passwd`."""
    global _OPERATOR_HASH
    if _OPERATOR_HASH is None:
        done = subprocess.run(
            [str(binary), "passwd"], input="operpassword\n", capture_output=True, text=True, check=True
        )
        _OPERATOR_HASH = done.stdout.strip()
    return _OPERATOR_HASH


class ChatterController(BaseServerController, DirectoryBasedController):
    software_name = "chatter"
    supported_sasl_mechanisms: Set[str] = set()
    supports_sts = False
    # What README says chatter's 005 holds, for irctest's isupport
    # testValues (a value of None: the token has no value).
    isupport = {
        "AWAYLEN": "200",
        "BOT": "B",
        "CASEMAPPING": "rfc1459",
        "CHANLIMIT": "#:50",
        "CHANMODES": patma.StrRe("beI,k,l,.*"),
        "CHANNELLEN": "50",
        "CHANTYPES": "#",
        "ELIST": "CMNTU",
        "EXCEPTS": "e",
        "INVEX": "I",
        "KEYLEN": "23",
        "MAXTARGETS": "20",
        "MODES": "6",
        "MONITOR": "100",
        "NAMELEN": "100",
        "NICKLEN": "30",
        "PREFIX": "(ov)@+",
        "SAFELIST": None,
        "STATUSMSG": "@+",
        "TARGMAX": patma.StrRe(".*KICK:4.*"),
        "TOPICLEN": "390",
        "USERLEN": "10",
        "UTF8ONLY": None,
        "WHOX": None,
    }
    # The optional behaviours chatter has, so irctest runs their tests: an
    # INVITE lets its invitee past +l; channel mode +C refuses CTCP but ACTION.
    optional_behaviors = frozenset(
        {OptionalBehaviors.INVITE_OVERRIDES_LIMIT, OptionalBehaviors.NO_CTCP}
    )
    _pid_file: Optional[Path] = None

    def get_hostname_and_port(self) -> Tuple[str, int]:
        """Like irctest's, but on 127.0.0.1 instead of the wildcard address,
        still recorded in irctest's shared list of used ports."""
        with self._used_ports() as used_ports:
            while True:
                hostname, port = _free_loopback_port()
                if (hostname, port) not in used_ports:
                    break
            used_ports.add((hostname, port))
            self._own_ports.add((hostname, port))
        return (hostname, port)

    def run(
        self,
        hostname: str,
        port: int,
        *,
        password: Optional[str],
        ssl: bool,
        run_services: bool,
        faketime: Optional[str],
        websocket_hostname: Optional[str],
        websocket_port: Optional[int],
    ) -> None:
        if websocket_hostname is not None and websocket_hostname != LISTEN_HOST:
            raise ValueError(f"chatter listens on {LISTEN_HOST} only, not {websocket_hostname}")
        if ssl:
            raise NotImplementedByController("TLS")
        if run_services:
            raise NotImplementedByController("services")
        if hostname != LISTEN_HOST:
            raise ValueError(f"chatter listens on {LISTEN_HOST} only, not {hostname}")
        assert self.proc is None
        self.port = port
        self.hostname = hostname
        self.create_config()  # a scratch directory, removed by kill()

        binary = chatter_bin()
        if not os.access(binary, os.X_OK):
            raise FileNotFoundError(
                f"{binary} not found or not executable: run `cargo build --release` "
                "or set CHATTER_BIN"
            )
        model = chatter_model()
        args = [
            str(binary),
            "serve",
            "--listen",
            f"{hostname}:{port}",
            "--server-name",
            SERVER_NAME,
            # What irctest's own controllers configure as the server's
            # info line (LINKS checks it).
            "--server-description",
            "test server",
            "--model",
            model,
        ]
        if model != "iterative":
            args += ["--workers", os.environ.get("CHATTER_WORKERS") or "2"]
        if websocket_port is not None:
            args += ["--ws-listen", f"{websocket_hostname}:{websocket_port}"]
            # irctest's websocket tests send a line on one connection and
            # at once PING on another, then expect the line before the
            # PONG. No server orders two connections' lines; in the pools
            # the PING wins almost every race (the line crosses to the
            # recipient's worker through a queue and a wake-up), and under
            # iterative it wins most races for a web sender (measured in
            # docs/CONFORMANCE.md). irctest's knob for this, as its
            # controllers for Bahamut and Sable use it: a pause before each
            # synchronizing PING, here only for these tests.
            self.sync_sleep_time = 0.1
        else:
            self.sync_sleep_time = 0.0
        if password is not None:
            args += ["--password", password]
        if os.environ.get("CHATTER_FLOOD_CONTROL", "1") in ("0", "false", "no"):
            args.append("--no-flood-control")
        # The operator irctest's tests log in as (OPER operuser operpassword),
        # in a config file as a deployment has it: the password's hash.
        assert self.directory
        config = self.directory / "chatter.toml"
        config.write_text(
            "[[operators]]\n"
            'name = "operuser"\n'
            f'password_hash = "{_operator_hash(binary)}"\n'
        )
        args += ["--config", str(config)]

        # Same as irctest's ngIRCd controller: use faketime when it is
        # installed, and say so; the tests check faketime_enabled.
        if faketime and shutil.which("faketime"):
            faketime_cmd = ["faketime", "-f", faketime]
            self.faketime_enabled = True
        else:
            faketime_cmd = []

        env = dict(os.environ)
        env.pop("CHATTER_PASSWORD", None)  # only the test's password counts
        env.setdefault("RUST_LOG", "info")

        # execute() starts it in its own session and process group; kill()
        # (irctest's) sends SIGTERM to that group, which chatter answers by
        # closing every connection and exiting 0 (prefork's workers are in
        # the group too), and SIGKILL after 5 seconds.
        _stop_leftovers(keep=self)
        self.proc = self.execute([*faketime_cmd, *args], proc_name="chatter", env=env)
        _running[self.proc.pid] = self
        pid_dir = os.environ.get("CHATTER_PID_DIR")
        if pid_dir:
            self._pid_file = Path(pid_dir) / str(self.proc.pid)
            self._pid_file.write_text(" ".join(args) + "\n")

    def _forget_pid(self) -> None:
        if self._pid_file is not None:
            self._pid_file.unlink(missing_ok=True)
            self._pid_file = None

    def kill_proc(self) -> None:
        assert self.proc
        _running.pop(self.proc.pid, None)
        super().kill_proc()
        self._forget_pid()

    def terminate(self) -> None:
        assert self.proc
        _running.pop(self.proc.pid, None)
        super().terminate()
        self._forget_pid()


def get_irctest_controller_class() -> Type[ChatterController]:
    return ChatterController
