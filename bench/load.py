"""Load: signed `/pcp` requests from many concurrent clients against one and two `pcp serve` instances.

Why: several instances of `pcp serve` share one PostgreSQL behind a load balancer in HTTP mode, and any
instance must answer any request. Slack shows an error unless a slash command is acknowledged within 3 s,
and every answer must still reach its response_url. This starts real `pcp serve` processes on a throwaway
PostgreSQL database, puts a small HTTP round-robin load balancer in front of them (a separate process that
sends each request to the next instance, as an HTTP-mode balancer does, over keep-alive connections), and
has --clients threads, each on its own keep-alive connection, send Slack-signed `/pcp` commands for
--duration seconds. Every request carries its own response_url on the Slack stand-in (tests/slack_stub.py,
in its own process so it does not share the client's GIL), so each answer is matched to its request.

Each run gets a fresh, empty database; its instances start one after another, each healthy before the next
(--together starts them at once). Prints, per run: requests, throughput, ack latency p50/p90/p99/max, HTTP
errors, answers delivered / missing / duplicated / apologies, answer latency (request sent -> answer at its
response_url), the most PostgreSQL connections in use, how the balancer split the requests, errors in the
instances' logs, and a verdict. It is a benchmark, not a test: it prints figures, and exits 1 if a run had
an error or a p99 ack at or over Slack's 3 s. Everything runs on this one machine, so with few cores the
instances, balancer, clients, stand-in and PostgreSQL compete for them: a second instance adds concurrency,
not CPU. --webhook-delay-ms makes each response_url post take that long, as the real Slack does.

    python bench/load.py [--duration 30] [--clients 50] [--instances 1,2] [--http-threads 8] [--direct]
                         [--webhook-delay-ms 0] [--together] [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import http.server
import itertools
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.ack_latency import SECRET, TOKEN, free_port, percentile, post, signed_command, stop  # noqa: E402

# A mix of what people type: metric names and aliases, typos, priorities, themes, funding, the scorecard,
# help, vague text that gets suggestions, and the read-only lead/subscription commands (they open a session).
TEXTS = [
    "knife-crime", "ksi", "999 calls", "asb", "dvpo", "knif crme", "burglery", "priority 3", "p1",
    "safer places", "women and girls", "edi", "funding", "funding vrp", "scorecard", "help", "",
    "xyzzy", "owner list", "following",
]  # fmt: skip
SLACK_LIMIT_MS = 3000.0
POOL_LIMIT = 40  # pool_size 10 + max_overflow 30 in bot/db.make_engine
APOLOGY_PREFIX = "Sorry, pcp could not"  # templates/error.j2 and chart_failed.j2


# --- child process: the Slack stand-in -------------------------------------------------------------------------


def serve_stub() -> None:
    """Run SlackStub; print its URL; obey one command a line on stdin, answering one line each:
    `delay MS N` (the next N response_url posts wait MS first, like a distant Slack), `count`, `reset`,
    `dump` (a JSON list of [webhook name, monotonic time of arrival, HTTP status sent, start of its text])."""
    from tests.slack_stub import SlackStub

    with SlackStub() as stub:
        print(stub.url, flush=True)
        for line in sys.stdin:
            word, *rest = line.split()
            if word == "delay":
                stub.fail("webhook", delay=int(rest[0]) / 1000, times=int(rest[1]))
                print("ok", flush=True)
            elif word == "count":
                print(len(stub.calls("webhook")), flush=True)
            elif word == "reset":
                stub.reset()
                print("ok", flush=True)
            elif word == "dump":
                hooks = [[r.name, r.time, r.status, str(r.body.get("text", ""))[:120]] for r in stub.calls("webhook")]
                print(json.dumps(hooks), flush=True)


class Stub:
    """The parent's handle on the stand-in process."""

    def __init__(self) -> None:
        cmd = [sys.executable, __file__, "--serve-stub"]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()
        if not self.url:
            raise RuntimeError("the Slack stand-in did not start")

    def ask(self, command: str) -> str:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline()

    def webhooks(self) -> list[list]:
        return json.loads(self.ask("dump"))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- child process: the load balancer --------------------------------------------------------------------------


