#!/usr/bin/env bash
# Load benchmark of license-gateway (issue 4): for each backend and each N, a fresh database,
# `license-gateway generate --people N`, the release server, and wrk over real HTTP for
#   Q1  users(first: 50) by username with person name, validUntil, profile name and module codes
#   Q2  licensePools with total, used, available
#   M1  changeLoginProfile of random users, half of them to a CASE+DOCUMENT profile, until the
#       pools (reset to usage + M1_HEADROOM first) are full; then `license-gateway verify`.
# Prints one table (also written to $BENCH_DIR/results.txt). See bench/README.md.
#
# Environment (all optional):
#   BACKENDS ("postgres sqlite"), SIZES ("50000 500000"), DURATION (15 s measured), WARMUP (3 s,
#   discarded), CONC (16 connections), THREADS (2 wrk threads), M1_HEADROOM (20), PORT (5058),
#   PG_URL (postgres://postgres@127.0.0.1:5432: a server where we may create databases),
#   BENCH_DIR (/tmp/license-gateway-bench: logs, SQLite files, request bodies),
#   KEEP_DB (unset: drop each database after its run; 1: keep it), DB_MAX_CONNECTIONS (server default),
#   BIN (a binary to measure instead of building the checkout, e.g. to compare two builds).
# Every process this script starts is stopped by its PID; databases are named lg_bench_<N>.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BACKENDS=${BACKENDS:-"postgres sqlite"}
SIZES=${SIZES:-"50000 500000"}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-3}
CONC=${CONC:-16}
THREADS=${THREADS:-2}
M1_HEADROOM=${M1_HEADROOM:-20}
PORT=${PORT:-5058}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
BENCH_DIR=${BENCH_DIR:-/tmp/license-gateway-bench}
BUILD=${BIN:-}
BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release-lto/license-gateway}
ADMIN_PASSWORD=bench-admin-password
URL=http://127.0.0.1:$PORT/graphql
LOGS=$BENCH_DIR/logs
ROWS=$BENCH_DIR/rows.txt
NOTES=$BENCH_DIR/notes.txt
SRV_PID=""
CURRENT_DB=""
FAILED=0

. "$HERE/lib.sh"

# ---- databases ---------------------------------------------------------------------
db_url() { # BACKEND N
  case $1 in
    postgres) echo "$PG_URL/lg_bench_$2" ;;
    sqlite) echo "sqlite:$BENCH_DIR/lg_bench_$2.db" ;;
    *) die "unknown backend '$1' (postgres or sqlite)" ;;
  esac
}
db_drop() { # BACKEND N
  case $1 in
    postgres) psql -X -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS lg_bench_$2" >/dev/null ;;
    sqlite) rm -f "$BENCH_DIR/lg_bench_$2.db" "$BENCH_DIR/lg_bench_$2.db-wal" "$BENCH_DIR/lg_bench_$2.db-shm" ;;
  esac
}
db_create() { # BACKEND N: a fresh, empty database (generate migrates it)
  db_drop "$1" "$2"
  if [ "$1" = postgres ]; then psql -X -q "$PG_URL/postgres" -c "CREATE DATABASE lg_bench_$2" >/dev/null; fi
}
sql() { # BACKEND N SQL -> rows (|-separated)
  case $1 in
    postgres) psql -X -q -At -v ON_ERROR_STOP=1 "$PG_URL/lg_bench_$2" -c "$3" ;;
    sqlite) sqlite3 -cmd ".timeout 30000" "$BENCH_DIR/lg_bench_$2.db" "$3" ;;
  esac
}

# ---- the server ------------------------------------------------------------------------
start_server() { # BACKEND N
  port_busy "$PORT" && die "port $PORT is busy (set PORT)"
  # EXPOSE_SQL_STATEMENTS: sample() reads extensions.sqlStatements.
  start_gateway "$BIN" "$LOGS/server-$1-$2.log" "$URL" DATABASE_URL="$(db_url "$1" "$2")" LISTEN="127.0.0.1:$PORT" \
    RUST_LOG="${RUST_LOG:-warn}" EXPOSE_SQL_STATEMENTS=true
  SRV_PID=$STARTED_PID
}
stop_server() {
  stop_pid "$SRV_PID"
  SRV_PID=""
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_server
  if [ -n "$CURRENT_DB" ] && [ -z "${KEEP_DB:-}" ]; then db_drop $CURRENT_DB || true; fi
  [ $rc -eq 0 ] || log "stopped (rc=$rc); logs in $LOGS"
  exit $rc
}
trap cleanup EXIT INT TERM

