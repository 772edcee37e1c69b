"""Several serving processes on one port, each with a listening socket of its own (``SO_REUSEPORT``).

uvicorn's own ``--workers`` binds one socket in the parent and hands it to
every worker: the workers then take connections from one queue, and the
worker whose event loop wakes first accepts every connection waiting there
at once. Keep-alive clients stay on the worker that accepted them, so a
burst of connections (16 editors starting together, a load balancer opening
its pool) lands mostly on one worker: measured with 2 workers and 16
clients, 15 connections on one and 1 on the other, which then served 96 of
~500 edits/s while the first one queued for its interpreter lock.

Here each worker binds its own socket to the address with ``SO_REUSEPORT``
and the kernel spreads new connections over the workers' sockets by a hash
of each connection's addresses. The parent binds nothing that listens: it
checks first that no socket at all holds the address (so that a second
server started on the same port fails, as it would without the option,
instead of sharing the connections), starts the workers, starts another
when one dies (connections still waiting in a dead worker's queue are
reset: the kernel does not move them), and on SIGINT or SIGTERM stops them
all (each finishes its requests, as a single process does). A worker that
cannot start at first (a bad setting, the store unreachable) stops them all
and ``serve`` fails, as a single process would; once one has served, a
replacement that cannot start is tried again (after 1, 2, 4 ... at most 30
s) while the others serve on. ``SO_REUSEPORT`` lets only processes of the
same user share the port.

The signals of uvicorn's supervisor keep their meaning: SIGHUP restarts the
workers one at a time (a new one started and serving before the old one is
stopped, so the port never goes unanswered: new code or settings without a
pause), SIGTTIN adds a worker, SIGTTOU stops one (never the last). Without
them, SIGHUP (a terminal's hangup, a ``reload`` unit, a log rotation) ended
the parent at once and left its workers serving on, orphaned, so that the
next ``fedsync serve`` found the port taken; for the same reason a worker
whose parent is killed (SIGKILL, the OOM killer) stops by itself. A new
worker that cannot start during a restart is stopped and the old ones keep
serving.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from typing import Any

log = logging.getLogger("uvicorn.error")

CHECK_EVERY = 0.5  # seconds between the parent's looks at its workers
STOP_WAIT = 30.0  # seconds a worker gets to finish its requests after SIGTERM
START_WAIT = 60.0  # seconds a new worker of a restart gets to start serving (open the node, listen)
RETRY_LONGEST = 30.0  # seconds between tries at most, for a worker that keeps failing to start beside others


def bound_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A TCP socket bound to (host, port); with ``reuse_port``, one of a group that shares it (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def _worker(options: dict[str, Any], ready: Any) -> None:  # in the worker process (spawned)
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:  # the app's startup done: serving
                ready.set()

    config = uvicorn.Config(**options)  # (which sets up uvicorn's logging)
    threading.Thread(target=_stop_when_orphaned, args=(os.getppid(),), name="parent-watch", daemon=True).start()
    try:
        sock = bound_socket(options["host"], options["port"], reuse_port=True)
        sock.listen(2048)
    except OSError as error:
        log.error("worker %d cannot listen on %s:%s: %s", os.getpid(), options["host"], options["port"], error)
        raise SystemExit(STARTUP_FAILURE) from error
    Server(config).run(sockets=[sock])


def _stop_when_orphaned(parent: int) -> None:
    """A worker whose parent is gone (SIGKILL, the OOM killer) stops as on SIGTERM, finishing its requests,
    instead of serving on, unsupervised, on a port the next ``serve`` then finds taken."""
    while os.getppid() == parent:  # a daemon thread: ends with the process
        time.sleep(CHECK_EVERY)
    log.warning("serving process %d: its parent %d is gone; stopping", os.getpid(), parent)
    os.kill(os.getpid(), signal.SIGTERM)


class _Supervisor:
    """The parent of the workers: starts them, replaces one that dies, and acts on the signals."""

    def __init__(self, options: dict[str, Any], workers: int) -> None:
        self.options = options
        self.workers = workers  # at the start; SIGTTIN and SIGTTOU change ``len(processes)``
        self.spawn = multiprocessing.get_context("spawn")
        self.processes: list[Any] = []  # each with ``ready``, set once it serves
        self.retiring: list[Any] = []  # sent SIGTERM, finishing their requests: reaped, not replaced
        self.served = False  # some worker has served: one that cannot start then no longer stops them all
        self.failures: dict[int, int] = {}  # by place in ``processes``: starts failed in a row
        self.retry_at: dict[int, float] = {}  # by place: when to try starting a worker there again
        self.wake = threading.Event()
        self.stopping = self.failed = False
        self.requests: list[int] = []  # signals received, in order (SIGHUP, SIGTTIN, SIGTTOU)

    def signal(self, signum: int, _frame: Any = None) -> None:
        if signum in (signal.SIGINT, signal.SIGTERM):
            self.stopping = True
        else:
            self.requests.append(signum)
        self.wake.set()

    def started(self) -> Any:
        ready = self.spawn.Event()
        process = self.spawn.Process(target=_worker, args=(self.options, ready), daemon=False)
        process.start()
        process.ready = ready
        return process

    def run(self) -> None:
        self.processes.extend(self.started() for _ in range(self.workers))
        log.info("started %d serving processes, each listening on %s:%s", self.workers, self.options["host"],
                 self.options["port"])
        while not self.stopping:  # until SIGINT or SIGTERM (or a worker that cannot start)
            self.wake.wait(CHECK_EVERY)
            self.wake.clear()
            while self.requests and not self.stopping:
                signum = self.requests.pop(0)
                if signum == signal.SIGHUP:
                    self.restart()
                elif signum == signal.SIGTTIN:
                    self.processes.append(self.started())
                    log.info("SIGTTIN: %d serving processes", len(self.processes))
                elif len(self.processes) > 1:  # SIGTTOU
                    self.retire(self.processes.pop())
                    self.failures.pop(len(self.processes), None)
                    self.retry_at.pop(len(self.processes), None)
                    log.info("SIGTTOU: %d serving processes", len(self.processes))
            self.reap()

    def reap(self) -> None:
        for process in [process for process in self.retiring if not process.is_alive()]:
            process.join()
            self.retiring.remove(process)
        for i, process in enumerate(self.processes):
            if process.ready.is_set():  # serving (a restart may have filled a place waiting for a retry)
                self.served = True
                self.failures.pop(i, None)
                self.retry_at.pop(i, None)
            if process.is_alive():
                continue
            process.join()
            if process.ready.is_set():
                log.warning("serving process %d ended (exit code %s); starting another", process.pid,
                            process.exitcode)
                self.processes[i] = self.started()
            elif not self.served:  # at the start (a bad setting, the store unreachable): say so, as one process
                log.error("serving process %d could not start (exit code %s); stopping the others", process.pid,
                          process.exitcode)
                self.failed = self.stopping = True
                return
            elif i not in self.retry_at:  # the others serve on; this one is tried again, less and less often
                self.failures[i] = self.failures.get(i, 0) + 1
                delay = min(RETRY_LONGEST, 2.0 ** (self.failures[i] - 1))
                self.retry_at[i] = time.monotonic() + delay
                log.error("serving process %d could not start (exit code %s); trying again in %.0f s", process.pid,
                          process.exitcode, delay)
            elif time.monotonic() >= self.retry_at[i]:
                del self.retry_at[i]
                self.processes[i] = self.started()

    def restart(self) -> None:
        """One worker after another: its successor serving first, then it stops (finishing its requests)."""
        log.info("SIGHUP: restarting %d serving processes, one at a time", len(self.processes))
        for i, old in enumerate(list(self.processes)):
            new = self.started()
            deadline = time.monotonic() + START_WAIT
            while not new.ready.wait(0.1) and new.is_alive() and not self.stopping \
                    and time.monotonic() < deadline:  # bounded
                pass
            if not new.ready.is_set():  # stopping meanwhile, or it could not start
                if not self.stopping:
                    log.error("the restart's new serving process %d did not start (exit code %s); the others "
                              "keep serving", new.pid, new.exitcode)
                self.retire(new)
                return
            self.processes[i] = new
            self.retire(old)
        log.info("restarted %d serving processes", len(self.processes))

    def retire(self, process: Any) -> None:
        if process.is_alive():
            os.kill(process.pid, signal.SIGTERM)
        self.retiring.append(process)

    def stop(self) -> None:
        for process in self.processes + self.retiring:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        for process in self.processes + self.retiring:
            process.join(STOP_WAIT)
            if process.is_alive():
                process.kill()
                process.join()


def serve(options: dict[str, Any], workers: int) -> int:
    """Run ``workers`` serving processes until SIGINT or SIGTERM; the exit code (1 if a worker could not start).
    ``options`` are each worker's ``uvicorn.Config`` (``app`` an import string, ``host`` and ``port`` included).
    SIGHUP restarts them one at a time, SIGTTIN adds one, SIGTTOU stops one (see the module)."""
    # The address must be free of any socket, SO_REUSEPORT or not: else another server (another node's
    # workers, too) would silently share its connections with ours. OSError here: the caller says why.
    bound_socket(options["host"], options["port"], reuse_port=False).close()
    supervisor = _Supervisor(options, workers)
    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU)
    previous = {sig: signal.signal(sig, supervisor.signal) for sig in handled}
    try:
        supervisor.run()
    finally:
        supervisor.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if supervisor.failed else 0