def serve_balancer(port: int, backends: list[int]) -> None:
    """HTTP/1.1 round-robin reverse proxy: each request (not each connection) goes to the next backend,
    over a keep-alive connection per (client connection, backend). A failed backend call answers 502.
    On SIGTERM it prints how many requests each backend got (a JSON list, in `backends` order) and exits."""
    turn = itertools.cycle(backends)
    lock = threading.Lock()
    counts = dict.fromkeys(backends, 0)

    def report_and_exit(_signum: int, _frame: object) -> None:
        with lock:
            print(json.dumps([counts[b] for b in backends]), flush=True)
        os._exit(0)

    signal.signal(signal.SIGTERM, report_and_exit)

    class Proxy(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            self.upstream: dict[int, http.client.HTTPConnection] = {}

        def log_message(self, format: str, *args: object) -> None:
            pass

        def forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                backend = next(turn)
                counts[backend] += 1
            conn = self.upstream.get(backend)
            if conn is None:
                conn = self.upstream[backend] = http.client.HTTPConnection("127.0.0.1", backend, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "host")}
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                status, payload = response.status, response.read()
                ctype = response.getheader("Content-Type", "text/plain")
            except (OSError, http.client.HTTPException):
                conn.close()
                status, payload, ctype = 502, b"bad gateway", "text/plain"
            head = (f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\nContent-Type: {ctype}\r\n"
                    f"Content-Length: {len(payload)}\r\n\r\n")  # fmt: skip
            self.wfile.write(head.encode("latin-1") + payload)  # one write: no Nagle/delayed-ACK stall

        do_GET = do_POST = forward

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 1024  # listen() backlog; the default 5 drops SYNs when 50 clients connect at once

    server = Server(("127.0.0.1", port), Proxy)
    server.serve_forever()


def wait_listening(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the load balancer exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError("the load balancer did not start")


# --- the throwaway PostgreSQL database ------------------------------------------------------------------------


def server_version(admin_url: str) -> str:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        return conn.execute("SHOW server_version").fetchone()[0]


def create_database(admin_url: str) -> str:
    """A fresh, empty database on the same server: each run starts as a first deployment does."""
    import psycopg

    name = f"pcp_load_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin_url.rpartition('/')[0]}/{name}"


def drop_database(admin_url: str, url: str) -> None:
    import psycopg

    name = url.rpartition("/")[2]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class ConnectionWatch:
    """Samples pg_stat_activity every 0.25 s while the load runs: the most connections the instances held
    open on the run's database at once, and the most of those busy in a query or transaction at once."""

    def __init__(self, admin_url: str, database_url: str) -> None:
        self.admin_url, self.name = admin_url, database_url.rpartition("/")[2]
        self.most_open = self.most_busy = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="pg-watch", daemon=True)

    def _watch(self) -> None:
        import psycopg

        query = "SELECT count(*), count(*) FILTER (WHERE state <> 'idle') FROM pg_stat_activity WHERE datname = %s"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:  # connected to the admin db: not counted
            while not self._stop.wait(0.25):
                opened, busy = conn.execute(query, (self.name,)).fetchone()
                self.most_open, self.most_busy = max(self.most_open, opened), max(self.most_busy, busy)

    def __enter__(self) -> ConnectionWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


# --- clients ---------------------------------------------------------------------------------------------------


@dataclass
class Sent:
    index: int
    at: float  # time.monotonic() just before sending: the stand-in's clock too (CLOCK_MONOTONIC)
    ms: float  # ack latency
    status: int  # HTTP status; 0 = connection error or timeout
    measured: bool  # False during warm-up


def client(port: int, counter: itertools.count, stub_url: str, measure_from: float, until: float) -> list[Sent]:
    """One keep-alive connection, one request at a time until `until`; reconnects after an error."""
    conn, out = http.client.HTTPConnection("127.0.0.1", port, timeout=10), []
    while (now := time.monotonic()) < until:
        i = next(counter)  # atomic under the GIL: every request has its own index and response_url
        # built before the clock starts: we time the server
        body, headers = signed_command(i, f"{stub_url}/webhook/r{i}", TEXTS)
        at, started = time.monotonic(), time.perf_counter()
        status = post(conn, body, headers)
        out.append(Sent(i, at, (time.perf_counter() - started) * 1000, status, now >= measure_from))
    conn.close()
    return out