post() { # BODY_FILE [extra curl args...] -> response body
  local body=$1; shift
  curl -sS --max-time 120 -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" "$@" \
    --data-binary "@$body" "$URL"
}

# One request with `x-sql-statements: 1`: fails on errors, prints the statement count. A read
# (Q1, Q2) is sent twice and the second counted: under load the session check is reused (see
# SESSION_CACHE_MS in README), so the first read after a mutation counts one statement more.
sample() { # NAME BODY_FILE
  local r
  case $1 in *-Q1 | *-Q2) post "$2" >/dev/null ;; esac
  r=$(post "$2" -H 'x-sql-statements: 1')
  echo "$r" >"$LOGS/sample-$1.json"
  jq -e '.errors == null' <<<"$r" >/dev/null || die "$1: the sample request failed: ${r:0:300}"
  jq -r '.extensions.sqlStatements // "?"' <<<"$r"
}

# ---- one wrk measurement ------------------------------------------------------------------
measure() { # BACKEND N TEST SCRIPT SQL_PER_REQUEST [ENV=value ...]; appends a row to $ROWS
  local backend=$1 n=$2 t=$3 script=$4 stmts=$5; shift 5
  local f=$LOGS/wrk-$backend-$n-$t args=(-t "$THREADS" -c "$CONC" --timeout 30s -s "$HERE/lua/$script")
  env BENCH_LUA_DIR="$HERE/lua" TOKEN="$TOKEN" "$@" wrk "${args[@]}" -d "${WARMUP}s" "$URL" >"$f-warmup.txt" 2>&1 \
    || die "wrk warm-up failed ($backend $n $t): $(tail -3 "$f-warmup.txt")"
  local c0 d0 h0 i0 w0 t0 c1 d1 h1 i1 w1 t1
  c0=$(proc_ticks "$SRV_PID"); d0=$(db_ticks "$backend"); read -r h0 i0 < <(host_ticks); snap_times; w0=$(read_times)
  t0=$(date +%s.%N)
  env BENCH_LUA_DIR="$HERE/lua" TOKEN="$TOKEN" "$@" wrk "${args[@]}" -d "${DURATION}s" "$URL" >"$f.txt" 2>&1 \
    || die "wrk failed ($backend $n $t): $(tail -3 "$f.txt")"
  t1=$(date +%s.%N); snap_times; w1=$(read_times); read -r h1 i1 < <(host_ticks); d1=$(db_ticks "$backend")
  c1=$(proc_ticks "$SRV_PID")
  local res; res=$(sed -n 's/^RESULT //p' "$f.txt")
  [ -n "$res" ] || die "no RESULT line in $f.txt (a wrk script error?): $(head -3 "$f.txt")"
  grep '^FIRST_ERROR' "$f.txt" >&2 || true
  # CPU in % of one core over the measured window; other = the host minus server, database and wrk
  local cpu
  cpu=$(awk -v hz="$HZ" -v el="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b - a}')" -v c0="$c0" -v c1="$c1" \
      -v d0="$d0" -v d1="$d1" -v h0="$h0" -v h1="$h1" -v i0="$i0" -v i1="$i1" -v w0="$w0" -v w1="$w1" 'BEGIN {
      srv = 100 * (c1 - c0) / hz / el; db = 100 * (d1 - d0) / hz / el; wrk = 100 * (w1 - w0) / el
      host = 100 * ((h1 - h0) - (i1 - i0)) / hz / el; other = host - srv - db - wrk; if (other < 0) other = 0
      printf "srv_cpu=%.0f db_cpu=%.0f wrk_cpu=%.0f other_cpu=%.0f", srv, db, wrk, other }')
  echo "backend=$backend n=$n test=$t $res rss_kb=$(rss_kb "$SRV_PID" VmRSS) hwm_kb=$(rss_kb "$SRV_PID" VmHWM) sql=$stmts $cpu" >>"$ROWS"
  log "$backend N=$n $t: $res $cpu"
}

