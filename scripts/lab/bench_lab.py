#!/usr/bin/env python3
"""The lab benchmark behind scripts/bench-lab.sh (run that, not this: it builds flagfleet and
brings the lab up first). Python 3 standard library only.

Seeds the lab hub with N flags in two environments, then measures, on the same data in the
same run, flagfleet against Unleash's own export/import: wall time of each whole step and
the HTTP requests each server answered during it (from the servers' Prometheus counters),
split into reads and writes. See the header of scripts/bench-lab.sh for the steps.

Exit codes: 0 measured (targets missed or not), 1 error, 3 measured but flagfleet
misbehaved (writes on a no-op apply, or a plan that is not empty right after an apply).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.path.join(ROOT, "scripts", "lab.sh")
BIN = os.path.join(ROOT, "target", "release", "flagfleet")
PROJECT = "default"
ENVS = ["development", "production"]  # what the lab's Unleash 8.2.0 ships (--environments)
INSTANCES = ["hub", "spoke1", "spoke2"]  # never spoke3: it allows one value per segment
SEGMENTS = 20
SETTLE_CORES = 0.3  # a timed step starts once the machine is this quiet (cores busy over 1 s)...
SETTLE_LIMIT = 60  # ...or after this many seconds of waiting
NOOP_RUNS = 3  # the no-op plan and apply are a second or two: the median of this many runs
# Express on the server refuses bodies over 500 kB (HTTP 413); stay well below.
IMPORT_BODY_LIMIT = 450_000
# Reads done by POST; every other non-GET request is a write.
READ_POSTS = {"/api/admin/features-batch/export", "/api/admin/search/features", "/api/admin/playground"}
SCRAPE_PATH = "/internal-backstage/prometheus"

SECRETS = []  # every token and PAT, scrubbed from anything printed


def redact(text):
    for s in SECRETS:
        if s:
            text = text.replace(s, "<redacted>")
    return text


def say(*parts):
    print(redact(" ".join(str(p) for p in parts)), flush=True)


def note(msg):
    print(redact("bench-lab: " + msg), file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


def url_of(name):
    return os.environ[f"FLAGFLEET_LAB_{name.upper()}_URL"]


def token_of(name):
    return os.environ[f"FLAGFLEET_LAB_{name.upper()}_TOKEN"]


# ---------------------------------------------------------------- HTTP


def http(method, url, token=None, body=None, timeout=600):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            ctype = resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        detail = e.read()[:2000].decode("utf-8", "replace")
        raise BenchError(f"{method} {url} -> HTTP {e.code}: {detail}") from None
    if raw and "json" in ctype:
        return json.loads(raw)
    return raw.decode("utf-8", "replace")


def export(name, env, token=None):
    return http("POST", url_of(name) + "/api/admin/features-batch/export",
                token or token_of(name), {"environment": env, "project": PROJECT})


# ---------------------------------------------------------------- request counting


LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(name):
    """Requests answered so far by instance `name`: {(method, path, status): count}, and
    the milliseconds the server spent answering them (request to response, as the server
    times it): {(method, path, status): ms}."""
    text = http("GET", url_of(name) + SCRAPE_PATH, timeout=60)
    counts, ms = {}, {}
    for line in text.splitlines():
        if line.startswith("http_request_duration_milliseconds_count{"):
            into, number = counts, lambda v: int(float(v))
        elif line.startswith("http_request_duration_milliseconds_sum{"):
            into, number = ms, float
        else:
            continue
        labels_part, _, value = line.rpartition("} ")
        labels = dict(LABEL.findall(labels_part))
        if labels.get("path") == SCRAPE_PATH:  # our own scrapes
            continue
        key = (labels.get("method", "?"), labels.get("path", "?"), labels.get("status", "?"))
        into[key] = into.get(key, 0) + number(value)
    return counts, ms


def scrape_all():
    with ThreadPoolExecutor(len(INSTANCES)) as pool:
        return dict(zip(INSTANCES, pool.map(scrape, INSTANCES)))


def is_write(method, path):
    return method not in ("GET", "HEAD", "OPTIONS") and path not in READ_POSTS


# ---------------------------------------------------------------- CPU accounting

CLK_TCK = os.sysconf("SC_CLK_TCK")
PIDS = os.path.join(ROOT, ".lab", "pids")
CPU_COLUMNS = ["client", "hub", "spoke1", "spoke2", "postgres"]


def proc_ticks(pid, children=False):
    """utime + stime of a process (and of its reaped children), in clock ticks; 0 if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks


