#!/usr/bin/env bash
# Compares flagfleet with Unleash's own export/import on the lab, on the same data in the
# same run, and prints a table of wall times and HTTP request counts with the issue's ratios.
#   scripts/bench-lab.sh [--flags N] [--environments production[,development]] [--details]
#                        [--no-baseline-change] [--import-at-once] [--server-cpus CORES]
# (default 1000 flags in both environments: about 8 minutes on 2 cores, 14 with
# --server-cpus 0.5; 5000 flags: about 40 minutes). Issue 17's set-up is
# `--flags 1035 --environments production`.
# One command does everything: builds flagfleet (release), brings the lab up
# (scripts/lab.sh up, idempotent), resets hub, spoke1 and spoke2 (spoke3 is not used), seeds
# the hub with N flags in the environments asked (default both, development and production;
# production: 1-3 strategies with constraints, development: 1; 20 segments, a custom
# strategy, tags, a parent every 50 flags) by applying a
# generated snapshot with flagfleet, then measures:
#   flagfleet  cold apply to spoke1 alone; cold apply to spoke1 + spoke2 at once (spokes
#              reset before each); plan and apply when nothing changed (the apply must
#              write nothing); apply after 1 % of the hub's flags changed;
#   baseline   export per environment from the hub, batch import (< 500 kB a request,
#              personal access token) into spoke1 and then spoke2: cold (spokes reset, the
#              segments and custom strategy created beforehand, untimed), again with
#              nothing changed, and after the same 1 % change.
# Requests are counted on the servers (Prometheus counters at /internal-backstage/prometheus,
# scraped before and after each step, the scrapes themselves left out). --details lists
# every step's requests by endpoint, with the time the server spent answering them;
# --no-baseline-change skips the last baseline step
# (import rewrites everything, so it costs about what the re-sync costs); --import-at-once
# also times the cold import into both spokes at the same time (the most a batch-import
# write path in flagfleet could gain: spokes at once, no fix-ups).
# Every step also reports the CPU seconds each process used and how busy the machine was.
# On the bare lab all servers and PostgreSQL share this machine's cores, so spokes applied at
# once compete for the same CPU; --server-cpus CORES limits each Unleash server to CORES
# CPUs with a cgroup of its own (as a container's CPU limit does; needs root), so that each
# behaves like a server on a host of its own, as spokes in separate data centers are.
# Exit: 0 measured (a missed target is reported, not an error), 1 error, 3 measured but
# flagfleet misbehaved (writes on a no-op apply, a plan not empty right after an apply).
# The lab's databases for hub, spoke1 and spoke2 are left holding the benchmark's data.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FLAGS=1000
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --flags) FLAGS=${2:?--flags needs a number}; shift 2 ;;
    --flags=*) FLAGS=${1#--flags=}; shift ;;
    --details|--no-baseline-change|--import-at-once) EXTRA+=("$1"); shift ;;
    --environments) EXTRA+=("$1" "${2:?--environments needs a list}"); shift 2 ;;
    --environments=*) EXTRA+=("$1"); shift ;;
    --server-cpus) EXTRA+=("$1" "${2:?--server-cpus needs a number of cores}"); shift 2 ;;
    --server-cpus=*) EXTRA+=("$1"); shift ;;
    -h|--help) sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-lab: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$FLAGS" in ''|*[!0-9]*) echo "bench-lab: --flags takes a positive number" >&2; exit 2 ;; esac
[ "$FLAGS" -gt 0 ] || { echo "bench-lab: --flags takes a positive number" >&2; exit 2; }

cargo build -q --release
scripts/lab.sh up
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
set -a; . .lab/lab.env; set +a
python3 scripts/lab/bench_lab.py --flags "$FLAGS" --work "$WORK" "${EXTRA[@]}"
