"""The load generator of bench/api.py, shared by every server it measures.

A client is one keep-alive connection (plain ``http.client`` by default:
about 0.15 ms of CPU per request here; ``httpx`` about 0.5 ms) and the
items it edits. What a server calls an item and its version is the
subclass's business (``create`` and ``update``); the timing, the rounds of
edits and the figures are the same for all, so two servers measured in one
run are measured alike.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

MARKDOWN = "# Lesson plan\n\n" + "Some text of a lesson, a line of about sixty characters.\n" * 8


class Connection:
    """One keep-alive connection: ``request`` returns (status, ETag, body)."""

    def __init__(self, url: str, token: str | None, client: str) -> None:
        self.headers = {"Content-Type": "application/json"}
        if token is not None:
            self.headers["Authorization"] = f"Bearer {token}"
        if client == "httpx":
            self.http: httpx.Client | None = httpx.Client(base_url=url, headers=self.headers, timeout=30.0)
        else:
            self.http = None
            host, port = url.removeprefix("http://").split(":")
            self.plain = http.client.HTTPConnection(host, int(port), timeout=30.0)

    def request(self, method: str, path: str, body: dict, headers: dict[str, str] | None = None,
                ) -> tuple[int, str | None, bytes]:
        if self.http is not None:
            response = self.http.request(method, path, json=body, headers=headers)
            return response.status_code, response.headers.get("ETag"), response.content
        self.plain.request(method, path, body=json.dumps(body).encode(), headers={**self.headers, **(headers or {})})
        reply = self.plain.getresponse()
        return reply.status, reply.getheader("ETag"), reply.read()

    def close(self) -> None:
        if self.http is not None:
            self.http.close()
        else:
            self.plain.close()


class Editor:
    """One client: a keep-alive connection and the current version of each of its items.

    Subclasses say how an item is made (``create``: its key and first
    version) and edited (``update``: the version the edit made).
    """

    def __init__(self, connection: Connection, items: int) -> None:
        self.connection = connection
        self.heads: dict[str, str] = {}
        for i in range(items):  # bounded
            key, head = self.create(i)
            self.heads[key] = head
        self.latencies: list[float] = []

    def create(self, i: int) -> tuple[str, str]:
        raise NotImplementedError

    def update(self, key: str, head: str, markdown: str) -> str:
        raise NotImplementedError

    def edit(self, count: int) -> None:
        keys = list(self.heads)
        for n in range(count):  # bounded
            key = keys[n % len(keys)]
            started = time.perf_counter()
            head = self.update(key, self.heads[key], f"{MARKDOWN}\nedit {n}\n")
            self.latencies.append(time.perf_counter() - started)
            self.heads[key] = head

    def close(self) -> None:
        self.connection.close()


def check(ok: bool, what: str, status: int, body: bytes) -> None:
    if not ok:
        raise RuntimeError(f"{what} failed: {status} {body[:300]!r}")


@dataclass
class Result:
    """The latencies of one measurement and the wall time it took."""

    label: str
    latencies: list[float]
    elapsed: float
    cpu: float | None = None  # seconds of CPU the server's processes used meanwhile (None: not known)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000

    @property
    def cpu_per_edit(self) -> float | None:
        """The server's CPU per edit, in ms."""
        return None if self.cpu is None else self.cpu / len(self.latencies) * 1000

    def line(self) -> str:
        cpu = "" if self.cpu_per_edit is None else f"  server CPU {self.cpu_per_edit:5.2f} ms/edit"
        return (f"{self.label:<34} {len(self.latencies):>6} edits  {self.rate:>7.0f} edits/s  "
                f"p50 {self.p50:6.2f} ms  p99 {self.p99:6.2f} ms{cpu}")


MakeEditor = Callable[[int], Editor]  # items -> a new client with that many new items


@dataclass
class Server:
    """A server under measurement: how to make its editors, and its process (its CPU is measured with
    its children's: ``serve --workers``)."""

    make_editor: MakeEditor
    pid: int

    def cpu_seconds(self) -> float | None:
        """CPU used so far by the process and its live descendants (Linux's /proc; None elsewhere)."""
        try:
            stats = {}
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        with open(f"/proc/{entry}/stat") as f:
                            fields = f.read().rpartition(")")[2].split()
                    except OSError:  # ended meanwhile
                        continue
                    stats[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))  # ppid, utime + stime
        except OSError:
            return None
        tree = {self.pid}
        for _ in range(8):  # bounded: serve's supervisor and its workers are two levels
            tree |= {pid for pid, (ppid, _) in stats.items() if ppid in tree}
        total = sum(stats[pid][1] for pid in tree if pid in stats)
        return total / os.sysconf("SC_CLK_TCK")