run_one() { # BACKEND N
  local backend=$1 n=$2 url bench site users
  url=$(db_url "$backend" "$n")
  log "== $backend N=$n: fresh database"
  db_create "$backend" "$n"
  CURRENT_DB="$backend $n"
  users=$BENCH_DIR/users-$backend-$n.txt
  local t0 t1
  t0=$(date +%s.%N)
  DATABASE_URL=$url "$BIN" generate --people "$n" --admin-password "$ADMIN_PASSWORD" --user-ids "$users" \
    >"$LOGS/generate-$backend-$n.txt" 2>&1 || { cat "$LOGS/generate-$backend-$n.txt" >&2; die "generate failed"; }
  t1=$(date +%s.%N)
  bench=$(grep '^BENCH ' "$LOGS/generate-$backend-$n.txt") || die "generate printed no BENCH line"
  site=$(field site "$bench")
  note "$backend N=$n: generate $(field seconds "$bench") s ($(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b - a}') s with start-up and migrations): $(field people "$bench") people ($(field deleted "$bench") deleted), $(field live_logins "$bench") live users, pools (used/total) CASE $(field CASE "$bench"), DOCUMENT $(field DOCUMENT "$bench")"
  DATABASE_URL=$url "$BIN" verify >"$LOGS/verify-$backend-$n-generated.txt" 2>&1 \
    || { cat "$LOGS/verify-$backend-$n-generated.txt" >&2; die "verify found drift right after generate"; }

  start_server "$backend" "$n"
  TOKEN=$(curl -sS -H 'Content-Type: application/json' --data-binary "$(jq -nc --arg p "$ADMIN_PASSWORD" \
      '{query: "mutation($u: String!, $p: String!) { signIn(username: $u, password: $p) { ... on SignInSuccess { token } } }",
        variables: {u: "bench-admin", p: $p}}')" "$URL" | jq -r '.data.signIn.token // empty')
  [ -n "$TOKEN" ] || die "could not sign in as bench-admin"
  note "$backend N=$n: server pid $SRV_PID, RSS after start $(($(rss_kb "$SRV_PID" VmRSS) / 1024)) MiB"

  # Q1, Q2: a checked sample (with its SQL statement count), then the load.
  local s1 s2 s3 items
  s1=$(sample "$backend-$n-Q1" "$BENCH_DIR/q1.json")
  items=$(jq '.data.users.nodes | length' "$LOGS/sample-$backend-$n-Q1.json")
  [ "$items" -eq 50 ] || [ "$items" -eq "$(field live_logins "$bench")" ] || die "Q1 returned $items users"
  measure "$backend" "$n" Q1 post.lua "$s1" BODY_FILE="$BENCH_DIR/q1.json"
  s2=$(sample "$backend-$n-Q2" "$BENCH_DIR/q2.json")
  measure "$backend" "$n" Q2 post.lua "$s2" BODY_FILE="$BENCH_DIR/q2.json"

  # M1: one accepted sample (a user to a profile with every module), then pools at usage + headroom.
  local profiles full gid pid
  profiles=$(field profiles "$bench" | tr ',' '\n' | while read -r pid; do printf 'Profile:%s' "$pid" | basenc --base64url | tr -d '=\n'; echo; done | paste -sd,)
  full=$(field all_module_profiles "$bench" | tr ',' '\n' | while read -r pid; do printf 'Profile:%s' "$pid" | basenc --base64url | tr -d '=\n'; echo; done | paste -sd,)
  gid=$(head -1 "$users")
  jq -nc --rawfile q "$HERE/queries/m1.graphql" --arg id "$gid" --arg p "${full%%,*}" \
    '{query: $q, variables: {id: $id, profileId: $p}}' >"$BENCH_DIR/m1-sample.json"
  s3=$(sample "$backend-$n-M1" "$BENCH_DIR/m1-sample.json")
  grep -q UpdateLoginSuccess "$LOGS/sample-$backend-$n-M1.json" || die "M1 sample was not accepted: $(cat "$LOGS/sample-$backend-$n-M1.json")"
  DATABASE_URL=$url "$BIN" verify >"$LOGS/verify-$backend-$n-before-m1.txt" 2>&1 \
    || { cat "$LOGS/verify-$backend-$n-before-m1.txt" >&2; die "counters drifted before M1"; }
  sql "$backend" "$n" "UPDATE license_pools SET total = used + $M1_HEADROOM WHERE site_id = $site"
  measure "$backend" "$n" M1 m1.lua "$s3" USER_IDS="$users" PROFILE_IDS="$profiles" FULL_PROFILE_IDS="$full" \
    QUERY_FILE="$HERE/queries/m1.graphql"
  local pools
  pools=$(sql "$backend" "$n" "SELECT m.code || ' ' || lp.used || '/' || lp.total FROM license_pools lp
    JOIN modules m ON m.id = lp.module_id WHERE lp.site_id = $site ORDER BY m.id" | paste -sd, | sed 's/,/, /g')
  if DATABASE_URL=$url "$BIN" verify >"$LOGS/verify-$backend-$n-after-m1.txt" 2>&1; then
    note "$backend N=$n: after M1 (pools reset to usage + $M1_HEADROOM before): verify ok (no drift, no over-allocation); used/total $pools"
  else
    FAILED=1
    cat "$LOGS/verify-$backend-$n-after-m1.txt" >&2
    note "$backend N=$n: !!! VERIFY FAILED after M1: counters drifted or a pool is over-allocated; used/total $pools (see $LOGS/verify-$backend-$n-after-m1.txt)"
  fi
  stop_server
  if [ -z "${KEEP_DB:-}" ]; then db_drop "$backend" "$n"; fi
  CURRENT_DB=""
}

# ---- 0. prerequisites ------------------------------------------------------------------------
need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v jq >/dev/null || need_apt+=(jq)
for b in $BACKENDS; do
  case $b in
    postgres) command -v psql >/dev/null || need_apt+=(postgresql-client) ;;
    sqlite) command -v sqlite3 >/dev/null || need_apt+=(sqlite3) ;;
    *) die "unknown backend '$b' (postgres or sqlite)" ;;
  esac
