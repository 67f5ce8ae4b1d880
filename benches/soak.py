#!/usr/bin/env python3
"""Soak runner: tether under steady client traffic and random faults for simulated hours.

It starts one `tether sim` per provider profile (linear, github, notion, todoist,
atlassian, generic) with every lifetime divided by --time-scale, signs a throwaway
TETHER_HOME in to each through the stand-in browser, runs --serves `tether serve`
processes on that one vault, and has a client worker per (serve, connection) call the
`echo` tool through its endpoint secret at a steady rate. Meanwhile, at seeded random
times, it SIGKILLs a serve and restarts it, SIGSTOPs a serve for a few seconds (it wakes up
with expired tokens), freezes a simulator (SIGSTOP), holds or drops a refresh answer, fails
token calls with 500 / 429 / a hang, and evicts every access token.

At the end it prints (and writes with --json FILE): client calls and failures by cause,
forced sign-ins (connections found in `needs-reauth` by polling `tether list --json`, or
whose clients have been told for 5 s to sign in while the list says otherwise; each one
signed in again so the run continues), refreshes per token lifetime per profile, token
calls, and the RSS of each serve over time, with the targets beside them. It exits 0
unless the harness itself broke; a missed target is a finding, not an error.

    python3 benches/soak.py [--bin target/release/tether] [--hours 24] [--time-scale 720]
                            [--serves 3] [--seed N] [--json FILE]

Harness choices: half the workers speak the stateless 2026-07-28 revision, half 2025-11-25
with an initialize and a session; a call is "killed", not failed, when its serve was
SIGKILLed while it was in flight; serve 0 is never killed, so one RSS series spans the run;
the serves get TETHER_HTTP_TIMEOUT_SECS=--http-timeout, since real-second constants do not
scale (tether's 30 s would be 6 simulated hours at x720), and the `timeout` fault hangs a
little longer than that. A SIGSTOP is not a machine suspend: the monotonic clock runs on.

Python 3 standard library only; not part of `cargo test`. Every process it starts is
stopped by PID on exit (Ctrl-C included) and the temporary home is removed.
"""

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BROWSER = os.path.join(ROOT, "tests", "fixtures", "fetch-browser")
PROFILES = ("linear", "github", "notion", "todoist", "atlassian", "generic")
HOUR, DAY = 3600, 86400
# Access-token lifetimes in real-world seconds, (min, max), from src/sim/profile.rs.
ACCESS_LIFE = {
    "linear": (HOUR, HOUR), "github": (8 * HOUR, 8 * HOUR), "notion": (HOUR, HOUR),
    "todoist": (3650 * DAY, 3650 * DAY), "atlassian": (30 * 60, 55 * 60),
    "generic": (HOUR, HOUR),
}
NO_REFRESH = {"todoist"}  # no refresh token is ever issued
LEAD = 60  # crates/core/src/engine/timing.rs: refresh ≥ 60 real s before expiry, never before half
ALLOWED_REAUTH = {"invalid_grant.lost_response"}
CHAOS_KINDS = ("kill_serve", "suspend_serve", "freeze_sim", "hold_refresh", "fail_500",
               "fail_429", "fail_timeout", "drop_refresh", "evict_access")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "tether"),
                   help="the tether binary (default: this checkout's release build)")
    p.add_argument("--hours", type=float, default=24.0, help="simulated hours to run")
    p.add_argument("--time-scale", type=float, default=720.0, help="divides every lifetime")
    p.add_argument("--serves", type=int, default=3, help="tether serve processes on one vault")
    p.add_argument("--seed", type=int, default=None, help="chaos and traffic seed (default: random)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--call-every", type=float, default=0.75,
                   help="real seconds between calls of one worker (one per serve and connection)")
    p.add_argument("--chaos-every", type=float, default=90.0,
                   help="mean simulated minutes between chaos events")
    p.add_argument("--http-timeout", type=float, default=2.0,
                   help="TETHER_HTTP_TIMEOUT_SECS for the serves (tether's 30 s default would "
                        "be 6 simulated hours at x720)")
    p.add_argument("--call-timeout", type=float, default=30.0, help="client call timeout, s")
    p.add_argument("--keep-home", action="store_true", help="keep the home and its logs")
    a = p.parse_args()
    if a.serves < 1 or a.hours <= 0 or a.time_scale < 1 or a.call_every <= 0:
        p.error("--serves >= 1, --hours > 0, --time-scale >= 1 and --call-every > 0 please")
    if a.seed is None:
        a.seed = random.randrange(1 << 31)
    a.run_secs = a.hours * HOUR / a.time_scale
    return a


