"""Local node processes on 127.0.0.1: for `fedsync demo`, end-to-end tests and benchmarks.

``NodeProcess`` runs ``fedsync serve`` (uvicorn) in a child process with its
own data dir, database and a free port picked at run time; ``admin`` is an
in-test handle on the same store for setup and assertions (peering, tokens,
reading projections) that opens the node's store directly, as the CLI does.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import psycopg
from psycopg.rows import dict_row

from infrastructure.node import Node, init_node
from infrastructure.settings import Settings


class Launched(Protocol):
    """A started node process, as ``subprocess.Popen`` is one."""

    pid: int

    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def send_signal(self, sig: int) -> None: ...
    def kill(self) -> None: ...


Launcher = Callable[[list[str], dict[str, str], Path], Launched]


def popen(argv: list[str], env: dict[str, str], log_path: Path) -> Launched:
    """``python -m api <argv>`` in a fresh interpreter, its output appended to ``log_path``."""
    with open(log_path, "ab") as log:  # the child holds its own copy
        return subprocess.Popen([sys.executable, "-m", "api", *argv], env=env, stdout=log, stderr=subprocess.STDOUT)


_launch: Launcher = popen


def use_launcher(launcher: Launcher) -> None:
    """Start node processes with ``launcher`` from now on (the tests fork them from a warmed-up process)."""
    global _launch
    _launch = launcher


_PORTS_GIVEN: set[int] = set()
_PORTS_LOW = 10000  # below the kernel's ephemeral range, so outgoing connections never take a port we picked


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port free on 127.0.0.1 now, never handed out twice in this process.

    Picked at random below the ephemeral range: between picking and the node's bind (seconds: init and
    start-up), an outgoing connection cannot take it, and parallel test workers rarely pick the same one.
    """
    rng = random.SystemRandom()
    high = _ephemeral_low()
    for _ in range(200):  # bounded: almost always the first pick
        port = rng.randrange(_PORTS_LOW, high) if high > _PORTS_LOW + 1000 else 0
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN:
            _PORTS_GIVEN.add(port)
            return port
    raise RuntimeError("no free port on 127.0.0.1")


@dataclass
class NodeProcess:
    data_dir: Path
    database_url: str | None = None
    host: str | None = None  # names the node urn:domain:<host>; default 127.0.0.1:<port>
    port: int = field(default_factory=free_port)
    pull_interval: float = 3600.0
    env: dict[str, str] = field(default_factory=dict)
    process: Launched | None = None
    log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def name(self) -> str:
        return f"urn:domain:{self.host or f'127.0.0.1:{self.port}'}"

    @property
    def settings(self) -> Settings:
        return Settings(data_dir=self.data_dir, database_url=self.database_url,
                        search_language=self.env.get("FEDSYNC_SEARCH_LANGUAGE"),
                        blob_store=self.env.get("FEDSYNC_BLOB_STORE", "file"),
                        s3_endpoint_url=self.env.get("FEDSYNC_S3_ENDPOINT_URL"))

    def init(self) -> NodeProcess:
        init_node(self.settings, self.base_url, host=self.host)
        return self

    def start(self, timeout: float = 30.0) -> NodeProcess:
        env = dict(os.environ, FEDSYNC_DATA_DIR=str(self.data_dir), FEDSYNC_HOST="127.0.0.1",
                   FEDSYNC_PORT=str(self.port), FEDSYNC_PULL_INTERVAL=str(self.pull_interval), **self.env)
        if self.database_url:
            env["FEDSYNC_DATABASE_URL"] = self.database_url
        self.log_path = self.data_dir / "serve.log"
        self.process = _launch(["serve"], env, self.log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # bounded readiness wait
            if self.process.poll() is not None:
                raise RuntimeError(f"fedsync serve exited: {self.log()}")
            try:
                answer = httpx.get(f"{self.base_url}/.well-known/fedsync", timeout=1.0)
                if answer.status_code == 200:
                    answered = answer.json().get("name")
                    if answered != self.name:  # another process holds our port
                        self.stop()
                        raise RuntimeError(f"port {self.port} answers as {answered}, not {self.name}")
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"fedsync serve did not answer within {timeout} s: {self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text()[-3000:] if self.log_path and self.log_path.exists() else ""

    def admin(self) -> Node:
        """The node's store, opened in the test process (close it after use)."""
        return Node.open(self.settings)

    def token(self, name: str, **kwargs: Any) -> str:
        """An editor token for ``name`` on this node, issued and recorded as ``fedsync token create`` does."""
        node = self.admin()
        try:
            return node.tokens.issue(name, **kwargs)
        finally:
            node.close()

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Read the node's store with a plain connection (cheap enough to poll)."""
        if self.database_url:
            with psycopg.connect(self.database_url, row_factory=dict_row) as conn:
                return conn.execute(sql.replace("?", "%s"), params).fetchall()
        conn = sqlite3.connect(self.settings.sqlite_path, timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in conn.execute(sql, params).fetchall()]
        finally:
            conn.close()