def run_load(port: int, stub_url: str, clients: int, warmup: float, duration: float) -> tuple[list[Sent], float]:
    """`clients` threads for warmup + duration seconds; (every request, measured seconds)."""
    counter = itertools.count()
    results: list[list[Sent]] = [[] for _ in range(clients)]
    measure_from = time.monotonic() + warmup
    until = measure_from + duration

    def work(k: int) -> None:
        results[k] = client(port, counter, stub_url, measure_from, until)

    threads = [threading.Thread(target=work, args=(k,), name=f"client-{k}") for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # the measured window ends when the last request sent inside it returns
    measured = [s for r in results for s in r if s.measured]
    end = max((s.at + s.ms / 1000 for s in measured), default=until)
    return sorted((s for r in results for s in r), key=lambda s: s.index), end - measure_from


# --- instances -------------------------------------------------------------------------------------------------


def launch(n: int, database_url: str, stub_url: str, args: argparse.Namespace, logs: Path, started: list) -> None:
    """Start n `pcp serve` instances, appending (process, port, log) to `started` as each starts:
    one after another (each healthy before the next starts), or with --together all at once."""
    env = {k: v for k, v in os.environ.items() if k != "SLACK_APP_TOKEN"}  # an app token means Socket Mode
    env |= {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": f"{stub_url}/api/",
            "DATABASE_URL": database_url, "HOST": "127.0.0.1", "HTTP_THREADS": str(args.http_threads),
            "PCP_SCHEDULER": "true", "LOG_LEVEL": "INFO"}  # fmt: skip
    cmd = [sys.executable, "-m", "bot.cli", "serve"]
    pending = []
    for k in range(n):
        port, log = free_port(), logs / f"instance-{n}-{k + 1}.log"
        with log.open("w") as out:
            proc = subprocess.Popen(cmd, cwd=REPO, env=env | {"PORT": str(port)}, stderr=out, stdout=out)
        started.append((proc, port, log))
        pending.append((proc, port, log))
        if not args.together:
            wait_healthy(*pending.pop())
    for item in pending:
        wait_healthy(*item)


def wait_healthy(proc: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"pcp serve exited with {proc.returncode} before it was healthy:\n{tail(log)}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
            if r.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"pcp serve was not healthy within 60 s:\n{tail(log)}")


def tail(log: Path) -> str:
    """The exception lines of a failed start (or the log's last lines), indented."""
    text = log.read_text(errors="replace").splitlines()
    ours = f'File "{REPO}/'
    picked = [line for line in text if (ours in line and "/.venv/" not in line) or line.startswith("DETAIL:")
              or (line[:1].isalpha() and "Error" in line.split(":", 1)[0])]  # fmt: skip
    return "\n".join(f"    {line.strip()[:240]}" for line in (picked or text)[-8:])


def log_lines(log: Path) -> tuple[int, list[str], list[str]]:
    """(deepest waitress task queue, ERROR lines and tracebacks, other WARNING lines) of an instance's log.

    waitress warns "Task queue depth is N" whenever a request waits for one of its HTTP_THREADS: expected
    when more clients than threads send at once, so it is reported as a figure, not as an error."""
    depth, errors, warnings = 0, [], []
    for line in log.read_text(errors="replace").splitlines():
        if "Task queue depth is" in line:
            depth = max(depth, int(line.rsplit(" ", 1)[1]))
        elif " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback"):
            errors.append(line)
        elif " WARNING " in line:
            warnings.append(line)
    return depth, errors, warnings


# --- one run ---------------------------------------------------------------------------------------------------


@dataclass
class Servers:
    via_balancer: bool
    split: list[int]  # requests the balancer sent to each instance (empty: no balancer)
    depth: list[int]  # deepest waitress task queue seen, per instance
    errors: list[str]  # ERROR lines and tracebacks in the instances' logs, start to stop
    warnings: list[str]  # their other WARNING lines
    connections: tuple[int, int]  # most PostgreSQL connections the instances held open / busy at once


