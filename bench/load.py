"""Load test: many simulated learners sign in, submit, poll until scored and read the leaderboard.

By default it starts its own site on loopback only — gunicorn on 127.0.0.1 and a real Celery
worker, over a throw-away var/ directory (SQLite and the demo's embedded Redis unless --database-url
/ --broker-url say otherwise) — creates the learners and a challenge with a large daily limit,
runs for --seconds (or until --max-requests), then stops everything it started and reports.
With --url it drives a site that is already running (the learners must exist there; see
--setup-only).

    .venv/bin/python bench/load.py --learners 20 --seconds 20
    .venv/bin/python bench/load.py --learners 100 --seconds 30

Standard library only (threads + urllib). Exit status 1 when any request failed.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import re
import secrets
import statistics
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field

from load_site import PASSWORD, SLUG, Site  # noqa: E402 - run as a script from bench/

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
NEW_ID = re.compile(r"[?&]new=(\d+)")
POLL_SECONDS = 0.5
SCORE_TIMEOUT = 120.0
REQUEST_TIMEOUT = 60.0


# --- simulated learners ---------------------------------------------------------------------------


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 302 comes back as an HTTPError we can inspect


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[str] = field(default_factory=list)
    requests: int = 0
    scored: int = 0
    to_scored: list[float] = field(default_factory=list)

    def record(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.latencies[kind].append(seconds)
            self.requests += 1

    def error(self, kind: str, detail: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            if len(self.samples) < 10:
                self.samples.append(f"{kind}: {detail}")


class Stop(Exception):
    pass


class Learner:
    def __init__(self, base: str, username: str, body: bytes, stats: Stats, run: Run) -> None:
        self.base, self.username, self.body, self.stats, self.run = base, username, body, stats, run
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def request(self, kind: str, path: str, data: bytes | None = None, headers: dict | None = None):
        if not self.run.take():
            raise Stop
        req = urllib.request.Request(
            self.base + path, data=data, headers={"Referer": self.base + path, **(headers or {})}
        )
        start = time.perf_counter()
        try:
            with self.opener.open(req, timeout=REQUEST_TIMEOUT) as response:
                status, text, location = response.status, response.read().decode("utf-8", "replace"), ""
        except urllib.error.HTTPError as exc:
            status, text, location = (
                exc.code,
                exc.read().decode("utf-8", "replace"),
                exc.headers.get("Location", ""),
            )
        except OSError as exc:
            self.stats.record(kind, time.perf_counter() - start)
            self.stats.error(kind, repr(exc))
            return None, "", ""
        self.stats.record(kind, time.perf_counter() - start)
        return status, text, location

    def expect(self, kind: str, got, wanted: int) -> bool:
        status, text, _ = got
        if status != wanted:
            if status is not None:
                self.stats.error(kind, f"HTTP {status} (wanted {wanted}): {text[:160]!r}")
            return False
        return True

    def form_post(self, kind: str, path: str, fields: dict[str, str], file: bytes | None = None):
        if file is None:
            data = urllib.parse.urlencode(fields).encode()
            return self.request(kind, path, data, {"Content-Type": "application/x-www-form-urlencoded"})
        boundary = secrets.token_hex(16)
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in fields.items()
        ]
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="preds.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n".encode()
            + file
            + f"\r\n--{boundary}--\r\n".encode()
        )
        return self.request(
            kind, path, b"".join(parts), {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )

    def csrf(self, kind: str, path: str) -> str | None:
        got = self.request(kind, path)
        if not self.expect(kind, got, 200):
            return None
        match = CSRF.search(got[1])
        if not match:
            self.stats.error(kind, "no CSRF token in the page")
        return match.group(1) if match else None

    def sign_in(self) -> bool:
        token = self.csrf("login_page", "/accounts/login/")
        if token is None:
            return False
        got = self.form_post(
            "login",
            "/accounts/login/",
            {"csrfmiddlewaretoken": token, "username": self.username, "password": PASSWORD},
        )
        return self.expect("login", got, 302)

    def submit_and_wait(self) -> None:
        token = self.csrf("submit_page", f"/c/{SLUG}/submit/")
        if token is None:
            return
        got = self.form_post(
            "submit", f"/c/{SLUG}/submit/", {"csrfmiddlewaretoken": token, "description": "load"}, self.body
        )
        if not self.expect("submit", got, 302):
            return
        match = NEW_ID.search(got[2])
        if not match:
            self.stats.error("submit", f"redirect without the new id: {got[2]!r}")
            return
        submitted, pk = time.monotonic(), match.group(1)
        while True:
            got = self.request("status", f"/c/{SLUG}/submissions/{pk}/status.json")
            if not self.expect("status", got, 200):
                return
            payload = json.loads(got[1])
            if payload["finished"]:
                if payload["status"] != "scored":
                    self.stats.error(
                        "scoring", f"submission {pk} {payload['status']}: {payload['error_message']}"
                    )
                else:
                    with self.stats.lock:
                        self.stats.scored += 1
                        self.stats.to_scored.append(time.monotonic() - submitted)
                break
            if time.monotonic() - submitted > SCORE_TIMEOUT:
                self.stats.error("scoring", f"submission {pk} not finished after {SCORE_TIMEOUT:.0f} s")
                return
            time.sleep(POLL_SECONDS)
        self.expect("leaderboard", self.request("leaderboard", f"/c/{SLUG}/leaderboard/"), 200)

    def live(self) -> None:
        try:
            if not self.sign_in():
                return
            while True:
                self.submit_and_wait()
        except Stop:
            return


class Run:
    """The shared budget: a deadline and a request count, both checked before every request."""

    def __init__(self, seconds: float, max_requests: int) -> None:
        self.deadline = time.monotonic() + seconds
        self.left = max_requests
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            if self.left <= 0 or time.monotonic() >= self.deadline:
                return False
            self.left -= 1
            return True


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report(stats: Stats, elapsed: float, learners: int) -> None:
    print(
        f"\n{learners} learners, {elapsed:.1f} s, {stats.requests} requests "
        f"({stats.requests / elapsed:.1f}/s)"
    )
    print(f"{'kind':<13}{'count':>7}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    for kind in ("login_page", "login", "submit_page", "submit", "status", "leaderboard"):
        values = stats.latencies.get(kind, [])
        print(
            f"{kind:<13}{len(values):>7}{stats.errors.get(kind, 0):>8}"
            f"{percentile(values, 50) * 1000:>9.0f}{percentile(values, 95) * 1000:>9.0f}"
            f"{(max(values) if values else float('nan')) * 1000:>9.0f}"
        )
    print(
        f"scored: {stats.scored} submissions; submit-to-scored p50 {percentile(stats.to_scored, 50):.2f} s, "
        f"p95 {percentile(stats.to_scored, 95):.2f} s; scoring errors: {stats.errors.get('scoring', 0)}"
    )
    total = sum(stats.errors.values())
    print(f"errors: {total}")
    for sample in stats.samples:
        print("  " + sample)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="drive this running site instead of starting one (loopback only)")
    parser.add_argument("--learners", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--max-requests", type=int, default=50_000)
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    parser.add_argument("--scoring-workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--broker-url", help="default: an embedded Redis, as in make demo")
    parser.add_argument(
        "--setup-only", action="store_true", help="create the learners and the challenge, then exit"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary var/ directory")
    args = parser.parse_args()

    site = None
    if args.url:
        host = urllib.parse.urlsplit(args.url).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("refusing to load a site that is not on loopback")
        base = args.url.rstrip("/")
        ids = [f"q{i:05d}" for i in range(400)]
    else:
        site = Site(args)
        print(f"setting up {args.learners} learners in {site.var} ...", flush=True)
        ids = site.setup(args.learners)
        if args.setup_only:
            print(f"done; var dir {site.var} (DATABASE_URL={site.env['DATABASE_URL']})")
            return 0
        site.start()
        base = site.url
    body = ("id,target\n" + "".join(f"{x},{(i * 7919 % 100) / 100}\n" for i, x in enumerate(ids))).encode()

    stats = Stats()
    run = Run(args.seconds, args.max_requests)
    learners = [Learner(base, f"load{i:04d}", body, stats, run) for i in range(args.learners)]
    threads = [threading.Thread(target=learner.live, daemon=True) for learner in learners]
    started = time.monotonic()
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            # A thread stuck in a request returns within REQUEST_TIMEOUT of the deadline.
            thread.join(timeout=max(0.0, run.deadline - time.monotonic()) + REQUEST_TIMEOUT + 5)
        elapsed = time.monotonic() - started
        report(stats, elapsed, args.learners)
        if site:
            drain = time.monotonic() + 60
            counts = site.counts()
            while (counts.get("queued", 0) or counts.get("scoring", 0)) and time.monotonic() < drain:
                time.sleep(1)
                counts = site.counts()
            print(f"submissions in the database after draining: {counts}")
            if counts.get("queued", 0) or counts.get("scoring", 0) or counts.get("failed", 0):
                stats.errors["stuck_or_failed"] += 1
    finally:
        if site:
            site.stop()
    return 1 if sum(stats.errors.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
