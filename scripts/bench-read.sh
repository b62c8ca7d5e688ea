#!/usr/bin/env bash
# A no-op plan of 20 live spokes against a no-op plan of one, in the same run, where reading
# is bound by distance: every request goes through a proxy that delays it (20 ms by default,
# scripts/lab/latency_proxy.py). Prints each plan's wall time, the CPU each server,
# PostgreSQL, the proxy and flagfleet used, the machine's busy cores, and the ratio.
#   scripts/bench-read.sh [--flags N] [--multi-every K] [--spokes S] [--latency MS] [--runs R]
#                         [--servers N] [--bin PATH]... [--no-seed] [--plan-args "ARGS"]
# (defaults: 100 flags, every 20th with two strategies, 20 spokes, 20 ms, 5 runs of each)
# The hub is the lab hub; the 20 spoke entries are spread over the other four Unleash 8.2.0
# servers (spoke1-3, strict; five entries each); it resets all five and seeds them with the same flags so that every
# plan is empty. Each run reports how busy the servers were and whether the lab's CPU or
# the distance bound the 20-spoke run: on a 2-core lab, 20 reads' CPU binds it below about
# 300 ms per request (docs/performance.md). Builds flagfleet (release) and brings the lab up first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build -q --release
scripts/lab.sh up >/dev/null
set -a; . .lab/lab.env; set +a
exec python3 scripts/lab/bench_read.py "$@"
