"""What abuse costs a node (issue 12): figures, not pass/fail. Prints, for this machine:

1. reference extraction of 1 MB of adversarial markdown, per shape (median of --runs), and the worst;
   rendering of the same shapes at 1 MB, each run a text not seen before (the render budget's figure);
2. an editor's GET /items latency (p50/p99) against a real `fedsync serve`: with no attack; while
   sixty anonymous clients flood the federation outbox; and while sixty clients keep sending node
   tokens that name a slow peer with an unknown kid (each used to make the node fetch that peer's
   keys on a worker thread);
3. the node's memory (VmRSS) growth while eight clients upload maximum-size (32 MiB) federation
   bodies without credentials, at once.

Targets (issue 12): extraction under 50 ms per MB; editor p99 under 100 ms during the flood;
under 50 MiB of memory growth. Usage: python bench/abuse.py [--runs 5] [--seconds 5]
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import jwt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from domain import reference_scanner, references, render_budget  # noqa: E402
from infrastructure.local_cluster import NodeProcess  # noqa: E402
from infrastructure.signing import Keyring  # noqa: E402

GID = "6f1c0c1e-4d5e-4b8e-9a51-0f3f7d1f2a10"
REF = f"{{item:{GID}}}"


def shapes(size: int) -> dict[str, str]:
    def fill(unit: str) -> str:
        return REF + unit * ((size - 2 * len(REF)) // len(unit)) + REF
    return {
        "{item:..} then *a": fill("*a"),
        "backtick pairs `a": fill("`a"),
        "backtick runs 1..16": fill(unpartnered(16)),
        "unclosed runs per paragraph": fill(unpartnered(16) + "b" * 200 + "\n\n"),
        "unclosed runs, short paragraphs": fill(unpartnered(16) + "\n\n"),
        "unclosed runs, 17-runs between": fill(unpartnered(16) + ("`" * 17 + "a") * 100 + "\n\n"),
        "one unclosed, then pairs": fill("`a" + "``a``b" * 50 + "\n\n"),
        "runs of 17 (never open)": fill("`" * 17 + "a"),
        "escapes \\{ \\`": fill("\\{\\`"),
        "near-references": fill(f"{{item:{GID}:"),
        "long fallbacks": fill(f"{{item:{GID}:" + "a" * 2000),
        "references only": fill(REF + " "),
        "fences": fill("```\n" + REF + "\n"),
        "indented code": fill("x\n\n    " + REF + "\n"),
        "brackets [": fill("["),
        "images ![": fill("!["),
        # found while making the scanner's worst case linear with a small constant (array passes)
        "one backtick per paragraph": fill("`a\n\n"),
        "code spans, one per line": fill("`a`\n"),
        "code spans, one per paragraph": fill("`a`\n\n"),
        "code spans between braces": fill("`{"),
        "code spans between backslashes": fill("`a`\\"),
        "escaped backticks": fill("`\\"),
        "list items with a backtick": fill("- `a\n"),
        "1 unclosed run + reference per paragraph": fill("`a" + REF + "\n\n"),
        "16 unclosed runs + reference per paragraph": fill(unpartnered(16) + REF + "\n\n"),
        "16 unclosed runs, then lines": unpartnered(16) + "a\n" * ((size - 200) // 2) + REF,
        "16 unclosed runs, then lines of a space": unpartnered(16) + "a \n" * ((size - 200) // 3) + REF,
        "16 unclosed runs, then 17-runs": unpartnered(16) + ("`" * 17 + "a") * ((size - 200) // 18) + REF,
        "a fence, then lines": "```\n" + REF + "\n```\n" + "a\n" * ((size - 200) // 2) + REF,
        "a fence, then quote lines": "```\n" + REF + "\n```\n" + "> a\n" * ((size - 200) // 4) + REF,
        "indented code, then blank lines": "x\n\n    " + REF + "\n" + "\n" * (size - 200) + REF,
        "indented code, then lines": "x\n\n    " + REF + "\n" + "a\n" * ((size - 200) // 2) + REF,
    }


def unpartnered(count: int) -> str:
    """Backtick runs of 1 to ``count`` backticks, each then a letter: none has a partner."""
    return "".join("`" * k + "a" for k in range(1, count + 1))


def median_ms(call, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def extraction(runs: int) -> None:
    print(f"1. reference extraction, 1 MB of adversarial markdown (median of {runs} runs)")
    worst = 0.0
    for name, text in shapes(1_000_000).items():
        ms = median_ms(lambda text=text: reference_scanner.scan(text, positions=False), runs)  # uncached, as extract
        worst = max(worst, ms)
        print(f"   {name:42s} {ms:8.1f} ms")
    print(f"   worst {worst:.1f} ms per MB (target: under 50 ms)")
    print(f"   rendering, 1 MB, uncached (median of 3 runs; budget {render_budget.RENDER_BUDGET:.1f} s of CPU, past it "
          "the text is shown as written)")
    worst = 0.0
    for name, text in shapes(1_000_000).items():
        runs = iter(range(3))  # a text not seen before each run: the rendered HTML is cached by text
        ms = median_ms(lambda text=text, runs=runs: references.render(f"{text}\n\n{next(runs)}", lambda gids: {}), 3)
        worst = max(worst, ms)
        written = "markdown-source" in references.render(text, lambda gids: {}).html
        print(f"   {name:42s} {ms:8.0f} ms{'  shown as written' if written else ''}")
    print(f"   worst {worst:.0f} ms")


class SlowPeer(http.server.ThreadingHTTPServer):
    """A peer whose key endpoint answers after ``delay`` seconds; counts how often it is asked."""

    def __init__(self, jwks: bytes, delay: float) -> None:
        self.jwks, self.delay, self.asked = jwks, delay, 0
        super().__init__(("127.0.0.1", 0), _SlowHandler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _SlowHandler(http.server.BaseHTTPRequestHandler):
    server: SlowPeer

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/.well-known/fedsync":
            body = httpx.Response(200, json={"name": f"urn:domain:127.0.0.1:{self.server.server_address[1]}"}).content
        elif self.path == "/.well-known/jwks.json":
            self.server.asked += 1
            time.sleep(self.server.delay)
            body = self.server.jwks
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the node gave up on a slow answer
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def latencies(url: str, token: str, seconds: float) -> list[float]:
    out = []
    deadline = time.monotonic() + seconds
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        while time.monotonic() < deadline:  # bounded by time
            started = time.perf_counter()
            client.get(f"{url}/items")
            out.append((time.perf_counter() - started) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def flood(seconds: float) -> None:
    print("2. editor GET /items during an anonymous flood of node tokens naming a slow peer (unknown kid)")
    with tempfile.TemporaryDirectory() as tmp:
        peer_keys = Keyring.create(Path(tmp) / "peer-keys")
        slow = SlowPeer(httpx.Response(200, json=peer_keys.jwks()).content, delay=5.0)
        threading.Thread(target=slow.serve_forever, daemon=True).start()
        node = NodeProcess(Path(tmp) / "node").init()
        try:
            admin = node.admin()
            try:
                admin.add_peer(slow.base_url, ("item",), ("item",))
                token = admin.tokens.issue("ann")
            finally:
                admin.close()
            node.start()
            pin(node)
            quiet = latencies(node.base_url, token, seconds)
            forged = jwt.encode({"iss": f"urn:domain:127.0.0.1:{slow.server_address[1]}",
                                 "aud": node.name}, "x" * 32, algorithm="HS256", headers={"kid": "unknown"})
            print(f"   no attack:         {summary(quiet)}")
            anonymous = under_attack(node, token, seconds, {})
            print(f"   anonymous flood:   {summary(anonymous)}")
            asked_before = slow.asked
            slow_peer = under_attack(node, token, seconds, {"Authorization": f"Bearer {forged}"})
            print(f"   slow-peer tokens:  {summary(slow_peer)}; the slow peer's keys were fetched "
                  f"{slow.asked - asked_before} times (target p99: under 100 ms)")
            memory(node)
        finally:
            node.stop()
            slow.shutdown()


def pin(node: NodeProcess) -> None:
    """The node on core 0, this process (editor and attackers) on the others, when there are two or more:
    the attackers stand for clients on other machines, so they must not take the node's CPU."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2 or node.process is None:
        print("   (one core: node and load generator share it)")
        return
    for task in Path(f"/proc/{node.process.pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), {cores[0]})
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        os.sched_setaffinity(int(task.name), set(cores[1:]))
    print(f"   (node on core {cores[0]}; editor and attackers on {cores[1:]})")


def summary(values: list[float]) -> str:
    return (f"p50 {p(values, .5):6.1f} ms  p90 {p(values, .9):6.1f} ms  p99 {p(values, .99):6.1f} ms  "
            f"max {max(values):6.1f} ms  ({len(values)} requests)")


def under_attack(node: NodeProcess, token: str, seconds: float, headers: dict[str, str]) -> list[float]:
    """The editor's latencies while 60 clients send GET /federation/outbox with ``headers``.

    The attackers run in a process of their own, as they would on another machine: threads sharing the
    editor's interpreter would make the editor's client wait for the GIL, not for the node.
    """
    stop, answers = multiprocessing.Event(), multiprocessing.Queue()
    attack = multiprocessing.Process(target=attackers, args=(node.base_url, headers, stop, answers))
    attack.start()
    time.sleep(0.5)
    try:
        return latencies(node.base_url, token, seconds)
    finally:
        stop.set()
        counts = answers.get(timeout=60)
        attack.join(timeout=60)
        print(f"   (attackers' answers: {dict(sorted(counts.items()))})")


def attackers(url: str, headers: dict[str, str], stop: Any, answers: Any, clients: int = 60) -> None:
    counts: Counter[int] = Counter()

    def attacker() -> None:
        with httpx.Client(timeout=30) as client:
            for _ in range(100_000):  # bounded
                if stop.is_set():
                    return
                counts[client.get(f"{url}/federation/outbox", headers=headers).status_code] += 1

    threads = [threading.Thread(target=attacker, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    answers.put(dict(counts))


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def memory(node: NodeProcess) -> None:
    print("3. node memory while eight anonymous clients upload 32 MiB federation bodies at once")
    body = b"[" + b"0," * (16 * 1024 * 1024 - 1) + b"0]"
    assert node.process is not None
    before, peak, statuses = rss(node.process.pid), 0, []
    done = threading.Event()

    def upload() -> None:
        try:
            response = httpx.post(f"{node.base_url}/federation/inbox", content=body, timeout=60,
                                  headers={"Content-Type": "application/json"})
            statuses.append(response.status_code)
        except httpx.HTTPError as e:  # the node may close the connection once it has answered 413
            statuses.append(type(e).__name__)

    threads = [threading.Thread(target=upload) for _ in range(8)]
    for thread in threads:
        thread.start()
    watcher_deadline = time.monotonic() + 60
    while any(t.is_alive() for t in threads) and time.monotonic() < watcher_deadline:
        peak = max(peak, rss(node.process.pid))
        time.sleep(0.01)
    for thread in threads:
        thread.join(timeout=60)
    done.set()
    growth = (max(peak, before) - before) / 2**20
    print(f"   growth {growth:.1f} MiB (target: under 50 MiB); answers {sorted(map(str, statuses))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--only", choices=("extraction", "attacks"), help="run one half of the benchmark")
    args = parser.parse_args()
    if args.only != "attacks":
        extraction(args.runs)
    if args.only != "extraction":
        flood(args.seconds)


if __name__ == "__main__":
    main()