def one_run(n: int, stub: Stub, args: argparse.Namespace, logs: Path) -> dict:
    database_url = create_database(args.admin_url)
    launched, balancer, split = [], None, []
    try:
        launch(n, database_url, stub.url, args, logs, launched)
        ports = [port for _, port, _ in launched]
        if n == 1 and args.direct:
            target = ports[0]
        else:
            target = free_port()
            cmd = [sys.executable, __file__, "--serve-balancer", str(target), *map(str, ports)]
            balancer = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
            wait_listening(target, balancer)
        stub.ask("reset")
        if args.webhook_delay_ms:
            stub.ask(f"delay {args.webhook_delay_ms} 10000000")
        with ConnectionWatch(args.admin_url, database_url) as watch:
            sent, seconds = run_load(target, stub.url, args.clients, args.warmup, args.duration)
        acked = sum(s.status == 200 for s in sent)
        waited_from = time.monotonic()
        while time.monotonic() - waited_from < args.grace and int(stub.ask("count")) < acked:
            time.sleep(0.2)
        waited = time.monotonic() - waited_from
        hooks = stub.webhooks()
        stub.ask("reset")
    finally:
        if balancer is not None:
            balancer.terminate()
            with contextlib.suppress(ValueError):
                split = json.loads(balancer.communicate(timeout=10)[0] or "[]")
        for proc, _, _ in launched:
            stop(proc)
        drop_database(args.admin_url, database_url)
    servers = Servers(balancer is not None, split, [], [], [], (watch.most_open, watch.most_busy))
    for _, _, log in launched:
        depth, errors, warnings = log_lines(log)
        servers.depth.append(depth)
        servers.errors += errors
        servers.warnings += warnings
    return report(n, sent, seconds, hooks, waited, servers, args)


def report(n: int, sent: list[Sent], seconds: float, hooks: list[list], waited: float, servers: Servers,
           args: argparse.Namespace) -> dict:  # fmt: skip
    measured = [s for s in sent if s.measured]
    ok = [s.ms for s in measured if s.status == 200]
    http_errors = [s for s in sent if s.status != 200]
    by_name: dict[str, list[list]] = {}
    for hook in hooks:
        by_name.setdefault(hook[0], []).append(hook)
    delivered = missing = duplicates = apologies = 0
    answer_ms = []
    for s in sent:
        if s.status != 200:
            continue  # not acknowledged: already an HTTP error; Slack would have shown its own error
        got = by_name.get(f"r{s.index}")
        if not got:
            missing += 1
            continue
        delivered += 1
        duplicates += len(got) > 1
        apologies += any(h[3].startswith(APOLOGY_PREFIX) or h[2] != 200 for h in got)
        if s.measured:
            answer_ms.append((got[0][1] - s.at) * 1000)
    pct = {q: percentile(ok, q) for q in (50, 90, 99)}
    answer_pct = {q: percentile(answer_ms, q) for q in (50, 99)}
    row = {
        "instances": n,
        "requests": len(measured),
        "rps": len(measured) / seconds if seconds else math.nan,
        **{f"p{q}": v for q, v in pct.items()},
        "max": max(ok, default=math.nan),
        "http_errors": len(http_errors),
        "delivered": delivered,
        "missing": missing,
        "duplicates": duplicates,
        "apologies": apologies,
        "answer_p50": answer_pct[50],
        "answer_p99": answer_pct[99],
        "log_errors": len(servers.errors),
    }
    where = "via the round-robin balancer" if servers.via_balancer else "direct, no balancer"
    print(f"\n== {n} instance{'s' * (n > 1)} ({where}), {args.clients} clients, {seconds:.1f} s measured "
          f"after {args.warmup:g} s warm-up ==")  # fmt: skip
    print(f"requests      {row['requests']} measured ({len(sent)} sent in all)")
    print(f"throughput    {row['rps']:.1f} req/s")
    print(f"ack latency   p50 {pct[50]:.1f}  p90 {pct[90]:.1f}  p99 {pct[99]:.1f}  max {row['max']:.1f} ms")
    kinds = Counter(f"HTTP {s.status}" if s.status else "connection error or timeout" for s in http_errors)
    print(f"HTTP errors   {len(http_errors)}" + "".join(f"\n              {k} x{c}" for k, c in kinds.most_common(5)))
    print(f"answers       {delivered} delivered, {missing} missing after {waited:.1f} s wait, "
          f"{duplicates} duplicated, {apologies} apologies/errors")  # fmt: skip
    print(f"answer time   p50 {answer_pct[50]:.1f}  p99 {answer_pct[99]:.1f} ms (sent -> answer at response_url)")
    opened, busy = servers.connections
    print(f"PostgreSQL    at most {opened} connections open, {busy} busy at once (all instances; each "
          f"instance's pool allows {POOL_LIMIT}, bot/db.py; {n} x {POOL_LIMIT})")  # fmt: skip
    if servers.split:
        print(f"balancer      requests per instance: {' / '.join(map(str, servers.split))}")
    print(f"instance logs {len(servers.errors)} ERROR lines, {len(servers.warnings)} other warnings; deepest waitress "
          f"task queue: {' / '.join(map(str, servers.depth))} (requests waiting for one of {args.http_threads} "
          "threads)")  # fmt: skip
    for line in (servers.errors + servers.warnings)[:8]:
        print(f"              {line[:200]}")
    failures = row["http_errors"] + missing + apologies + duplicates + len(servers.errors)
    inside = pct[99] < SLACK_LIMIT_MS
    row["pass"] = failures == 0 and inside
    print(f"verdict       {'PASS' if row['pass'] else 'FAIL'}: {failures} errors; p99 {pct[99]:.0f} ms vs Slack's "
          f"{SLACK_LIMIT_MS:.0f} ms limit = {100 * pct[99] / SLACK_LIMIT_MS:.1f}% of it "
          f"({SLACK_LIMIT_MS / pct[99]:.0f}x headroom)")  # fmt: skip
    return row