class Harness:
    """Everything the phases share: processes, counters, the event log."""

    def __init__(self, args):
        self.args = args
        self.t0 = time.monotonic()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.procs = []  # every Popen started, for clean-up by PID
        self.sims = {}  # profile -> {"proc", "mcp", "base"}
        self.slots = []  # ServeSlot per serve
        self.secrets = {}  # (slot, profile) -> secret
        self.calls = Counter()  # ok / failed / killed
        self.failures = Counter()  # cause -> n
        self.failures_by_conn = defaultdict(Counter)  # cause -> profile -> n
        self.killed = Counter()  # cause -> n, calls in flight to a killed serve
        self.examples = {}  # cause -> first message seen
        self.failure_log = []  # (t, slot, profile, cause, t the failing streak began)
        self.streaks = {}  # (slot, profile) -> t of the first failure since the last success
        self.auth_failing = {}  # profile -> (t, diagnosis): -32001 answers since the last success
        self.latencies = []
        self.suspended_calls = []  # latency of calls that overlapped a SIGSTOP
        self.reauths = []  # {"t", "connection", "diagnosis", "signed_in"}
        self.states_seen = Counter()
        self.chaos = []  # {"t", "kind", "target", "detail"}
        self.harness_errors = []
        self.list_failures = 0
        self.initializes = 0  # calls that were an initialize (2025-11-25 workers)
        self.home = tempfile.mkdtemp(prefix="tether-soak-")
        self.logs = os.path.join(self.home, "logs")
        os.makedirs(os.path.join(self.home, "user"))
        os.makedirs(self.logs)
        self.env = dict(os.environ)
        for k in ("TETHER_VAULT_KEY", "CODEX_HOME", "TETHER_BIND"):
            self.env.pop(k, None)
        self.env.update(TETHER_HOME=self.home, HOME=os.path.join(self.home, "user"),
                        XDG_CONFIG_HOME=os.path.join(self.home, "user", ".config"),
                        TETHER_KEY_SOURCE="file", RUST_BACKTRACE="0",
                        DBUS_SESSION_BUS_ADDRESS="unix:path=/nonexistent")

    def now(self):
        return time.monotonic() - self.t0

    def sim_hours(self, t=None):
        return (self.now() if t is None else t) * self.args.time_scale / HOUR

    def spawn(self, argv, name, extra_env=None):
        out = open(os.path.join(self.logs, name + ".out"), "w")
        err = open(os.path.join(self.logs, name + ".err"), "w")
        env = dict(self.env, **(extra_env or {}))
        proc = subprocess.Popen([self.args.bin] + argv, stdout=out, stderr=err, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()
        err.close()
        self.procs.append(proc)
        return proc, os.path.join(self.logs, name + ".out")

    def tether(self, argv, timeout=60, browser=False):
        env = dict(self.env, BROWSER=BROWSER) if browser else self.env
        return subprocess.run([self.args.bin] + argv, env=env, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)


class HarnessError(Exception):
    pass


def first_line(proc, path, what, timeout=30):
    """The first line a child wrote to its stdout file (the URL it serves)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path) as f:
            text = f.read()
        if "\n" in text:
            return text.split("\n", 1)[0].strip()
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise HarnessError(f"{what} printed no URL (exit {proc.poll()}); see {path[:-4]}.err")


def http_json(url, body=None, timeout=10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


# ---------------------------------------------------------------- setup phases

def start_sims(h):
    for profile in PROFILES:
        argv = ["sim", "--profile", profile, "--time-scale", str(h.args.time_scale)]
        proc, out = h.spawn(argv, f"sim-{profile}")
        mcp = first_line(proc, out, f"tether sim --profile {profile}")
        h.sims[profile] = {"proc": proc, "mcp": mcp, "base": mcp[: -len("/mcp")]}


def sign_in(h, name):
    r = h.tether(["login", name, "--timeout", "20"], timeout=40, browser=True)
    lines = (r.stderr or r.stdout).strip().splitlines() or [""]
    return r.returncode == 0, lines[-1][:300]


def add_and_sign_in_all(h):
    for profile, sim in h.sims.items():
        r = h.tether(["add", profile, sim["mcp"]])
        if r.returncode != 0:
            raise HarnessError(f"tether add {profile}: {r.stderr.strip()}")
        ok, why = sign_in(h, profile)
        if not ok:
            raise HarnessError(f"tether login {profile}: {why}")


class ServeSlot:
    """One `tether serve`, restarted in place when chaos kills it."""

    def __init__(self, index):
        self.index = index
        self.proc = None
        self.url = None
        self.gen = 0  # bumped before each kill: a call that saw another value was in flight
        self.stops = 0  # bumped around each SIGSTOP
        self.up = threading.Event()
        self.instances = []  # {"pid", "started", "rss": [(t, kB)]}


def start_serve(h, slot):
    n = len(slot.instances)
    env = {"TETHER_HTTP_TIMEOUT_SECS": str(h.args.http_timeout)}
    proc, out = h.spawn(["serve", "--bind", "127.0.0.1:0"], f"serve{slot.index}.{n}", env)
    slot.url = first_line(proc, out, f"tether serve #{slot.index}")
    slot.proc = proc
    slot.instances.append({"pid": proc.pid, "started": h.now(), "rss": []})
    slot.up.set()


def endpoint_secrets(h):
    for slot in h.slots:
        for profile in PROFILES:
            r = h.tether(["url", profile, "--client", f"soak-{slot.index}"])
            m = re.search(r"/s/([^/\s]+)/mcp", r.stdout)
            if r.returncode != 0 or not m:
                raise HarnessError(f"tether url {profile}: {r.stderr.strip()}")
            h.secrets[(slot.index, profile)] = m.group(1)


# ---------------------------------------------------------------- client traffic

def post(url, secret, body, protocol, session=None, timeout=30.0):
    """One JSON-RPC POST to /s/<secret>/mcp; returns (status, headers, message or None)."""
    host, port = url[len("http://"):].rsplit(":", 1)
    headers = {"content-type": "application/json",
               "accept": "application/json, text/event-stream"}
    if body["method"] != "initialize":
        headers["mcp-protocol-version"] = protocol
    if protocol >= "2026-07-28":  # stateless revision: the method and tool name as headers
        headers["mcp-method"] = body["method"]
        headers["mcp-name"] = body.get("params", {}).get("name", "")
    if session:
        headers["mcp-session-id"] = session
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("POST", f"/s/{secret}/mcp", json.dumps(body), headers)
        res = conn.getresponse()
        raw = res.read().decode("utf-8", "replace")
        hdrs = {k.lower(): v for k, v in res.getheaders()}
    finally:
        conn.close()
    msg = None
    if "text/event-stream" in hdrs.get("content-type", ""):
        for line in raw.splitlines():  # the last message carrying our id is the answer
            if line.startswith("data:"):
                try:
                    m = json.loads(line[5:])
                except ValueError:
                    continue
                if isinstance(m, dict) and m.get("id") == body.get("id"):
                    msg = m
    elif raw.strip():
        try:
            msg = json.loads(raw)
        except ValueError:
            msg = None
    return res.status, hdrs, msg


def classify(status, msg, expect_text=None):
    """'ok', or (cause, message) for a failed call."""
    data_of = lambda e: e.get("data") if isinstance(e.get("data"), dict) else {}
    if status == 202:
        return "ok"
    if status != 200:
        err = msg.get("error") if isinstance(msg, dict) else None
        diag = ""
        if isinstance(err, dict):
            diag = data_of(err).get("diagnosis") or err.get("diagnosis") or ""
        text = (err or {}).get("message", "") if isinstance(err, dict) else str(msg)[:200]
        return (f"http {status} {diag}".strip(), text)
    if not isinstance(msg, dict):
        return ("http 200 unreadable answer", "")
    if "error" in msg:
        e = msg["error"]
        return (f"jsonrpc {e.get('code')} {data_of(e).get('diagnosis') or '-'}",
                e.get("message", ""))
    result = msg.get("result") or {}
    if result.get("isError"):
        return ("tool isError", json.dumps(result)[:200])
    if expect_text is not None:
        texts = [c.get("text") for c in result.get("content", [])]
        if texts != [expect_text]:
            return ("wrong answer", json.dumps(result)[:200])
    return "ok"


def connection_cause(exc):
    if isinstance(exc, TimeoutError) or "timed out" in str(exc):
        return "connection timeout"
    return "connection " + {ConnectionRefusedError: "refused", ConnectionResetError: "reset",
                            http.client.RemoteDisconnected: "closed"}.get(type(exc),
                                                                          type(exc).__name__)


def record(h, slot, profile, outcome, gen, stops, latency):
    with h.lock:
        if outcome == "ok":
            h.calls["ok"] += 1
            h.latencies.append(latency)
            if slot.stops != stops:
                h.suspended_calls.append(latency)
            h.streaks.pop((slot.index, profile), None)
            h.auth_failing.pop(profile, None)
            return
        cause, message = outcome
        if slot.gen != gen:  # in flight to a process that was killed meanwhile
            h.calls["killed"] += 1
            h.killed[cause] += 1
            return
        h.calls["failed"] += 1
        h.failures[cause] += 1
        h.failures_by_conn[cause][profile] += 1
        h.examples.setdefault(cause, message[:300])
        began = h.streaks.setdefault((slot.index, profile), round(h.now(), 2))
        if cause.startswith("jsonrpc -32001 "):
            h.auth_failing.setdefault(profile, (h.now(), cause.split(" ", 2)[2]))
        if len(h.failure_log) < 5000:
            h.failure_log.append((round(h.now(), 2), slot.index, profile, cause, began))


def client_worker(h, slot, profile, protocol):
    """Calls `echo` through one serve for one connection at a steady rate until stopped."""
    rng = random.Random(f"{h.args.seed}/{slot.index}/{profile}")
    secret = h.secrets[(slot.index, profile)]
    session, n = None, 0
    next_at = time.monotonic() + rng.uniform(0, h.args.call_every)
    while not h.stop.wait(max(0.0, next_at - time.monotonic())):
        next_at = max(next_at + h.args.call_every, time.monotonic())
        if not slot.up.wait(1.0):
            continue
        url, gen, stops = slot.url, slot.gen, slot.stops
        n += 1
        started = time.monotonic()
        try:
            if protocol < "2026-07-28" and session is None:
                init = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                    "protocolVersion": protocol, "capabilities": {},
                    "clientInfo": {"name": "soak", "version": "1"}}}
                h.initializes += 1
                status, hdrs, msg = post(url, secret, init, protocol, None, h.args.call_timeout)
                outcome = classify(status, msg)
                if outcome == "ok":
                    session = hdrs.get("mcp-session-id")
                    post(url, secret, {"jsonrpc": "2.0", "method": "notifications/initialized"},
                         protocol, session, h.args.call_timeout)
            else:
                text = f"soak {slot.index} {profile} {n}"
                body = {"jsonrpc": "2.0", "id": n, "method": "tools/call",
                        "params": {"name": "echo", "arguments": {"text": text}}}
                status, _, msg = post(url, secret, body, protocol, session, h.args.call_timeout)
                outcome = classify(status, msg, text)
                if status == 404 and session:
                    session = None  # the upstream forgot the session: initialize again
        except (OSError, http.client.HTTPException) as e:
            outcome = (connection_cause(e), str(e)[:200])
        record(h, slot, profile, outcome, gen, stops, time.monotonic() - started)


# ---------------------------------------------------------------- watchers

def reauth_monitor(h):
    """Polls `tether list --json`; signs a connection in again when it needs it."""
    while not h.stop.wait(2.0):
        try:
            r = h.tether(["list", "--json"], timeout=30)
            rows = json.loads(r.stdout)
        except (ValueError, subprocess.TimeoutExpired):
            h.list_failures += 1  # reported; the next poll tries again
            continue
        for row in rows:
            name, state = row["name"], row["state"]
            with h.lock:
                h.states_seen[(name, state, row.get("diagnosis"))] += 1
                failing = h.auth_failing.get(name)
            if h.stop.is_set():
                return
            if state == "needs-reauth":
                sign_in_again(h, name, row.get("diagnosis"), "tether list")
            elif failing and h.now() - failing[0] > 5:
                # Clients have been told to sign in for 5 s while the vault says otherwise.
                sign_in_again(h, name, failing[1], f"client calls only (tether list: {state})")


def sign_in_again(h, name, diagnosis, seen_by):
    """One forced sign-in: up to 3 logins (a token fault may fail the first)."""
    event = {"t": round(h.now(), 2), "connection": name, "diagnosis": diagnosis,
             "seen_by": seen_by, "login_errors": []}
    for _ in range(3):
        ok, why = sign_in(h, name)
        if ok:
            break
        event["login_errors"].append(why)
        time.sleep(1)
    event["signed_in"] = ok
    with h.lock:
        h.reauths.append(event)
        h.auth_failing.pop(name, None)


def rss_sampler(h):
    while not h.stop.wait(2.0):
        for slot in h.slots:
            inst = slot.instances[-1] if slot.instances else None
            try:
                with open(f"/proc/{inst['pid']}/status") as f:
                    kb = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
                inst["rss"].append((round(h.now(), 1), kb))
            except (OSError, StopIteration, TypeError):
                pass


# ---------------------------------------------------------------- chaos

def set_faults(h, profile, **changes):
    base = h.sims[profile]["base"]
    plan = http_json(f"{base}/__sim/faults")
    plan.update(changes)
    http_json(f"{base}/__sim/faults", plan)


def refreshing_sim(h, rng):
    """A simulator that issues refresh tokens and has no fault pending."""
    free = []
    for p in PROFILES:
        if p in NO_REFRESH:
            continue
        plan = http_json(f"{h.sims[p]['base']}/__sim/faults")
        if not (plan["fail_token_calls"] or plan["drop_next_refresh"]
                or plan["hold_next_refresh_secs"]):
            free.append(p)
    return rng.choice(free) if free else None


def chaos_kill_serve(h, rng):
    # Serve 0 is never killed, so one RSS series spans the whole run.
    slot = h.slots[rng.randrange(1, len(h.slots))] if len(h.slots) > 1 else h.slots[0]
    slot.up.clear()
    slot.gen += 1
    old = slot.proc.pid
    os.kill(old, signal.SIGKILL)
    slot.proc.wait()
    start_serve(h, slot)
    return f"serve{slot.index}", f"pid {old} SIGKILL, restarted as {slot.proc.pid}"


def chaos_suspend_serve(h, rng):
    slot = rng.choice(h.slots)
    secs = rng.uniform(3, 8)
    slot.stops += 1
    os.kill(slot.proc.pid, signal.SIGSTOP)
    h.stop.wait(secs)
    os.kill(slot.proc.pid, signal.SIGCONT)
    slot.stops += 1
    return f"serve{slot.index}", f"SIGSTOP {secs:.1f} s ({secs * h.args.time_scale / 60:.0f} sim min)"


def chaos_freeze_sim(h, rng):
    profile = rng.choice(PROFILES)
    secs = rng.uniform(0.5, 1.5)
    proc = h.sims[profile]["proc"]
    os.kill(proc.pid, signal.SIGSTOP)
    time.sleep(secs)
    os.kill(proc.pid, signal.SIGCONT)
    return profile, f"SIGSTOP {secs:.1f} s"


def token_fault(kind):
    def act(h, rng):
        profile = refreshing_sim(h, rng)
        if profile is None:
            return None, "skipped: every simulator has a fault pending"
        if kind == "hold_refresh":
            set_faults(h, profile, hold_next_refresh_secs=1)
            return profile, "next refresh answered 1 s late"
        if kind == "drop_refresh":
            set_faults(h, profile, drop_next_refresh=True)
            return profile, "next refresh processed, answer dropped"
        fail_kind = kind.split("_")[1]
        hang = int(h.args.http_timeout) + 2
        set_faults(h, profile, fail_token_calls=1, fail_kind=fail_kind, retry_after_secs=1,
                   timeout_secs=hang)
        return profile, f"next token call fails ({fail_kind}" + (
            f", hangs {hang} s)" if fail_kind == "timeout" else ")")
    return act


def chaos_evict(h, rng):
    profile = rng.choice(PROFILES)
    http_json(f"{h.sims[profile]['base']}/__sim/evict-access", {})
    return profile, "every live access token evicted"


CHAOS = {"kill_serve": chaos_kill_serve, "suspend_serve": chaos_suspend_serve,
         "freeze_sim": chaos_freeze_sim, "evict_access": chaos_evict,
         **{k: token_fault(k) for k in CHAOS_KINDS if k.startswith(("fail_", "hold", "drop"))}}


def chaos_loop(h):
    """Seeded: exponential gaps; kinds from a shuffled bag, so a short run sees each one."""
    rng = random.Random(h.args.seed)
    mean = h.args.chaos_every * 60 / h.args.time_scale
    bag = []
    while not h.stop.wait(rng.expovariate(1 / mean)):
        if not bag:
            bag = list(CHAOS_KINDS)
            rng.shuffle(bag)
        kind = bag.pop()
        t = h.now()
        try:
            target, detail = CHAOS[kind](h, rng)
        except Exception as e:  # recorded; a serve that will not restart breaks the run
            target, detail = None, f"harness error: {e!r}"
            h.harness_errors.append(f"chaos {kind}: {e!r}")
        with h.lock:
            h.chaos.append({"t": round(t, 2), "sim_h": round(h.sim_hours(t), 2),
                            "kind": kind, "target": target, "detail": detail})


# ---------------------------------------------------------------- results

def sim_totals(h):
    return {p: http_json(f"{s['base']}/__sim/stats")["totals"] for p, s in h.sims.items()}


def schedule_ratio(profile, scale):
    """Refreshes per lifetime the engine's own schedule gives at this time scale."""
    lo, hi = ACCESS_LIFE[profile]
    lives = [(lo + (hi - lo) * i / 20) / scale for i in range(21)]
    at = [max(min(0.75 * life, life - LEAD), 0.5 * life) for life in lives]
    return sum(lives) / sum(at)


def refresh_table(h, before, after, elapsed):
    rows = []
    for p in PROFILES:
        lo, hi = ACCESS_LIFE[p]
        life_real = (lo + hi) / 2 / h.args.time_scale
        lifetimes = elapsed / life_real
        calls = after[p]["refresh_calls"] - before[p]["refresh_calls"]
        grants = after[p]["refresh_grants"] - before[p]["refresh_grants"]
        schedule = None if p in NO_REFRESH else schedule_ratio(p, h.args.time_scale)
        # Judged: tokens living 5 simulated minutes or more, at a time scale where the
        # engine's own schedule (its 60 real-second lead) allows <= 1.4.
        judged = (schedule is not None and schedule <= 1.4 and lo >= 300 and lifetimes >= 1)
        # A refresh is a grant the server made; a refused or failed call (the chaos's
        # injected 500s, 429s and hangs) is counted apart.
        rows.append({"profile": p, "life_sim_min": (lo + hi) / 2 / 60,
                     "life_real_s": round(life_real, 2), "lifetimes": round(lifetimes, 2),
                     "refresh_calls": calls, "refresh_grants": grants,
                     "per_lifetime": round(grants / lifetimes, 2) if lifetimes >= 1 else None,
                     "judged": judged,
                     "schedule": None if schedule is None else round(schedule, 2)})
    return rows


def rss_summary(h):
    out = []
    for slot in h.slots:
        for inst in slot.instances:
            kb = [v for _, v in inst["rss"]]
            if len(kb) < 4:
                continue
            q = max(1, len(kb) // 5)
            first, last = statistics.median(kb[:q]), statistics.median(kb[-q:])
            half = inst["rss"][len(kb) // 2:]  # growth in the second half, kB per real minute
            ts, vs = [t for t, _ in half], [v for _, v in half]
            mt, mv = statistics.fmean(ts), statistics.fmean(vs)
            var = sum((t - mt) ** 2 for t in ts)
            slope = sum((t - mt) * (v - mv) for t, v in half) / var * 60 if var else 0.0
            out.append({"serve": slot.index, "pid": inst["pid"], "samples": len(kb),
                        "min_kb": min(kb), "median_kb": statistics.median(kb),
                        "max_kb": max(kb), "first_kb": first, "last_kb": last,
                        "late_kb_per_min": round(slope, 1),
                        "flat": last <= first * 1.10 + 1024 if len(kb) >= 10 else None,
                        "series": inst["rss"]})
    return out


def log_scan(h):
    counts = Counter()
    for name in os.listdir(h.logs):
        if name.startswith("serve") and name.endswith(".err"):
            with open(os.path.join(h.logs, name), errors="replace") as f:
                for line in f:
                    for word in ("panicked", "ERROR", "WARN"):
                        counts[word] += word in line
    return dict(counts)


def blame(chaos, t, slot, profile, window=15.0):
    """The latest chaos event in the `window` s before a run of failures began (t),
    preferring one aimed at its connection or its serve."""
    recent = [c for c in chaos if t - window <= c["t"] <= t]
    aimed = [c for c in recent if c["target"] in (profile, f"serve{slot}")]
    pick = (aimed or recent)[-1:]
    return f"{pick[0]['kind']} {pick[0]['target']}" if pick else "none in the 15 s before"


def collect(h, before, elapsed, interrupted):
    after = sim_totals(h)
    lat = sorted(h.latencies)
    pct = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1) if lat else None
    after_chaos = Counter()
    for _, slot, profile, _, began in h.failure_log:
        after_chaos[blame(h.chaos, began, slot, profile)] += 1
    return {
        "args": {k: v for k, v in vars(h.args).items()}, "interrupted": interrupted,
        "elapsed_real_s": round(elapsed, 1),
        "elapsed_sim_h": round(elapsed * h.args.time_scale / HOUR, 2),
        "calls": dict(h.calls), "failures": dict(h.failures),
        "failures_by_connection": {k: dict(v) for k, v in h.failures_by_conn.items()},
        "failure_examples": h.examples, "failures_after_chaos": dict(after_chaos),
        "killed": dict(h.killed), "failure_log": h.failure_log,
        "latency_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
        "suspended_calls": {"n": len(h.suspended_calls),
                            "max_ms": round(max(h.suspended_calls, default=0) * 1000)},
        "forced_sign_ins": h.reauths,
        "states_seen": [{"connection": k[0], "state": k[1], "diagnosis": k[2], "polls": n}
                        for k, n in sorted(h.states_seen.items(), key=str)],
        "refresh": refresh_table(h, before, after, elapsed),
        "token_calls": {k: sum(t[k] - before[p][k] for p, t in after.items())
                        for k in ("token_calls", "refresh_calls", "refresh_grants",
                                  "faults_injected", "dropped_responses", "evictions",
                                  "invalid_grant_responses", "family_revocations", "mcp_401s",
                                  "registrations")},
        "sim_totals": after, "rss": rss_summary(h), "serve_logs": log_scan(h),
        "chaos": h.chaos, "harness_errors": h.harness_errors,
        "list_failures": h.list_failures, "initializes": h.initializes,
    }


def print_calls(r):
    calls, lat, sus = r["calls"], r["latency_ms"], r["suspended_calls"]
    print(f"\nClient calls: {sum(calls.values())}  ok {calls.get('ok', 0)}  failed "
          f"{calls.get('failed', 0)}  in flight at a kill {calls.get('killed', 0)}   "
          f"latency ms p50 {lat['p50']} p99 {lat['p99']} max {lat['max']}")
    print(f"  of which initialize (sessions): {r['initializes']}; calls across a SIGSTOP: "
          f"{sus['n']} (slowest {sus['max_ms']} ms)")
    for cause, n in sorted(r["failures"].items(), key=lambda x: -x[1]):
        by = ", ".join(f"{p} {k}" for p, k in sorted(r["failures_by_connection"][cause].items()))
        print(f"  failed {n:6}  {cause}  ({by})\n"
              f"                 e.g. {r['failure_examples'][cause]!r}")
    for cause, n in sorted(r["killed"].items(), key=lambda x: -x[1]):
        print(f"  killed {n:6}  {cause}")
    if r["failures_after_chaos"]:
        print("  failures by the chaos event before their run of failures began: " + ", ".join(
            f"{k}: {n}" for k, n in sorted(r["failures_after_chaos"].items(), key=lambda x: -x[1])))
    print(f"\nForced sign-ins: {len(r['forced_sign_ins'])}  (`tether list --json` polls that "
          f"failed: {r['list_failures']})")
    for e in r["forced_sign_ins"]:
        print(f"  t={e['t']:7.1f} s  {e['connection']:10} {e['diagnosis']}  seen by "
              f"{e['seen_by']}; signed in again: "
              f"{'yes' if e['signed_in'] else 'NO'}"
              + "".join(f"\n      a login failed: {x}" for x in e["login_errors"]))


def print_tokens(r):
    print("\nRefreshes per token lifetime (refresh grants the server made / lifetimes elapsed; "
          "calls include the failed ones):\n  profile    life sim  life real  lifetimes  calls  grants  "
          "per life  engine schedule")
    for x in r["refresh"]:
        per = "n/a" if x["per_lifetime"] is None else x["per_lifetime"]
        sched = "no refresh token" if x["schedule"] is None else x["schedule"]
        print(f"  {x['profile']:10} {x['life_sim_min']:6.0f} m {x['life_real_s']:8.1f} s "
              f"{x['lifetimes']:10} {x['refresh_calls']:6} {x['refresh_grants']:7}  "
              f"{per:>8}  {sched:>8}")
    print("  (the engine refreshes at ~75% of a life, but >= 60 real s before expiry and never "
          "before half of it:\n   1.33 per lifetime needs a token living >= 240 real s, x15 for "
          "1 h tokens; from x30 on it is 2.0 by design)")
    print("\nToken endpoint: " + ", ".join(f"{k} {v}" for k, v in r["token_calls"].items()))


def print_rss_and_chaos(r):
    print("\nRSS of each serve process (kB):")
    for x in r["rss"]:
        print(f"  serve{x['serve']} pid {x['pid']:>7}: {x['samples']:4} samples  min "
              f"{x['min_kb']}  median {x['median_kb']:.0f}  max {x['max_kb']}  first "
              f"{x['first_kb']:.0f} -> last {x['last_kb']:.0f}  (2nd half "
              f"{x['late_kb_per_min']:+.0f} kB/min)"
              + ("" if x["flat"] is None else f"  {'flat' if x['flat'] else 'GROWING'}"))
    print(f"  serve logs: {r['serve_logs']}")
    kinds = Counter(c["kind"] for c in r["chaos"])
    print(f"\nChaos events: {len(r['chaos'])} ("
          + ", ".join(f"{k} {kinds[k]}" for k in CHAOS_KINDS) + "; at most 80 listed)")
    for c in r["chaos"][:80]:
        print(f"  t={c['t']:7.1f} s ({c['sim_h']:6.2f} sim h)  {c['kind']:14} "
              f"{c['target'] or '-':10} {c['detail']}")


def print_targets(r):
    verdict = lambda ok, judged=True: ("PASS" if ok else "FAIL") if judged else "n/a "
    forced = [e for e in r["forced_sign_ins"] if e["diagnosis"] not in ALLOWED_REAUTH]
    failed = r["calls"].get("failed", 0)
    judged = [x for x in r["refresh"] if x.get("judged") and x["per_lifetime"] is not None]
    unjudged = [f"{x['profile']} (schedule {x['schedule']})" for x in r["refresh"]
                if not x.get("judged") and x["schedule"] is not None and x["schedule"] > 1.4]
    over = [f"{x['profile']} {x['per_lifetime']}" for x in judged if x["per_lifetime"] > 1.4]
    flat = [x for x in r["rss"] if x["flat"] is not None]
    print("\nTargets:")
    print(f"  [{verdict(not forced)}] 0 forced sign-ins except invalid_grant.lost_response: "
          f"{len(forced)}")
    print(f"  [{verdict(not failed)}] 0 failed calls outside the instants a process is "
          f"killed: {failed}")
    print(f"  [{verdict(not over, judged)}] <= 1.4 refreshes per lifetime (tokens living >= 5 "
          f"sim min): {', '.join(over) or ('all within' if judged else 'no lifetime elapsed')}"
          + (f"; not judged at this time scale: {', '.join(unjudged)}" if unjudged else ""))
    print(f"  [{verdict(all(x['flat'] for x in flat), flat)}] flat RSS (last fifth of the "
          f"samples <= first fifth +10% +1 MB): "
          + (", ".join(f"serve{x['serve']}/{x['pid']} {x['first_kb']:.0f}->{x['last_kb']:.0f}"
                       for x in flat) or "fewer than 10 samples"))


def print_report(r):
    a = r["args"]
    print(f"\ntether soak: {r['elapsed_sim_h']} simulated h at x{a['time_scale']:g} "
          f"({r['elapsed_real_s']} s real), {a['serves']} serves x {len(PROFILES)} connections, "
          f"seed {a['seed']}" + ("  [INTERRUPTED]" if r["interrupted"] else ""))
    print_calls(r)
    print_tokens(r)
    print_rss_and_chaos(r)
    print_targets(r)
    for e in r["harness_errors"]:
        print(f"harness error: {e}")


# ---------------------------------------------------------------- run

def run_soak(h):
    """Starts the traffic and the watchers, runs for the set time, stops them."""
    protocols = ("2026-07-28", "2025-11-25")  # stateless, and with a session
    threads = [threading.Thread(target=client_worker, daemon=True,
                                args=(h, slot, p, protocols[(slot.index + i) % 2]))
               for slot in h.slots for i, p in enumerate(PROFILES)]
    threads += [threading.Thread(target=f, args=(h,), daemon=True)
                for f in (reauth_monitor, rss_sampler, chaos_loop)]
    h.t0 = time.monotonic()  # every time in the report counts from here
    for t in threads:
        t.start()
    interrupted = False
    try:
        while h.now() < h.args.run_secs:
            time.sleep(min(5.0, h.args.run_secs - h.now()))
            print(f"  {h.now():6.0f} s  {dict(h.calls)}  chaos {len(h.chaos)}  "
                  f"sign-ins {len(h.reauths)}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: stopping and reporting", file=sys.stderr)
    elapsed = h.now()
    h.stop.set()
    for slot in h.slots:  # a worker may wait on a stopped serve
        if slot.proc and slot.proc.poll() is None:
            os.kill(slot.proc.pid, signal.SIGCONT)
    for t in threads:
        t.join(h.args.call_timeout + 5)
    return elapsed, interrupted


def cleanup(h):
    for proc in h.procs:
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGCONT)
                os.kill(proc.pid, signal.SIGTERM)
            except OSError:
                pass
    deadline = time.monotonic() + 5
    for proc in h.procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    if h.args.keep_home:
        print(f"home and logs kept in {h.home}", file=sys.stderr)
    else:
        shutil.rmtree(h.home, ignore_errors=True)


def interrupt(signum, frame):
    """Ctrl-C or SIGTERM: report if the soak had begun, then clean up."""
    raise KeyboardInterrupt


def main():
    args = parse_args()
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"soak: no tether binary at {args.bin} (cargo build --release, or --bin)")
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)  # also when started in the background (SIG_IGN)
    h = Harness(args)
    try:
        print(f"soak: {args.hours:g} simulated h at x{args.time_scale:g} = {args.run_secs:.0f} s "
              f"real, seed {args.seed}, home {h.home}", file=sys.stderr)
        start_sims(h)
        add_and_sign_in_all(h)
        h.slots = [ServeSlot(i) for i in range(args.serves)]
        for slot in h.slots:
            start_serve(h, slot)
        endpoint_secrets(h)
        before = sim_totals(h)
        elapsed, interrupted = run_soak(h)
        results = collect(h, before, elapsed, interrupted)
        print_report(results)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
        if h.harness_errors:
            return 2
    except (HarnessError, OSError, subprocess.SubprocessError, ValueError) as e:
        print(f"soak: the harness broke: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        return 130
    finally:
        cleanup(h)
    return 0


if __name__ == "__main__":
    sys.exit(main())
