"""Ack latency of `/pcp` under `pcp serve` versus a no-op Bolt app on the same server stack.

Why: Slack shows an error unless a slash command is acknowledged within 3 s, and the ack must not wait
on the answer. Comparing against an app whose handler only acks (same waitress + WSGI adapter + signature
check) shows what our code adds on top of the floor. Prints figures; it is a benchmark, not a test.

    python bench/ack_latency.py [--requests 1000] [--warmup 50] [--concurrency 1]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import http.client
import math
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.slack_stub import SlackStub  # noqa: E402

SECRET, TOKEN = "bench-secret", "xoxb-bench"
TEXTS = ["knife-crime", "ksi", "priority 3", "funding", "scorecard", "999 calls", "knif crme", "help"]
USERS = ["U0ANALYST", "U0CHIEF", "U0PCC", "U0COMMS"]
BLOCK = 100  # requests per target per round; see run_rounds
SLACK_LIMIT_MS, RATIO_TARGET = 3000.0, 1.5


def serve_noop(port: int, api_url: str) -> None:
    """Target B: a Bolt app whose handler only acks, on the project's own server stack."""
    import logging

    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.server import make_server, wsgi_app

    logging.basicConfig(level=logging.WARNING)
    app = App(client=WebClient(token=TOKEN, base_url=api_url), signing_secret=SECRET)
    app.command("/pcp")(lambda ack: ack())
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches the whole process group; the parent cleans up
        make_server(wsgi_app(app, store=None), host="127.0.0.1", port=port, threads=8).run()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(cmd: list[str], port: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Launch a server and wait (30 s at most) until GET /healthz answers 200."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd} exited with {proc.returncode} before it was healthy")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
            if r.status == 200:
                return proc
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{cmd} was not healthy within 30 s")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM (pcp serve closes its server on it), then kill if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def signed_command(i: int, response_url: str, texts: list[str] = TEXTS) -> tuple[str, dict[str, str]]:
    """Slash command `i` (its text from `texts`) as Slack sends it, signed now (like tests/conftest.py)."""
    body = urllib.parse.urlencode(
        {
            "token": "deprecated",
            "team_id": "T0TEST",
            "team_domain": "pcp-bench",
            "channel_id": "C0PERF",
            "channel_name": "performance",
            "user_id": USERS[i % len(USERS)],
            "user_name": "analyst",
            "command": "/pcp",
            "text": texts[i % len(texts)],
            "response_url": response_url,
            "trigger_id": f"{i}.456.abc",
            "api_app_id": "A0PCP",
            "is_enterprise_install": "false",
        }
    )
    ts = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
    }
    return body, headers


