#!/usr/bin/env bash
# Times a cold apply of N flags to three lab spokes at once against applying the same to
# each spoke one after the other, in the same run, and prints the ratio.
#   scripts/bench-fanout.sh [N] [LATENCY_MS]   (defaults 200 flags, 20 ms; needs the lab up)
# The spokes are reached through a proxy that delays each request by LATENCY_MS, as the
# network to a remote data center would; 0 measures the bare lab, where all four servers
# share this machine's cores and the servers' CPU, not the network, is the limit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${1:-200}
LATENCY=${2:-20}
LAB=scripts/lab.sh
cargo build -q --release
BIN=target/release/flagfleet
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
set -a; . .lab/lab.env; set +a
# The proxy listens on the lab's port base + 31..33 (the lab's own ports move with
# FLAGFLEET_LAB_PORT_BASE, see scripts/lab.sh) and forwards to spoke1..3.
BASE=${FLAGFLEET_LAB_PORT_BASE:-4242}
PAIRS=()
for i in 1 2 3; do
  v="FLAGFLEET_LAB_SPOKE${i}_URL"
  PAIRS+=("$((BASE + 30 + i)):${!v##*:}")
  printf -v "$v" 'http://127.0.0.1:%s' "$((BASE + 30 + i))"
done
python3 scripts/lab/latency_proxy.py "$LATENCY" "${PAIRS[@]}" >"$WORK/proxy.log" 2>&1 &
PROXY=$!
trap 'kill $PROXY 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do grep -q ready "$WORK/proxy.log" && break; sleep 0.1; done

# A hub snapshot with N flags of realistic shape (2 strategies, constraints, a tag), then
# pushed into the lab hub with flagfleet itself.
python3 - "$N" >"$WORK/hub.json" <<'PY'
import json, sys
n = int(sys.argv[1])
flags = {}
for i in range(n):
    name = f"bench-{i:05d}"
    flags[name] = {"type": "release", "impression_data": False, "stale": False,
        "tags": [{"type": "simple", "value": f"team-{i % 7}"}],
        "environments": {"production": {"enabled": i % 2 == 0, "strategies": [
            {"name": "flexibleRollout", "parameters": {"groupId": name, "rollout": str(i % 100), "stickiness": "default"},
             "constraints": [{"context_name": "appName", "operator": "IN", "values": ["web", "api"]}]},
            {"name": "default", "title": "fallback", "disabled": True}]}}}
state = {"project": "default", "environments": ["production"], "flags": flags,
         "context_fields": {}, "segments": {}, "strategies": {"flexibleRollout": {"builtin": True}, "default": {"builtin": True}},
         "tag_types": {"simple": {"builtin": True}}}
print(json.dumps({"format": "flagfleet-snapshot", "format_version": 1,
                  "source": {"instance": "bench", "location": "generated"}, "state": state}))
PY
cat >"$WORK/seed.toml" <<TOML
[hub]
file = "hub.json"
[[spokes]]
name = "lab-hub"
url = "$FLAGFLEET_LAB_HUB_URL"
token_env = "FLAGFLEET_LAB_HUB_TOKEN"
TOML
cat >"$WORK/fleet.toml" <<TOML
[hub]
url = "$FLAGFLEET_LAB_HUB_URL"
token_env = "FLAGFLEET_LAB_HUB_TOKEN"
[[spokes]]
name = "s1"
url = "$FLAGFLEET_LAB_SPOKE1_URL"
token_env = "FLAGFLEET_LAB_SPOKE1_TOKEN"
[[spokes]]
name = "s2"
url = "$FLAGFLEET_LAB_SPOKE2_URL"
token_env = "FLAGFLEET_LAB_SPOKE2_TOKEN"
[[spokes]]
name = "s3"
url = "$FLAGFLEET_LAB_SPOKE3_URL"
token_env = "FLAGFLEET_LAB_SPOKE3_TOKEN"
TOML

$LAB reset >/dev/null
$BIN -q -c "$WORK/seed.toml" apply --auto-approve --backup-dir "$WORK/b" >/dev/null
now() { date +%s.%N; }

t0=$(now)
$BIN -q -c "$WORK/fleet.toml" apply --auto-approve --backup-dir "$WORK/b" >/dev/null
t1=$(now)
$LAB reset spoke1 spoke2 spoke3 >/dev/null
seq_total=0
for s in s1 s2 s3; do
  a=$(now)
  $BIN -q -c "$WORK/fleet.toml" apply --auto-approve --spoke "$s" --backup-dir "$WORK/b" >/dev/null
  b=$(now)
  seq_total=$(python3 -c "print($seq_total + $b - $a)")
done
python3 - "$N" "$t0" "$t1" "$seq_total" "$LATENCY" <<'PY'
import sys
n, t0, t1, seq = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
conc = t1 - t0
print(f"flags: {n}, spokes: 3, added latency per request: {sys.argv[5]} ms")
print(f"3 spokes at once:        {conc:7.2f} s")
print(f"one after the other:     {seq:7.2f} s")
print(f"ratio (at once / sum):   {conc / seq:7.2f}")
PY
