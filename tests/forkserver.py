"""A fork server for the tests' node processes: ``fedsync serve`` forked from a process that imported it once.

A node process started as ``python -m api serve`` spends most of its start importing (FastAPI, pydantic,
psycopg, the node's own modules): about a second on a quiet 2-core machine, three under a parallel test run,
and the suite starts a few hundred. The fork server is a plain Python process (``python -m tests.forkserver``,
one per test worker) that imports all of that once and then, for each node, forks a child that runs exactly
what ``python -m api serve`` runs, with the node's own environment, working directory and log file. The
children are real, separate ``fedsync serve`` processes: their own pid, sockets, store connections and
signals; the tests stop and kill them by pid as before.

The server forks from its one thread, before any connection, loop or thread exists, so a child starts clean;
``random`` reseeds itself in a forked child, and keys and gids come from the OS. It also reaps the children
and keeps their exit codes for ``poll``. Protocol: one JSON request per line on its stdin (``start``,
``poll``), one JSON answer per line on its stdout.

``FEDSYNC_TEST_FORK=0`` starts every node as a fresh interpreter instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class ForkedProcess:
    """A forked node process, handled like ``subprocess.Popen`` as far as ``NodeProcess`` uses one."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self.server = server
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.call({"op": "poll", "pid": self.pid})["returncode"]
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:  # bounded by the deadline (a node stops within seconds of a signal)
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(["fedsync", "serve"], timeout or 0)
            time.sleep(0.02)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(9)


class ForkServer:
    """The client side, in a test process: starts the server on first use, one request at a time."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def __call__(self, argv: list[str], env: dict[str, str], log_path: Path) -> ForkedProcess:
        answer = self.call({"op": "start", "argv": argv, "env": env, "log": str(log_path), "cwd": os.getcwd()})
        return ForkedProcess(self, answer["pid"])

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = subprocess.Popen([sys.executable, "-m", "tests.forkserver"], cwd=ROOT,
                                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            assert self._process.stdin is not None and self._process.stdout is not None
            self._process.stdin.write(json.dumps(request).encode() + b"\n")
            self._process.stdin.flush()
            line = self._process.stdout.readline()
        if not line:
            raise RuntimeError("the fork server exited (its stderr is in the test output)")
        return json.loads(line)

    def run(self, argv: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
        """``python -m api <argv>`` to its end, as ``subprocess.run(..., capture_output=True, text=True)``."""
        with tempfile.TemporaryDirectory(prefix="fedsync-cli-") as where:
            out, err = Path(where, "stdout"), Path(where, "stderr")
            answer = self.call({"op": "start", "argv": argv, "env": env, "log": str(out), "errors": str(err),
                                "cwd": os.getcwd()})
            child = ForkedProcess(self, answer["pid"])
            try:
                code = child.wait(timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(10)
                raise
            return subprocess.CompletedProcess(["fedsync", *argv], code, out.read_text(), err.read_text())

    def close(self) -> None:
        with self._lock:
            if self._process is not None:
                assert self._process.stdin is not None
                self._process.stdin.close()  # the server ends at the end of its input
                self._process.wait(timeout=10)
                self._process = None


_active: list[ForkServer] = []  # the session's server, while the tests fork (tests/conftest.py)


def activate(server: ForkServer | None) -> None:
    _active[:] = [server] if server else []


def fedsync(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The CLI (``python -m api <args>``) in a child process to its end, output captured as text: forked from
    the session's fork server when there is one, else a fresh interpreter."""
    environment = dict(os.environ if env is None else env)
    if _active:
        return _active[0].run(list(args), environment, timeout)
    return subprocess.run([sys.executable, "-m", "api", *args], env=environment, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _returncode(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _child(request: dict[str, Any]) -> None:
    """In the forked child: become ``python -m api <argv>`` with the request's environment; never returns."""
    code = 1
    try:
        for fd, path in ((1, request["log"]), (2, request.get("errors", request["log"]))):
            opened = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.dup2(opened, fd)
            os.close(opened)
        nothing = os.open(os.devnull, os.O_RDONLY)
        os.dup2(nothing, 0)  # not the server's requests
        os.close(nothing)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = [f"{sys.executable} -m api", *request["argv"]]
        from api.cli import main

        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve() -> None:
    """The server: import what a node runs, then answer requests until the input ends."""
    import uvicorn  # noqa: F401

    import api.app  # noqa: F401 - imported once, here, for every child
    import api.cli  # noqa: F401

    exited: dict[int, int] = {}
    answers = sys.stdout.buffer
    for line in sys.stdin.buffer:
        request = json.loads(line)
        while True:  # reap every child that ended (bounded: each is reaped once)
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if not pid:
                break
            exited[pid] = _returncode(status)
        if request["op"] == "start":
            pid = os.fork()
            if pid == 0:
                _child(request)
            answer: dict[str, Any] = {"pid": pid}
        else:
            answer = {"returncode": exited.get(request["pid"])}
        answers.write(json.dumps(answer).encode() + b"\n")
        answers.flush()


if __name__ == "__main__":
    serve()