done
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing Debian packages: ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if [[ " $BACKENDS " == *" postgres "* ]]; then
  psql -X -q -At "$PG_URL/postgres" -c 'select 1' >/dev/null || die "PostgreSQL at $PG_URL is not reachable (set PG_URL)"
fi
if [ -z "$BUILD" ]; then
  log "cargo build --profile release-lto --locked"
  (cd "$ROOT" && cargo build --profile release-lto --locked --quiet) || die "build failed"
fi

mkdir -p "$BENCH_DIR" "$LOGS"
rm -f "$ROWS" "$NOTES" "$LOGS"/*
: >"$ROWS"; : >"$NOTES"
jq -Rsc '{query: .}' "$HERE/queries/q1.graphql" >"$BENCH_DIR/q1.json"
jq -Rsc '{query: .}' "$HERE/queries/q2.graphql" >"$BENCH_DIR/q2.json"

# ---- 1. the runs -----------------------------------------------------------------------------
for backend in $BACKENDS; do
  for n in $SIZES; do run_one "$backend" "$n"; done
done

# ---- 2. the table ----------------------------------------------------------------------------
{
  echo "license-gateway benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "host: $(nproc) cores, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo); $(wrk --version 2>&1 | head -1 | awk '{print $1, $2}')"
  echo "load: wrk -t$THREADS -c$CONC, ${WARMUP}s warm-up (discarded) + ${DURATION}s measured; server and database on this host"
  echo
  awk '
    function v(k,   i, kv) { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "" }
    BEGIN {
      fmt = "| %-8s | %7s | %-4s | %8s | %7s | %8s | %6s | %17s | %7s | %8s | %7s | %4s | %4s | %4s | %6s |\n"
      printf fmt, "backend", "N", "test", "req/s", "p50 ms", "p99 ms", "errors", "accepted/refused", "RSS MiB", "peak MiB",
        "SQL/req", "srv%", "db%", "wrk%", "other%"
      printf "|----------|--------:|------|---------:|--------:|---------:|-------:|------------------:|--------:|---------:|"
      printf "--------:|-----:|-----:|-----:|-------:|\n"
    }
    {
      errors = v("sock_errors") + v("non2xx") + v("gql_errors")
      ar = (v("test") == "M1") ? v("accepted") "/" v("rejected") : "-"
      rps = v("rps") + 0
      printf fmt, v("backend"), v("n"), v("test"), (rps >= 100 ? sprintf("%.0f", rps) : sprintf("%.1f", rps)),
        v("p50_ms"), v("p99_ms"), errors, ar, sprintf("%.0f", v("rss_kb") / 1024), sprintf("%.0f", v("hwm_kb") / 1024),
        v("sql"), v("srv_cpu"), v("db_cpu"), v("wrk_cpu"), v("other_cpu")
    }' "$ROWS"
  echo
  echo "errors = socket errors + non-2xx + GraphQL errors (a refused M1 change is not an error). RSS = server VmRSS after"
  echo "the measured run, peak = VmHWM. SQL/req = extensions.sqlStatements of one sample request (Q1, Q2: with a warm"
  echo "session; M1: an accepted change, a refused one takes 2 on PostgreSQL, 3 on SQLite)."
  echo "CPU: % of ONE core over the measured window: server, database (every postgres process; SQLite runs inside the"
  echo "server), wrk, and other = the rest of the host (foreign load: a high value makes the row noisy)."
  echo "M1: pools reset to usage + $M1_HEADROOM before the warm-up; half the requests ask for CASE+DOCUMENT, so most later"
  echo "ones are refused; accepted/refused count the measured run only."
  echo
  cat "$NOTES"
} >"$BENCH_DIR/results.txt"
cat "$BENCH_DIR/results.txt"
[ "$FAILED" = 0 ] || die "verify found drift or over-allocation after M1 (see above)"