def post(conn: http.client.HTTPConnection, body: str, headers: dict[str, str]) -> int:
    """POST one request to /slack/events on a keep-alive connection: its HTTP status, 0 on a connection error."""
    try:
        conn.request("POST", "/slack/events", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        conn.close()  # the next request reconnects
        return 0


def worker(conn: http.client.HTTPConnection, indices: range, response_url: str) -> list[tuple[float, int]]:
    """Send requests one at a time on a keep-alive connection: (latency ms, status; 0 = connection error)."""
    results = []
    for i in indices:
        body, headers = signed_command(i, response_url)  # built before the clock starts: we time the server
        started = time.perf_counter()
        status = post(conn, body, headers)
        results.append(((time.perf_counter() - started) * 1000, status))
    return results


def send(pool: ThreadPoolExecutor, conns: list[http.client.HTTPConnection], start_at: int, count: int, url: str):
    """`count` requests spread over the connections, one thread each."""
    n = len(conns)
    jobs = [pool.submit(worker, c, range(start_at + k, start_at + count, n), url) for k, c in enumerate(conns)]
    return [result for job in jobs for result in job.result()]


def percentile(values: list[float], q: int) -> float:
    """NaN when there is too little to rank (every request failed): the run fails anyway."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else math.nan


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="measured requests per target")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured requests per target first")
    parser.add_argument("--concurrency", type=int, default=1, help="client threads (connections) per target")
    parser.add_argument("--serve-noop", nargs=2, metavar=("PORT", "STUB_API_URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_noop:
        serve_noop(int(args.serve_noop[0]), args.serve_noop[1])
        return 0

    print(f"cores: {os.cpu_count()}  python: {platform.python_version()}  requests: {args.requests}/target  "
          f"warmup: {args.warmup}  concurrency: {args.concurrency}")  # fmt: skip
    stub, procs, tmp = SlackStub().start(), [], tempfile.TemporaryDirectory(prefix="pcp-bench-")
    pool = ThreadPoolExecutor(args.concurrency)
    try:
        ports = {"pcp serve": free_port(), "no-op floor": free_port()}
        env = {k: v for k, v in os.environ.items() if k != "SLACK_APP_TOKEN"}  # an app token means Socket Mode
        env |= {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": stub.api_url,
                "DATABASE_URL": f"sqlite:///{tmp.name}/pcp.db", "HOST": "127.0.0.1", "PORT": str(ports["pcp serve"]),
                "HTTP_THREADS": "8", "LOG_LEVEL": "WARNING"}  # fmt: skip
        procs.append(start([sys.executable, "-m", "bot.cli", "serve"], ports["pcp serve"], env))
        noop_cmd = [sys.executable, __file__, "--serve-noop", str(ports["no-op floor"]), stub.api_url]
        procs.append(start(noop_cmd, ports["no-op floor"]))
        conns = {t: [http.client.HTTPConnection("127.0.0.1", p, timeout=30) for _ in range(args.concurrency)]
                 for t, p in ports.items()}  # fmt: skip
        url, sent, acked = stub.response_url("bench"), {t: 0 for t in ports}, {t: 0 for t in ports}
        results: dict[str, list[tuple[float, int]]] = {t: [] for t in ports}

        def run(target: str, count: int, measured: bool) -> None:
            out = send(pool, conns[target], sent[target], count, url)
            sent[target] += count
            acked[target] += sum(s == 200 for _, s in out)
            if measured:
                results[target] += out
            elif bad := [s for _, s in out if s != 200]:
                results[target] += [(0.0, s) for s in bad]  # warm-up failures still count as failures
            if target == "pcp serve":  # let the answers drain so they don't run during the floor's block
                with contextlib.suppress(AssertionError):
                    stub.wait_for("webhook", count=acked[target], timeout=30)

        # Fairness: interleave the targets in blocks of BLOCK requests, swapping which goes first each round,
        # so drift (CPU frequency, other load on the machine) hits both alike; pcp's background answers are
        # drained after each of its blocks so they never overlap the floor's measurement.
        for target in ports:
            run(target, args.warmup, measured=False)
        for r, at in enumerate(range(0, args.requests, BLOCK)):
            for target in list(ports)[:: 1 if r % 2 else -1]:
                run(target, min(BLOCK, args.requests - at), measured=True)

        print(f"{'target':<14}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'non-200':>9}")
        p50, p99, failures = {}, {}, 0
        for target in ("no-op floor", "pcp serve"):
            ok = [ms for ms, s in results[target] if s == 200]
            bad = len(results[target]) - len(ok)
            failures += bad
            p50[target], p99[target] = percentile(ok, 50), percentile(ok, 99)
            worst = max(ok, default=math.nan)
            print(f"{target:<14}{len(ok):>9}{p50[target]:>9.2f}{p99[target]:>9.2f}{worst:>9.2f}{bad:>9}")
        ratio = p50["pcp serve"] / p50["no-op floor"]
        print(f"ratio p50 (pcp / no-op): {ratio:.2f}x (target <= {RATIO_TARGET}x)  "
              f"{'PASS' if ratio <= RATIO_TARGET else 'MISS'}")  # fmt: skip
        print(f"p99 pcp: {p99['pcp serve']:.0f} ms (Slack's limit: {SLACK_LIMIT_MS:.0f} ms)  "
              f"{'PASS' if p99['pcp serve'] < SLACK_LIMIT_MS else 'MISS'}")  # fmt: skip
        answers = len(stub.calls("webhook"))
        print(f"answers from pcp via response_url: {answers}/{sent['pcp serve']}")
        if failures or answers < sent["pcp serve"]:
            print(f"FAILED: {failures} non-200 acks, {max(0, sent['pcp serve'] - answers)} missing answers")
            return 1
        return 0
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            stop(proc)
        stub.stop()
        tmp.cleanup()


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        raise SystemExit(130) from None
