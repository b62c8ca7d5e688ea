#!/usr/bin/env bash
# The whole test suite: starts the Unleash lab (installing what is missing), runs every
# unit, snapshot and end-to-end test, and stops the lab again unless it was already up.
# Extra arguments go to `cargo test`, e.g. `scripts/test.sh --test e2e_lab`. Benchmarks
# are not run here: they report figures (`cargo bench`), tests assert behaviour.
# The `lab` feature runs the end-to-end tests (plain `cargo test` lists them as ignored).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

was_up=0
if scripts/lab.sh status 2>/dev/null | grep -q running; then was_up=1; fi
if [ "$was_up" = 0 ]; then trap 'scripts/lab.sh down' EXIT; fi
scripts/lab.sh up
cargo test --features lab --lib --bins --tests --examples "$@"
