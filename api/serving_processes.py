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
cannot start stops them all, as uvicorn's supervisor did. ``SO_REUSEPORT``
lets only processes of the same user share the port.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import threading
from typing import Any

log = logging.getLogger("uvicorn.error")

CHECK_EVERY = 0.5  # seconds between the parent's looks at its workers
STOP_WAIT = 30.0  # seconds a worker gets to finish its requests after SIGTERM


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


def _worker(options: dict[str, Any]) -> None:  # in the worker process (spawned)
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    config = uvicorn.Config(**options)  # (which sets up uvicorn's logging)
    try:
        sock = bound_socket(options["host"], options["port"], reuse_port=True)
        sock.listen(2048)
    except OSError as error:
        log.error("worker %d cannot listen on %s:%s: %s", os.getpid(), options["host"], options["port"], error)
        raise SystemExit(STARTUP_FAILURE) from error
    uvicorn.Server(config).run(sockets=[sock])


def serve(options: dict[str, Any], workers: int) -> int:
    """Run ``workers`` serving processes until SIGINT or SIGTERM; the exit code (1 if a worker could not start).
    ``options`` are each worker's ``uvicorn.Config`` (``app`` an import string, ``host`` and ``port`` included)."""
    # The address must be free of any socket, SO_REUSEPORT or not: else another server (another node's
    # workers, too) would silently share its connections with ours. OSError here: the caller says why.
    from uvicorn.config import STARTUP_FAILURE  # the exit code of a worker that could not start

    bound_socket(options["host"], options["port"], reuse_port=False).close()
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    spawn = multiprocessing.get_context("spawn")

    def started() -> Any:
        process = spawn.Process(target=_worker, args=(options,), daemon=False)
        process.start()
        return process

    processes: list[Any] = []
    failed = False
    try:
        processes.extend(started() for _ in range(workers))
        log.info("started %d serving processes, each listening on %s:%s", workers, options["host"], options["port"])
        while not stop.wait(CHECK_EVERY):
            for i, process in enumerate(processes):
                if process.is_alive():
                    continue
                process.join()
                if process.exitcode == STARTUP_FAILURE:
                    log.error("serving process %d could not start; stopping the others", process.pid)
                    failed = True
                    stop.set()
                    break
                log.warning("serving process %d ended (exit code %s); starting another", process.pid,
                            process.exitcode)
                processes[i] = started()
    finally:
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        for process in processes:
            process.join(STOP_WAIT)
            if process.is_alive():
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 1 if failed else 0
