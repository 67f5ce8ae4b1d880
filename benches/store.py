#!/usr/bin/env python3
"""The PostgreSQL store, measured: how fast a change reaches every replica, what a refresh
costs against the file vault, and how many refreshes per second replicas get through one
connection's lock.

It starts a throwaway PostgreSQL cluster (initdb + pg_ctl on a free loopback port; as the
`nobody` account when run as root), a `tether sim` (Linear), and three replicas: homes of
their own sharing one vault key, each `tether serve` on the store. Then:

- propagation: a new client secret made with `tether url` on one replica, polled for on the
  other two replicas' proxies every millisecond until they accept it (N times);
- refresh latency: `tether refresh` (a whole process: open the store, take the lock, the
  token request, store the result), the PostgreSQL store against the file vault (N times);
- refresh throughput: the three homes running `tether refresh` back to back for 20 s on one
  connection; refreshes per second, counted at the simulator.

    python3 benches/store.py [--bin target/release/tether] [--rounds 30]

Python 3 standard library only; needs PostgreSQL's server binaries (initdb, pg_ctl) and
psql. Not part of `cargo test`.
"""

import argparse
import glob
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def pg_bin():
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(found)
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not versions:
        sys.exit("PostgreSQL is not installed (initdb, pg_ctl): apt-get install postgresql")
    return versions[-1]


class Cluster:
    def __init__(self, root):
        self.dir = os.path.join(root, "pg")
        os.mkdir(self.dir)
        self.port = free_port()
        self.bin = pg_bin()
        self.prefix = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
        if self.prefix:
            os.chmod(root, 0o755)
            shutil.chown(self.dir, "nobody")
        data = os.path.join(self.dir, "data")
        self.server(["initdb", "-D", data, "-A", "trust", "-U", "tether", "--no-sync"])
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = os.path.join(self.dir, "log")
        self.server(["pg_ctl", "-D", data, "-o", opts, "-l", log, "-w", "start"])
        self.data = data
        subprocess.run(["psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "tether",
                        "-d", "postgres", "-c", "CREATE DATABASE vault"], check=True)

    def server(self, argv):
        argv = [os.path.join(self.bin, argv[0])] + argv[1:]
        subprocess.run(self.prefix + argv, check=True, stdout=subprocess.DEVNULL)

    def url(self):
        return f"postgres://tether@127.0.0.1:{self.port}/vault?sslmode=disable"

    def stop(self):
        self.server(["pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"])


def env_for(home, store=None):
    env = dict(os.environ, TETHER_HOME=home, TETHER_KEY_SOURCE="file", TETHER_NOTIFICATIONS="0",
               DBUS_SESSION_BUS_ADDRESS="unix:path=/nonexistent", HOME=os.path.join(home, "user"))
    env.pop("TETHER_VAULT_KEY", None)
    env.pop("TETHER_STORE", None)
    if store:
        env["TETHER_STORE"] = store
    return env


def tether(bin, home, store, *args, **kw):
    return subprocess.run([bin, *args], env=env_for(home, store), check=True,
                          capture_output=True, text=True, **kw)


def timed(fn, rounds):
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summary(samples):
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
    return {"p50_ms": round(statistics.median(samples), 1), "p95_ms": round(p95, 1),
            "max_ms": round(samples[-1], 1), "n": len(samples)}


def accepted(base, secret):
    req = urllib.request.Request(
        f"{base}/s/{secret}/mcp", method="POST",
        data=b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
        headers={"content-type": "application/json", "accept": "application/json, text/event-stream",
                 "mcp-protocol-version": "2026-07-28"})
    try:
        with urllib.request.urlopen(req, timeout=5) as res:
            return res.status < 400
    except urllib.error.HTTPError as e:
        return e.code not in (401, 403, 404)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default="target/release/tether")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--json")
    args = ap.parse_args()
    bin = os.path.abspath(args.bin)
    root = tempfile.mkdtemp(prefix="tether-store-bench-")
    procs = []
    cluster = None
    try:
        cluster = Cluster(root)
        store = cluster.url()
        sim = subprocess.Popen([bin, "sim", "--profile", "linear"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
        procs.append(sim)
        mcp = sim.stdout.readline().strip()
        stats_url = mcp.replace("/mcp", "/__sim/stats")
        homes = [os.path.join(root, f"r{i}") for i in range(3)]
        for h in homes:
            os.mkdir(h)
        browser = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                               "fetch-browser")
        tether(bin, homes[0], store, "add", "linear", mcp)
        subprocess.run([bin, "login", "linear", "--timeout", "20"], check=True, capture_output=True,
                       env=dict(env_for(homes[0], store), BROWSER=browser))
        for h in homes[1:]:
            shutil.copy(os.path.join(homes[0], "vault.key"), os.path.join(h, "vault.key"))
        bases = []
        for h in homes:
            port = free_port()
            p = subprocess.Popen([bin, "serve", "--bind", f"127.0.0.1:{port}"], env=env_for(h, store),
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            procs.append(p)
            bases.append(p.stdout.readline().strip())

        # Propagation: made on replica 0, accepted by replicas 1 and 2.
        reach = []
        for i in range(args.rounds):
            out = tether(bin, homes[0], store, "url", "linear", "--client", f"c{i}").stdout
            secret = out.splitlines()[1].strip().rsplit("/s/", 1)[1].removesuffix("/mcp")
            made = time.perf_counter()
            for base in bases[1:]:
                while not accepted(base, secret):
                    time.sleep(0.001)
            reach.append((time.perf_counter() - made) * 1000)

        # A forced refresh, the whole command, on each store.
        pg_refresh = timed(lambda: tether(bin, homes[1], store, "refresh", "linear"), args.rounds)
        file_home = os.path.join(root, "file")
        os.mkdir(file_home)
        tether(bin, homes[0], store, "store", "migrate", "--to", "file")
        shutil.copytree(homes[0], file_home, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("locks", "logs", "user"))
        file_refresh = timed(lambda: tether(bin, file_home, None, "refresh", "linear"), args.rounds)
        # (The file copy spent tokens the store's replicas hold: sign the store in again.)
        subprocess.run([bin, "login", "linear", "--timeout", "20"], check=True, capture_output=True,
                       env=dict(env_for(homes[0], store), BROWSER=browser))

        # Throughput: three homes refreshing one connection back to back for 20 s.
        def grants():
            with urllib.request.urlopen(stats_url) as res:
                return json.load(res)["totals"]["refresh_grants"]
        before = grants()
        deadline = time.time() + 20
        loop = f'while [ "$(date +%s)" -lt {int(deadline)} ]; do "{bin}" refresh linear >/dev/null || exit 1; done'
        workers = [subprocess.Popen(["bash", "-c", loop], env=env_for(h, store)) for h in homes]
        failed = sum(1 for w in workers if w.wait() != 0)
        per_second = (grants() - before) / 20

        result = {
            "propagation": summary(reach),
            "refresh_command_postgres": summary(pg_refresh),
            "refresh_command_file": summary(file_refresh),
            "refreshes_per_second_three_replicas": round(per_second, 1),
            "refresh_workers_failed": failed,
        }
        print(json.dumps(result, indent=2))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=2)
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if cluster:
            cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