def _cpu_since(server: Server, before: float | None) -> float | None:
    after = server.cpu_seconds()
    return None if before is None or after is None else after - before


def sequential(server: Server, edits: int, items: int) -> Result:
    """--edits edits over one keep-alive connection, round-robin over --items items."""
    editor = server.make_editor(items)
    try:
        cpu = server.cpu_seconds()
        started = time.perf_counter()
        editor.edit(edits)
        return Result(f"sequential, 1 connection, {items} items", editor.latencies, time.perf_counter() - started,
                      _cpu_since(server, cpu))
    finally:
        editor.close()


def concurrent(server: Server, edits: int, items: int, clients: int) -> Result:
    """--clients clients, each with its own connection and items, --edits edits in all."""
    editors = [server.make_editor(max(1, items // clients)) for _ in range(clients)]
    share = edits // clients
    errors: list[BaseException] = []

    def run(editor: Editor) -> None:
        try:
            editor.edit(share)
        except BaseException as e:  # reported below, after every thread ended
            errors.append(e)

    threads = [threading.Thread(target=run, args=(editor,)) for editor in editors]
    cpu = server.cpu_seconds()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu = _cpu_since(server, cpu)
    for editor in editors:
        editor.close()
    if errors:
        raise errors[0]
    return Result(f"concurrent, {clients} clients", [x for e in editors for x in e.latencies], elapsed, cpu)


def measure(sides: dict[str, Server], edits: int, items: int, clients: int, rounds: int) -> None:
    """Run ``rounds`` rounds of (sequential, concurrent) on every side and print each result, then the medians.

    Within a round each measurement runs on every side in turn, the order
    alternating (A B, B A, ...), so a burst of load from elsewhere on the
    machine, or a store growing, hits every side alike.
    """
    kinds: dict[str, Callable[[Server], Result]] = {
        "sequential": lambda make: sequential(make, edits, items),
        "concurrent": lambda make: concurrent(make, edits, items, clients),
    }
    results: dict[tuple[str, str], list[Result]] = {(kind, side): [] for kind in kinds for side in sides}
    step = 0
    for r in range(rounds):  # bounded
        for kind, run in kinds.items():
            order = list(sides) if step % 2 == 0 else list(reversed(sides))
            step += 1
            for side in order:
                result = run(sides[side])
                results[kind, side].append(result)
                print(f"round {r + 1}/{rounds}  {side:<26} {result.line()}", flush=True)
    if rounds > 1 or len(sides) > 1:
        print_medians(results, list(kinds), list(sides), rounds)


def print_medians(results: dict[tuple[str, str], list[Result]], kinds: list[str], sides: list[str],
                  rounds: int) -> None:
    """Medians over the rounds, sides side by side; with two sides, the first's edits/s and p99 over the second's."""
    def med(kind: str, side: str, figure: str) -> float:
        return statistics.median(getattr(result, figure) for result in results[kind, side])

    ratio = f"{sides[0].split()[0]}/{sides[1].split()[0]}" if len(sides) == 2 else ""
    print((f"\n{f'median of {rounds} round(s)':<23}" + "".join(f" | {side:^23}" for side in sides)
           + (f" | {ratio:^14}" if ratio else "")).rstrip())
    print(f"{'':<23}" + " | edits/s  p50 ms  p99 ms" * len(sides) + (" | edits/s    p99" if ratio else ""))
    for kind in kinds:
        row = f"{kind:<23}"
        for side in sides:
            row += f" | {med(kind, side, 'rate'):>7.0f} {med(kind, side, 'p50'):>7.2f} {med(kind, side, 'p99'):>7.2f}"
        if ratio:
            row += (f" | {med(kind, sides[0], 'rate') / med(kind, sides[1], 'rate'):>6.2f}x"
                    f" {med(kind, sides[0], 'p99') / med(kind, sides[1], 'p99'):>5.2f}x")
        print(row, flush=True)
    cpu = {(kind, side): [r.cpu_per_edit for r in results[kind, side]] for kind in kinds for side in sides}
    if all(None not in values for values in cpu.values()):
        print("server CPU, ms per edit (its processes, not the load generator's or PostgreSQL's): " + "; ".join(
            f"{kind} {' / '.join(f'{statistics.median(cpu[kind, side]):.2f}' for side in sides)}" for kind in kinds))


def wait_until_up(url: str, name: str, seconds: float = 30.0) -> None:
    """Return once GET ``url`` answers 200; SystemExit after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:  # bounded readiness wait
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{name} did not start within {seconds:.0f} s")