def machine() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"cores: {os.cpu_count()} ({model or platform.machine()})  python: {platform.python_version()}  "
            f"os: {platform.system()} {platform.release()}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30, help="measured seconds per run (default 30)")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds first; its errors still count")
    parser.add_argument("--clients", type=int, default=50, help="concurrent client threads/connections (default 50)")
    parser.add_argument("--instances", default="1,2", help="runs, as instance counts (default 1,2)")
    parser.add_argument("--http-threads", type=int, default=8, help="HTTP_THREADS of each instance (default 8)")
    parser.add_argument("--webhook-delay-ms", type=int, default=0, help="response_url answers this late, like Slack")
    parser.add_argument("--grace", type=float, default=15, help="seconds to wait for answers after the load")
    parser.add_argument("--together", action="store_true", help="start all instances at once on the empty database")
    parser.add_argument("--direct", action="store_true", help="one instance: no balancer in front")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="PostgreSQL server to create the throwaway databases on")  # fmt: skip
    parser.add_argument("--serve-stub", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-balancer", nargs="+", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_stub or args.serve_balancer:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches the whole process group; the parent cleans up
            serve_stub() if args.serve_stub else serve_balancer(args.serve_balancer[0], args.serve_balancer[1:])
        return 0

    counts = [int(n) for n in args.instances.split(",")]
    print(machine())
    print(f"database: a throwaway one per run on PostgreSQL {server_version(args.admin_url)}  "
          f"clients: {args.clients}  duration: {args.duration:g} s  "
          f"HTTP_THREADS: {args.http_threads}  response_url delay: {args.webhook_delay_ms} ms")  # fmt: skip
    stub, rows = Stub(), []
    try:
        with tempfile.TemporaryDirectory(prefix="pcp-load-") as tmp:
            for n in counts:
                try:
                    rows.append(one_run(n, stub, args, Path(tmp)))
                except RuntimeError as error:  # an instance did not start: report it, go on with the next run
                    print(f"\n== {n} instance{'s' * (n > 1)}: FAILED to start ==\n{error}")
                    rows.append({"instances": n, "pass": False})
    finally:
        stub.close()
    print(f"\n{'instances':>9}{'requests':>9}{'req/s':>8}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}"
          f"{'errors':>7}{'answers':>8}{'missing':>8}  verdict")  # fmt: skip
    for r in rows:
        if "requests" not in r:
            print(f"{r['instances']:>9}  did not start{'FAIL':>59}")
            continue
        print(f"{r['instances']:>9}{r['requests']:>9}{r['rps']:>8.1f}{r['p50']:>8.1f}{r['p90']:>8.1f}{r['p99']:>8.1f}"
              f"{r['max']:>8.1f}{r['http_errors'] + r['apologies']:>7}{r['delivered']:>8}{r['missing']:>8}  "
              f"{'PASS' if r['pass'] else 'FAIL'}")  # fmt: skip
    print("(latencies: ack, in ms; errors: HTTP errors + apology answers)")
    return 0 if all(r["pass"] for r in rows) else 1


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        raise SystemExit(130) from None
