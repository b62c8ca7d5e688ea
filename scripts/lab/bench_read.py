#!/usr/bin/env python3
"""The read benchmark behind scripts/bench-read.sh (run that: it builds flagfleet and brings
the lab up first). Python 3 standard library only.

A no-op `flagfleet plan` of SPOKES spoke entries against the same plan of one of them, in
the same run, with every request delayed by LATENCY ms (scripts/lab/latency_proxy.py): the
distance to remote data centers, which the lab's loopback does not have. The hub is the lab
hub; the entries are spread over the lab's other four 8.2.0 servers (spoke1-3, strict; a
spoke may not be the hub itself), all five seeded with the same FLAGS flags, so that every
plan is empty. Each run reports its wall
time and the CPU seconds each server, PostgreSQL, the proxy and flagfleet used, and how
many of the machine's cores were busy (from /proc), so that a reader can tell whether the
servers' CPU or the distance was the limit.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.path.join(ROOT, "scripts", "lab.sh")
PROXY = os.path.join(ROOT, "scripts", "lab", "latency_proxy.py")
SERVERS = ["hub", "spoke1", "spoke2", "spoke3", "strict"]  # the lab's Unleash 8.2.0 servers
PIDS = os.path.join(ROOT, ".lab", "pids")
PG_PID = os.path.join(ROOT, ".lab", "pg", "data", "postmaster.pid")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def note(msg):
    print("bench-read: " + msg, file=sys.stderr, flush=True)


def snapshot(n, multi_every):
    """A hub snapshot of n flags in production: one strategy with a constraint each, and two
    strategies (in an order other than their names') on every multi_every-th flag."""
    flags = {}
    for i in range(n):
        name = f"read-{i:05d}"
        first = {"name": "flexibleRollout",
                 "parameters": {"groupId": name, "rollout": str(i % 100), "stickiness": "default"},
                 "constraints": [{"context_name": "appName", "operator": "IN", "values": ["web"]}]}
        strategies = [first]
        if multi_every and i % multi_every == 0:
            strategies = [{"name": "default", "title": "fallback"}, first]
        flags[name] = {"type": "release", "impression_data": False, "stale": False,
                       "tags": [{"type": "simple", "value": f"team-{i % 5}"}],
                       "environments": {"production": {"enabled": i % 2 == 0, "strategies": strategies}}}
    state = {"project": "default", "environments": ["production"], "flags": flags,
             "context_fields": {}, "segments": {},
             "strategies": {"flexibleRollout": {"builtin": True}, "default": {"builtin": True}},
             "tag_types": {"simple": {"builtin": True}}}
    return {"format": "flagfleet-snapshot", "format_version": 1,
            "source": {"instance": "bench", "location": "generated"}, "state": state}


def live(name, url, token_env):
    return f'name = "{name}"\nurl = "{url}"\ntoken_env = "{token_env}"\n'


def ticks(pid, children=False):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    t = int(fields[11]) + int(fields[12])
    if children:
        t += int(fields[13]) + int(fields[14])
    return t


def pid_of(path):
    with open(path) as f:
        return int(f.readline().strip())


def descendants(root):
    """root and every process below it (PostgreSQL's backends)."""
    parent = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as f:
                parent[int(pid)] = next(int(l.split()[1]) for l in f if l.startswith("PPid:"))
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(c for c, pp in parent.items() if pp == p)
    return out


def cpu(proxy_pid):
    """CPU seconds so far: the machine's (all, busy), each server's, this lab's PostgreSQL
    (the postmaster with what it reaped, and its live backends), the proxy's and
    flagfleet's (this script's reaped children)."""
    with open("/proc/stat") as f:
        t = [int(v) for v in f.readline().split()[1:9]]
    snap = {"all": sum(t) / CLK_TCK, "busy": (sum(t) - t[3] - t[4]) / CLK_TCK}
    for s in SERVERS:
        snap[s] = ticks(pid_of(os.path.join(PIDS, f"{s}.pid"))) / CLK_TCK
    pg = pid_of(PG_PID)
    snap["postgres"] = sum(ticks(p, children=(p == pg)) for p in descendants(pg)) / CLK_TCK
    snap["proxy"] = ticks(proxy_pid) / CLK_TCK
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    snap["flagfleet"] = r.ru_utime + r.ru_stime
    return snap


def timed(cmd, env, proxy_pid):
    before = cpu(proxy_pid)
    t0 = time.monotonic()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    after = cpu(proxy_pid)
    if p.returncode != 0:
        raise SystemExit(f"bench-read: {' '.join(cmd[-4:])} exited {p.returncode} (a plan must be empty):\n"
                         + p.stdout[-2000:] + p.stderr[-2000:])
    used = {k: after[k] - before[k] for k in before}
    cores = used["busy"] / used["all"] * os.cpu_count() if used["all"] else 0.0
    return wall, used, cores


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flags", type=int, default=100)
    ap.add_argument("--multi-every", type=int, default=20,
                    help="every Nth flag has two strategies (0: none)")
    ap.add_argument("--spokes", type=int, default=20)
    ap.add_argument("--latency", type=int, default=20, help="ms added to every request")
    ap.add_argument("--runs", type=int, default=5, help="runs of each plan, alternated")
    ap.add_argument("--servers", type=int, default=len(SERVERS),
                    help="spread the spokes over the first N of " + ", ".join(SERVERS))
    ap.add_argument("--bin", action="append",
                    help="flagfleet binary (repeat to compare builds in the same run, alternated)")
    ap.add_argument("--no-seed", action="store_true", help="the servers already hold the flags")
    ap.add_argument("--plan-args", default="", help="more arguments for both plans")
    a = ap.parse_args()
    bins = a.bin or [os.path.join(ROOT, "target", "release", "flagfleet")]
    servers = SERVERS[:a.servers]
    env = dict(os.environ)
    base = int(env.get("FLAGFLEET_LAB_PORT_BASE", "4242"))
    ports = {s: int(env[f"FLAGFLEET_LAB_{s.upper()}_URL"].rsplit(":", 1)[1]) for s in SERVERS}
    proxied = {s: base + 20 + i for i, s in enumerate(SERVERS)}
    work = tempfile.mkdtemp(prefix="bench-read-")
    tokens = {s: f"FLAGFLEET_LAB_{s.upper()}_TOKEN" for s in SERVERS}

    if not a.no_seed:
        note(f"seeding {a.flags} flags into {', '.join(servers)} (reset first)")
        subprocess.run([LAB, "reset", *servers], check=True, capture_output=True)
        with open(os.path.join(work, "hub.json"), "w") as f:
            json.dump(snapshot(a.flags, a.multi_every), f)
        with open(os.path.join(work, "seed.toml"), "w") as f:
            f.write('[hub]\nfile = "hub.json"\nenvironments = ["production"]\n')
            for s in servers:
                f.write("[[spokes]]\n" + live(f"lab-{s}", env[f"FLAGFLEET_LAB_{s.upper()}_URL"], tokens[s]))
        subprocess.run([bins[-1], "-q", "-c", os.path.join(work, "seed.toml"), "apply", "--auto-approve",
                        "--backup-dir", os.path.join(work, "backups")], env=env, check=True,
                       stdout=subprocess.DEVNULL)

    proxy = subprocess.Popen([sys.executable, PROXY, str(a.latency),
                              *(f"{proxied[s]}:{ports[s]}" for s in SERVERS)],
                             stdout=subprocess.PIPE, text=True)
    try:
        if proxy.stdout.readline().strip() != "ready":
            raise SystemExit("bench-read: the latency proxy did not start")
        topo = os.path.join(work, "fleet.toml")
        with open(topo, "w") as f:
            f.write(f'[hub]\nurl = "http://127.0.0.1:{proxied["hub"]}"\ntoken_env = "{tokens["hub"]}"\n'
                    'environments = ["production"]\n')
            for i in range(a.spokes):
                s = servers[1:][i % (len(servers) - 1)]  # e01 is spoke1, then spoke2, ...
                f.write("[[spokes]]\n" + live(f"e{i + 1:02d}", f"http://127.0.0.1:{proxied[s]}", tokens[s]))
        results = {}
        for b in bins:
            plan = [b, "-q", "-c", topo, "plan", "--detailed-exitcode", *a.plan_args.split()]
            timed(plan, env, proxy.pid)  # warm-up (connections, caches), not counted
            results[b] = {"one": [], "all": []}
        for _ in range(a.runs):
            for b in bins:
                plan = [b, "-q", "-c", topo, "plan", "--detailed-exitcode", *a.plan_args.split()]
                results[b]["one"].append(timed(plan + ["--spoke", "e01"], env, proxy.pid))
                results[b]["all"].append(timed(plan, env, proxy.pid))
    finally:
        proxy.terminate()
        proxy.wait()
        subprocess.run(["rm", "-rf", work])

    multi = len(range(0, a.flags, a.multi_every)) if a.multi_every else 0
    print(f"no-op plan, {a.flags} flags ({multi} with two strategies), production only, "
          f"spokes spread over {', '.join(servers)}; {a.latency} ms added to every request; "
          f"{a.runs} runs of each, alternated; median run shown")
    cols = ["flagfleet", *servers, "postgres", "proxy"]
    for b in bins:
        version = subprocess.run([b, "--version"], capture_output=True, text=True).stdout.strip()
        print(f"\n{b} ({version})")
        print(f"{'plan':<16}{'wall':>8}{'cores':>7}  CPU s: " + " ".join(f"{c:>9}" for c in cols))
        med = {}
        for key, label in (("one", "1 spoke (e01)"), ("all", f"{a.spokes} spokes")):
            runs = sorted(results[b][key], key=lambda r: r[0])
            wall, used, cores = runs[len(runs) // 2]
            med[key] = (wall, used, cores)
            print(f"{label:<16}{wall:>7.2f}s{cores:>7.2f}         "
                  + " ".join(f"{used[c]:>9.2f}" for c in cols))
            print(f"{'':<16}all runs: " + ", ".join(f"{r[0]:.2f}" for r in results[b][key]))
        print(f"ratio {a.spokes} spokes / 1 spoke (medians): {med['all'][0] / med['one'][0]:.2f}")
        # What the lab's CPU alone costs the many-spoke run: every process's CPU seconds
        # spread over all cores is a floor no client can go under on this machine.
        wall, used, cores = med["all"]
        floor = sum(used[c] for c in cols) / os.cpu_count()
        bound = "the lab's CPU" if floor > wall / 2 or cores > 0.8 * os.cpu_count() else "distance"
        print(f"CPU floor of the {a.spokes}-spoke run: {floor:.2f} s of its {wall:.2f} s "
              f"({sum(used[c] for c in cols):.2f} CPU-s over {os.cpu_count()} cores, {cores:.2f} busy): "
              f"bound by {bound}")

if __name__ == "__main__":
    main()