def cpu_snapshot():
    """CPU seconds used so far: the machine's (busy and all), each lab server's, PostgreSQL's
    (every postgres process, plus what the postmaster reaped of ended backends) and the
    client's (this script and the programs it ran: flagfleet, or the baseline's requests)."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:9]]
    snap = {"all": sum(ticks) / CLK_TCK, "busy": (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK}
    for inst in INSTANCES:
        try:
            with open(os.path.join(PIDS, f"{inst}.pid")) as f:
                snap[inst] = proc_ticks(int(f.read().strip())) / CLK_TCK
        except FileNotFoundError:
            snap[inst] = 0.0
    pg = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/status") as f:
                ppid = next(int(l.split()[1]) for l in f if l.startswith("PPid:"))
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
        if comm == "postgres":  # the postmaster's parent is not postgres; it reaps backends
            pg += proc_ticks(pid, children=not is_postgres(ppid))
    snap["postgres"] = pg / CLK_TCK
    t = os.times()
    snap["client"] = t.user + t.system + t.children_user + t.children_system
    return snap


def is_postgres(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip() == "postgres"
    except FileNotFoundError:
        return False


class Step:
    def __init__(self, label, seconds, before, after, cpu_before=None, cpu_after=None):
        self.label = label
        self.seconds = seconds
        self.cpu = {k: cpu_after[k] - cpu_before[k] for k in cpu_before} if cpu_before else {}
        self.requests = {}  # instance -> {(method, path, status): n}
        self.ms = {}  # instance -> {(method, path, status): server milliseconds}
        for inst in INSTANCES:
            d, t = {}, {}
            (counts_after, ms_after), (counts_before, ms_before) = after[inst], before[inst]
            for key, n in counts_after.items():
                delta = n - counts_before.get(key, 0)
                if delta:
                    d[key] = delta
                    t[key] = ms_after.get(key, 0.0) - ms_before.get(key, 0.0)
            self.requests[inst] = d
            self.ms[inst] = t

    def cores(self):
        """How many of the machine's cores were busy on average during the step."""
        return self.cpu["busy"] / self.cpu["all"] * os.cpu_count() if self.cpu.get("all") else 0.0

    def count(self, inst, writes):
        return sum(n for (m, p, _), n in self.requests[inst].items() if is_write(m, p) == writes)

    def reads(self, inst):
        return self.count(inst, False)

    def writes(self, inst):
        return self.count(inst, True)

    def total_writes(self, insts=INSTANCES):
        return sum(self.writes(i) for i in insts)

    def failed(self):
        return sum(n for inst in INSTANCES for (_, _, s), n in self.requests[inst].items()
                   if not s.startswith("2"))

    def breakdown(self, writes_only=False, timed=False):
        """One row per instance and endpoint; `timed` adds the server's total and mean
        milliseconds per request (wall time inside the server, waits for PostgreSQL and
        for the CPU included)."""
        rows = []
        for inst in INSTANCES:
            for (m, p, s), n in sorted(self.requests[inst].items()):
                if writes_only and not is_write(m, p):
                    continue
                t = ""
                if timed:
                    ms = self.ms[inst].get((m, p, s), 0.0)
                    t = f" {ms / 1000:8.1f} s {ms / n:7.1f} ms/req "
                rows.append(f"      {inst:7} {n:6} {t} {m:6} {s} {p}")
        return rows


def busy_cores(seconds):
    """How many of the machine's cores were busy on average over the next `seconds`."""
    def read():
        with open("/proc/stat") as f:
            t = [int(v) for v in f.readline().split()[1:9]]
        return sum(t), sum(t) - t[3] - t[4]
    all0, busy0 = read()
    time.sleep(seconds)
    all1, busy1 = read()
    return (busy1 - busy0) / (all1 - all0) * os.cpu_count() if all1 > all0 else 0.0


def settle(label, quiet=SETTLE_CORES, limit=SETTLE_LIMIT):
    """Wait until the machine is quiet before a timed step: a step's writes leave PostgreSQL
    and the servers work to do afterwards (autovacuum, analyze, the servers' own jobs), which
    would otherwise be billed to whichever step comes next. Gives up after `limit` seconds
    (a machine shared with other work may never be quiet) and says so."""
    t0 = time.monotonic()
    while (cores := busy_cores(1.0)) > quiet:
        if time.monotonic() - t0 > limit:
            note(f"{label}: the machine did not settle in {limit} s ({cores:.2f} cores busy); measuring anyway")
            return
    waited = time.monotonic() - t0
    if waited > 1.5:
        note(f"{label}: waited {waited:.0f} s for the machine to settle")


def measure(label, fn, runs=1):
    """Time `fn` after the machine settled; with runs > 1, the median of that many runs
    (each after settling), for steps short enough that one run is mostly noise."""
    done = []
    for _ in range(runs):
        settle(label)
        before = scrape_all()
        cpu0 = cpu_snapshot()
        t0 = time.monotonic()
        fn()
        t1 = time.monotonic()
        cpu1 = cpu_snapshot()
        done.append(Step(label, t1 - t0, before, scrape_all(), cpu0, cpu1))
    step = sorted(done, key=lambda s: s.seconds)[len(done) // 2]
    runs_s = f" (median of {', '.join(f'{s.seconds:.2f}' for s in done)})" if runs > 1 else ""
    note(f"{label}: {step.seconds:.2f} s{runs_s}, machine {step.cores():.2f} of {os.cpu_count()} cores busy")
    step.runs = [s.seconds for s in done]
    return step


# ---------------------------------------------------------------- the hub's data


def hub_snapshot(n, changed=()):
    """N flags shaped like benches/support/fleet_gen.rs (1-3 strategies with constraints, a
    segment, strategy variants on every 4th flag, a tag, a parent every 50 flags, a custom
    strategy), in the environments of ENVS (production: 1-3 strategies; development: 1). Flags whose index is in `changed` get another rollout
    in production."""
    changed = set(changed)

    def constraint(field, values):
        return {"context_name": field, "operator": "IN", "values": values}

    state = {
        "project": PROJECT,
        "environments": ENVS,
        "flags": {},
        "context_fields": {f: {"stickiness": False, "legal_values": [{"value": f"{f}-{i}"} for i in range(10)]}
                           for f in ("region", "tenant", "plan")},
        "segments": {f"segment-{i:02}": {"constraints": [constraint("plan", [f"plan-{i % 10}"])]}
                     for i in range(SEGMENTS)},
        "strategies": {
            "flexibleRollout": {"builtin": True},
            "default": {"builtin": True},
            "by-tenant": {"title": "By tenant", "parameters": [
                {"name": "tenants", "type": "list", "required": False}]},
        },
        "tag_types": {"simple": {"builtin": True}, "team": {}},
    }
    for i in range(n):
        name = f"flag-{i:06}"
        rollout = 99 if i in changed else i % 100
        prod = [{
            "name": "flexibleRollout",
            "parameters": {"groupId": name, "rollout": str(rollout), "stickiness": "default"},
            "constraints": [constraint("region", ["region-1", "region-2"])],
            "segments": [f"segment-{i % SEGMENTS:02}"],
        }]
        if i % 4 == 0:
            # Unleash fills in a variant's stickiness; give it, or the seed never converges.
            prod[0]["variants"] = [{"name": v, "weight": 500, "weight_type": "variable",
                                    "stickiness": "default"} for v in ("a", "b")]
        if i % 3 != 0:
            prod.append({"name": "by-tenant", "parameters": {"tenants": "t1,t2"},
                         "constraints": [constraint("tenant", ["tenant-3"])]})
        if i % 5 == 0:
            prod.append({"name": "default", "disabled": True})
        dev = [{
            "name": "flexibleRollout",
            "parameters": {"groupId": name, "rollout": "100", "stickiness": "default"},
            "constraints": [constraint("region", ["region-0"])],
        }]
        flag = {
            "type": "release",
            "description": f"flag number {i}",
            "impression_data": False,
            "stale": False,
            "tags": [{"type": "team", "value": f"team-{i % 12}"}],
            "environments": {env: e for env, e in (
                ("development", {"enabled": i % 3 != 1, "strategies": dev}),
                ("production", {"enabled": i % 2 == 0, "strategies": prod}),
            ) if env in ENVS},
        }
        if i % 50 == 49:
            flag["dependencies"] = [{"feature": f"flag-{i - 49:06}", "enabled": True}]
        state["flags"][name] = flag
    return {"format": "flagfleet-snapshot", "format_version": 1,
            "source": {"instance": "bench-lab", "location": "generated"}, "state": state}


# ---------------------------------------------------------------- flagfleet


class Fleet:
    def __init__(self, work):
        self.work = work
        self.backups = os.path.join(work, "backups")
        envs = json.dumps(ENVS)
        self.seed_toml = os.path.join(work, "seed.toml")
        with open(self.seed_toml, "w") as f:
            f.write(f'[hub]\nfile = "hub.json"\nenvironments = {envs}\n'
                    f'[[spokes]]\nname = "lab-hub"\nurl = "{url_of("hub")}"\n'
                    f'token_env = "FLAGFLEET_LAB_HUB_TOKEN"\n')
        self.fleet_toml = os.path.join(work, "fleet.toml")
        with open(self.fleet_toml, "w") as f:
            f.write(f'[hub]\nurl = "{url_of("hub")}"\ntoken_env = "FLAGFLEET_LAB_HUB_TOKEN"\n'
                    f'environments = {envs}\n')
            for s in ("spoke1", "spoke2"):
                f.write(f'[[spokes]]\nname = "{s}"\nurl = "{url_of(s)}"\n'
                        f'token_env = "FLAGFLEET_LAB_{s.upper()}_TOKEN"\n')
        self.misbehaviour = []

    def run(self, topology, *args, ok=(0,)):
        cmd = [BIN, "-q", "--no-color", "-c", topology, *args]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode not in ok:
            shown = " ".join(os.path.relpath(a, ROOT) if a.startswith(ROOT + "/") else a for a in cmd)
            raise BenchError(f"`{shown}` exited {p.returncode}\n--- stdout\n{p.stdout[-4000:]}"
                             f"\n--- stderr\n{p.stderr[-4000:]}")
        return p

    def apply(self, *spokes):
        sel = [a for s in spokes for a in ("--spoke", s)]
        return self.run(self.fleet_toml, "apply", "--auto-approve", "--backup-dir", self.backups, *sel)

    def plan_summary(self, topology):
        """{spoke: (create, overwrite)} and the first few overwrite diffs."""
        p = self.run(topology, "plan", "--format", "json")
        plan = json.loads(p.stdout)
        summary, samples = {}, []
        for s in plan["spokes"]:
            if s.get("error"):
                raise BenchError(f"plan: spoke {s['name']}: {s['error']}")
            summary[s["name"]] = (s["summary"].get("create", 0), s["summary"].get("overwrite", 0))
            for a in s["actions"]:
                if a["action"] in ("create", "overwrite") and len(samples) < 3:
                    samples.append(f"{s['name']}: {a['action']} {a['kind']} {a['name']} "
                                   f"({a.get('reason', '')})\n"
                                   + (a.get("diff") or "")[:1500])
        return summary, samples

    def seed(self, snapshot):
        """Make the lab hub hold `snapshot` (flagfleet applies it, hub as a spoke)."""
        with open(os.path.join(self.work, "hub.json"), "w") as f:
            json.dump(snapshot, f)
        t0 = time.monotonic()
        self.run(self.seed_toml, "apply", "--auto-approve", "--backup-dir", self.backups)
        summary, samples = self.plan_summary(self.seed_toml)
        c, o = summary["lab-hub"]
        if c or o:
            self.misbehaviour.append(
                f"seeding the lab hub from a snapshot: plan right after apply still shows "
                f"{c} creates, {o} overwrites; e.g.\n" + "\n".join(samples))
        note(f"seeded the lab hub in {time.monotonic() - t0:.1f} s")

    def expect_empty_plan(self, after):
        summary, samples = self.plan_summary(self.fleet_toml)
        bad = {k: v for k, v in summary.items() if v != (0, 0)}
        if bad:
            self.misbehaviour.append(
                f"`flagfleet plan` right after {after} is not empty: "
                + ", ".join(f"{k}: {c} create, {o} overwrite" for k, (c, o) in bad.items())
                + "; e.g.\n" + "\n".join(samples))
        return summary


# ---------------------------------------------------------------- lab


def lab(*args):
    p = subprocess.run([LAB, *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise BenchError(f"scripts/lab.sh {' '.join(args)} failed:\n{p.stderr[-3000:]}")
    return p.stdout


def reset(*names):
    t0 = time.monotonic()
    lab("reset", *names)
    note(f"reset {' '.join(names)} ({time.monotonic() - t0:.0f} s)")
    if SERVER_CPUS:
        for name in names:
            cap_cpu(name, SERVER_CPUS)


# ---------------------------------------------------------------- one host per server

SERVER_CPUS = None  # --server-cpus: each server's CPU limit in cores, or None (bare lab)
CGROUP_V1 = "/sys/fs/cgroup/cpu"
CGROUP_V2 = "/sys/fs/cgroup"
CFS_PERIOD_US = 100_000


def cap_cpu(name, cores):
    """Limit lab server `name` to `cores` CPUs with a CPU cgroup of its own (the CFS quota),
    as a container's CPU limit does: each server then behaves like one on a host of its own
    instead of competing for the machine's cores. cgroup v2 or the v1 cpu controller."""
    with open(os.path.join(PIDS, f"{name}.pid")) as f:
        pid = f.read().strip()
    quota = int(cores * CFS_PERIOD_US)
    try:
        if os.path.isfile(os.path.join(CGROUP_V2, "cgroup.controllers")):
            with open(os.path.join(CGROUP_V2, "cgroup.subtree_control"), "w") as f:
                f.write("+cpu")
            group = os.path.join(CGROUP_V2, f"flagfleet-lab-{name}")
            os.makedirs(group, exist_ok=True)
            with open(os.path.join(group, "cpu.max"), "w") as f:
                f.write(f"{quota} {CFS_PERIOD_US}")
        else:
            group = os.path.join(CGROUP_V1, f"flagfleet-lab-{name}")
            os.makedirs(group, exist_ok=True)
            with open(os.path.join(group, "cpu.cfs_period_us"), "w") as f:
                f.write(str(CFS_PERIOD_US))
            with open(os.path.join(group, "cpu.cfs_quota_us"), "w") as f:
                f.write(str(quota))
        with open(os.path.join(group, "cgroup.procs"), "w") as f:
            f.write(pid)
    except OSError as e:
        raise BenchError(f"--server-cpus: cannot limit {name}'s CPU with a cgroup ({e}); "
                         "this needs root and a writable cgroup v2 or v1 cpu hierarchy") from None


def pat(name):
    secret = lab("pat", name).strip()
    if not secret:
        raise BenchError(f"scripts/lab.sh pat {name} printed no token")
    SECRETS.append(secret)
    return secret


# ---------------------------------------------------------------- baseline: export/import


def create_scaffolding(spoke):
    """What Unleash's export/import leaves to hand work, copied from the hub with the admin
    API: custom strategies and segments (and the context fields and tag type they and the
    flags use, so the import's validation has nothing to object to)."""
    hub, tok = url_of("hub"), token_of("hub")
    dst, dtok = url_of(spoke), token_of(spoke)
    have = {c["name"] for c in http("GET", dst + "/api/admin/context", dtok)}
    for c in http("GET", hub + "/api/admin/context", tok):
        if c["name"] not in have:
            http("POST", dst + "/api/admin/context", dtok,
                 {k: c[k] for k in ("name", "description", "legalValues", "stickiness") if k in c})
    have = {t["name"] for t in http("GET", dst + "/api/admin/tag-types", dtok)["tagTypes"]}
    for t in http("GET", hub + "/api/admin/tag-types", tok)["tagTypes"]:
        if t["name"] not in have:
            http("POST", dst + "/api/admin/tag-types", dtok,
                 {k: t[k] for k in ("name", "description", "icon") if t.get(k) is not None})
    have = {s["name"] for s in http("GET", dst + "/api/admin/strategies", dtok)["strategies"]}
    for s in http("GET", hub + "/api/admin/strategies", tok)["strategies"]:
        if s.get("editable") and s["name"] not in have:
            http("POST", dst + "/api/admin/strategies", dtok,
                 {k: s[k] for k in ("name", "title", "description", "parameters") if s.get(k) is not None})
    have = {s["name"] for s in http("GET", dst + "/api/admin/segments", dtok)["segments"]}
    for s in http("GET", hub + "/api/admin/segments", tok)["segments"]:
        if s["name"] not in have:
            body = {"name": s["name"], "description": s.get("description") or "",
                    "constraints": s["constraints"]}
            if s.get("project"):
                body["project"] = s["project"]
            http("POST", dst + "/api/admin/segments", dtok, body)


def import_chunks(data, env):
    """The export split into import bodies under IMPORT_BODY_LIMIT bytes, flags in name
    order (parents, named before their children here, land first)."""
    per_flag = {}
    for f in data["features"]:
        per_flag[f["name"]] = {k: [] for k in ("featureStrategies", "featureEnvironments",
                                               "featureTags", "dependencies", "links")}
        per_flag[f["name"]]["features"] = [f]
    for key, by in (("featureStrategies", "featureName"), ("featureEnvironments", "featureName"),
                    ("featureTags", "featureName"), ("dependencies", "feature"), ("links", "feature")):
        for item in data.get(key) or []:
            per_flag[item[by]][key].append(item)
    shared = {k: data.get(k) or [] for k in ("contextFields", "segments", "tagTypes")}
    base = len(json.dumps({"project": PROJECT, "environment": env, "data": shared})) + 200
    chunks, cur, size = [], None, 0
    for name in sorted(per_flag):
        parts = per_flag[name]
        n = len(json.dumps(parts)) + 10
        if cur is None or size + n > IMPORT_BODY_LIMIT:
            cur = {k: [] for k in ("features", "featureStrategies", "featureEnvironments",
                                   "featureTags", "dependencies", "links")}
            cur.update(shared)
            chunks.append(cur)
            size = base
        for k, items in parts.items():
            cur[k].extend(items)
        size += n
    bodies = []
    for c in chunks:
        body = json.dumps({"project": PROJECT, "environment": env, "data": c}).encode()
        if len(body) >= 500_000:
            raise BenchError(f"import chunk of {len(body)} bytes is too big")
        bodies.append(body)
    return bodies


def baseline_sync(pats, stats, at_once=False):
    """Export each environment from the hub once, then import into spoke1, then spoke2
    (`at_once`: into both at the same time)."""
    exports = {env: export("hub", env) for env in ENVS}

    def into(spoke):
        for env in ENVS:
            for body in import_chunks(exports[env], env):
                http("POST", url_of(spoke) + "/api/admin/features-batch/import", pats[spoke], body)
                stats["imports"] = stats.get("imports", 0) + 1
                stats["bytes"] = max(stats.get("bytes", 0), len(body))

    if at_once:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(into, ("spoke1", "spoke2")))
    else:
        for spoke in ("spoke1", "spoke2"):
            into(spoke)


def export_counts(name):
    out = {}
    for env in ENVS:
        d = export(name, env)
        out[env] = (len(d["features"]), len(d["featureStrategies"]),
                    sum(1 for e in d["featureEnvironments"] if e["enabled"]),
                    len(d["featureTags"]), sum(len(x["dependencies"]) for x in d["dependencies"]))
    return out


def check_baseline_import():
    want = export_counts("hub")
    lines = []
    for spoke in ("spoke1", "spoke2"):
        got = export_counts(spoke)
        if got != want:
            raise BenchError(f"baseline import incomplete on {spoke}: hub (flags, strategies, "
                             f"enabled, tags, dependencies) per env {want}, {spoke} {got}")
        lines.append(f"{spoke}: " + "; ".join(
            f"{env} {got[env][0]} flags, {got[env][1]} strategies, {got[env][2]} enabled, "
            f"{got[env][3]} tags, {got[env][4]} dependencies" for env in ENVS))
    return lines


# ---------------------------------------------------------------- the run


def main():
    global SERVER_CPUS, ENVS
    ap = argparse.ArgumentParser()
    ap.add_argument("--flags", type=int, default=1000)
    ap.add_argument("--environments", default=",".join(ENVS),
                    help="the environments synced, comma-separated, production among them "
                         "(default: both of the lab's; the issue's set-up is production alone)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--details", action="store_true", help="every step's requests by endpoint")
    ap.add_argument("--no-baseline-change", action="store_true",
                    help="skip the baseline sync after the 1 %% change (import rewrites everything: "
                         "it costs about a re-sync)")
    ap.add_argument("--import-at-once", action="store_true",
                    help="also time the cold import into both spokes at the same time: the most a "
                         "batch-import write path in flagfleet could gain (spokes at once, no fix-ups)")
    ap.add_argument("--server-cpus", type=float, metavar="CORES",
                    help="limit each Unleash server (hub, spoke1, spoke2) to CORES CPUs, as on hosts of "
                         "their own (a cgroup CPU quota); default: the bare lab, where they share the machine")
    args = ap.parse_args()
    n = args.flags
    envs = [e for e in args.environments.split(",") if e]
    if "production" not in envs or not set(envs) <= set(ENVS) or len(set(envs)) != len(envs):
        raise BenchError(f"--environments takes production and optionally development, "
                         f"comma-separated (got {args.environments!r})")
    ENVS = [e for e in ENVS if e in envs]
    if args.server_cpus is not None:
        if not 0.05 <= args.server_cpus <= os.cpu_count():
            raise BenchError(f"--server-cpus takes 0.05 to {os.cpu_count()} cores")
        SERVER_CPUS = args.server_cpus
    for inst in INSTANCES:
        SECRETS.append(token_of(inst))
    fleet = Fleet(args.work)
    changed = [i for i in range(n) if i % 100 == 37] or [0]
    original, modified = hub_snapshot(n), hub_snapshot(n, changed)
    steps = {}

    note(f"seeding the lab hub with {n} flags x {len(ENVS)} environments")
    reset("hub", "spoke1", "spoke2")
    fleet.seed(original)

    # flagfleet ---------------------------------------------------------------
    steps["ff_cold1"] = measure("flagfleet cold apply, spoke1 alone", lambda: fleet.apply("spoke1"))
    reset("spoke1")
    steps["ff_cold2"] = measure("flagfleet cold apply, spoke1 + spoke2 at once", fleet.apply)
    steps["ff_plan"] = measure("flagfleet plan, nothing changed",
                               lambda: fleet.run(fleet.fleet_toml, "plan", "--detailed-exitcode", ok=(0, 2)),
                               runs=NOOP_RUNS)
    steps["ff_noop"] = measure("flagfleet apply, nothing changed", fleet.apply, runs=NOOP_RUNS)
    fleet.expect_empty_plan("a cold apply and a no-op apply")
    fleet.seed(modified)
    steps["ff_change"] = measure(f"flagfleet apply after 1 % change ({len(changed)} flags)", fleet.apply)
    fleet.expect_empty_plan("the apply after the 1 % change")

    # baseline: Unleash's export/import ---------------------------------------
    fleet.seed(original)
    reset("spoke1", "spoke2")
    pats = {s: pat(s) for s in ("spoke1", "spoke2")}
    t0 = time.monotonic()
    for s in ("spoke1", "spoke2"):
        create_scaffolding(s)
    scaffolding_s = time.monotonic() - t0
    stats = {}
    steps["bl_cold"] = measure("baseline cold sync (export, import spoke1, then spoke2)",
                               lambda: baseline_sync(pats, stats))
    verified = check_baseline_import()
    bl_plan, bl_samples = fleet.plan_summary(fleet.fleet_toml)
    steps["bl_resync"] = measure("baseline re-sync, nothing changed", lambda: baseline_sync(pats, {}))
    if not args.no_baseline_change:
        fleet.seed(modified)
        steps["bl_change"] = measure(f"baseline sync after 1 % change ({len(changed)} flags)",
                                     lambda: baseline_sync(pats, {}))

    if args.import_at_once:
        reset("spoke1", "spoke2")
        pats = {s: pat(s) for s in ("spoke1", "spoke2")}
        for s in ("spoke1", "spoke2"):
            create_scaffolding(s)
        steps["bl_cold_at_once"] = measure("cold import into spoke1 + spoke2 at once",
                                           lambda: baseline_sync(pats, {}, at_once=True))
        check_baseline_import()

    # report ------------------------------------------------------------------
    flagfleet_version = subprocess.run([BIN, "--version"], capture_output=True, text=True).stdout.strip()
    say()
    say(f"flagfleet lab benchmark: {n} flags x {len(ENVS)} environments ({', '.join(ENVS)}), "
        f"{SEGMENTS} segments, 1 custom strategy; hub -> spoke1 + spoke2 ("
        + (f"each server limited to {SERVER_CPUS:g} CPU, as on a host of its own" if SERVER_CPUS
           else "bare lab: the servers share the machine's cores") + ", on loopback,")
    say(f"unleash-server 8.2.0; {flagfleet_version}, apply --parallelism 4 (default); "
        f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores)")
    say()
    say("Requests are those the servers answered during the step (their Prometheus counters),")
    say("R = reads (GET, batch export, feature search, playground), W = writes (every other POST/PUT/DELETE/...).")
    say()
    head = f"{'step':56} {'wall s':>8} {'hub R/W':>11} {'spoke1 R/W':>12} {'spoke2 R/W':>12} {'non-2xx':>8}"
    say(head)
    say("-" * len(head))
    for st in steps.values():
        rw = [f"{st.reads(i)}/{st.writes(i)}" for i in INSTANCES]
        say(f"{st.label:56} {st.seconds:8.2f} {rw[0]:>11} {rw[1]:>12} {rw[2]:>12} {st.failed():>8}")
    say()
    say(f"CPU seconds each process used during the step (client = flagfleet, or for the baseline")
    say(f"this script's own requests), and how many of the {os.cpu_count()} cores were busy on average:")
    say()
    head = f"{'step':56} {'wall s':>8} " + " ".join(f"{c:>8}" for c in CPU_COLUMNS) + f" {'cores':>6}"
    say(head)
    say("-" * len(head))
    for st in steps.values():
        say(f"{st.label:56} {st.seconds:8.2f} " + " ".join(f"{st.cpu[c]:8.1f}" for c in CPU_COLUMNS)
            + f" {st.cores():6.2f}")
    say()

    problems = list(fleet.misbehaviour)
    for key in ("ff_plan", "ff_noop"):
        w = steps[key].total_writes()
        if w:
            problems.append(f"{steps[key].label}: {w} write requests (expected none):\n"
                            + "\n".join(steps[key].breakdown(writes_only=True)))
    say(f"Checks")
    say(f"  no-op plan writes: {steps['ff_plan'].total_writes()}, no-op apply writes: "
        f"{steps['ff_noop'].total_writes()} -> {'ok' if not any(steps[k].total_writes() for k in ('ff_plan', 'ff_noop')) else 'FAIL'}")
    for key in ("ff_cold1", "ff_cold2"):
        st = steps[key]
        w = st.writes("spoke1")
        say(f"  {st.label}: {w} writes to spoke1 = {w / n:.2f} per new flag "
            f"(scaffolding included), server time {sum(st.ms['spoke1'].values()) / 1000:.1f} s")
    ch = steps["ff_change"]
    spoke_w = ch.total_writes(["spoke1", "spoke2"])
    say(f"  1 % change: {len(changed)} flags changed on the hub (production rollout); flagfleet wrote "
        f"{spoke_w} requests to the spokes = {spoke_w / (2 * len(changed)):.2f} per changed flag per spoke:")
    for row in ch.breakdown(writes_only=True):
        say(row)
    say(f"  baseline import landed (export of each spoke vs the hub's):")
    for line in verified:
        say(f"    {line}")
    say(f"  baseline: {stats.get('imports', 0)} import requests for the cold sync "
        f"({stats.get('imports', 0) // 2} per spoke over {len(ENVS)} environments, largest body "
        f"{stats.get('bytes', 0) // 1000} kB, limit 500 kB)")
    say(f"  flagfleet plan against the spokes right after the baseline cold import: "
        + ", ".join(f"{k} {c} to create, {o} to overwrite" for k, (c, o) in bl_plan.items())
        + (" (what the import left different from the hub, by flagfleet's model)" if any(
            c or o for c, o in bl_plan.values()) else ""))
    if any(c or o for c, o in bl_plan.values()) and bl_samples:
        say("    first difference: " + bl_samples[0].splitlines()[0])
    say()

    def ratio_line(label, value, target, ok, how):
        say(f"  {label:58} {value:7.2f}x  target {target:8}  {'PASS' if ok else 'MISS'}   ({how})")

    f1, f2 = steps["ff_cold1"].seconds, steps["ff_cold2"].seconds
    noop, plan_s = steps["ff_noop"].seconds, steps["ff_plan"].seconds
    b_cold, b_re = steps["bl_cold"].seconds, steps["bl_resync"].seconds
    say("Ratios (same data, same run)")
    ratio_line("no-op re-sync: baseline re-sync / flagfleet no-op apply", b_re / noop, ">= 20x",
               b_re / noop >= 20, f"{b_re:.2f} s / {noop:.2f} s; apply re-reads, so the no-op apply alone is the fair figure")
    say(f"    (baseline re-sync / (flagfleet no-op plan + no-op apply): {b_re / (plan_s + noop):.2f}x)")
    ratio_line("cold 2-spoke sync: flagfleet / baseline", f2 / b_cold, "<= 1.0x",
               f2 / b_cold <= 1.0, f"{f2:.2f} s / {b_cold:.2f} s")
    ratio_line("flagfleet 2 spokes at once / 1 spoke", f2 / f1, "<= 1.3x",
               f2 / f1 <= 1.3, f"{f2:.2f} s / {f1:.2f} s")
    if "bl_cold_at_once" in steps:
        b_once = steps["bl_cold_at_once"].seconds
        say(f"    (import into both spokes at once / baseline cold sync: {b_once / b_cold:.2f}x, "
            f"flagfleet cold 2 spokes / import at once: {f2 / b_once:.2f}x ({f2:.2f} s / {b_once:.2f} s))")
    say()
    say("How the baseline ran: one export per environment from the hub (admin token), then for")
    say("spoke1 and then spoke2 (one after the other, as Unleash's documented export/import script")
    say("does), per environment, import requests of under 500 kB each, one after the other, with a")
    say("personal access token of that spoke (import refuses admin tokens). The export is done")
    say("once for both spokes. Segments, the custom strategy, context fields and the tag type")
    say(f"were created on the spokes with the admin API BEFORE timing ({scaffolding_s:.1f} s for both, not")
    say("in the baseline figures); flagfleet's cold apply creates them itself, inside its time.")
    say("Spokes were reset (fresh databases) before each cold step.")
    say(f"Every timed step started once the machine was quiet (at most {SETTLE_CORES} cores busy over a")
    say("second, waiting up to a minute): what a step leaves PostgreSQL and the servers to do afterwards")
    say(f"(autovacuum, analyze) is not billed to the next one. The no-op plan and apply are the median of")
    say(f"{NOOP_RUNS} runs each: " + "; ".join(
        f"{steps[k].label.split(',')[0].replace('flagfleet ', '')} " + ", ".join(f"{t:.2f}" for t in steps[k].runs) + " s"
        for k in ("ff_plan", "ff_noop")) + ".")

    if args.details:
        say()
        say("Requests by endpoint, per step: count, the server's time answering them (in all and")
        say("per request; wall time inside the server, waits for PostgreSQL and the CPU included)")
        for st in steps.values():
            say(f"  {st.label}")
            for row in st.breakdown(timed=True):
                say(row)

    if problems:
        say()
        say("!! flagfleet MISBEHAVED:")
        for p in problems:
            say("!! " + p.replace("\n", "\n!!   "))
        return 3
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(redact(f"bench-lab: error: {e}"), file=sys.stderr)
        sys.exit(1)
