#!/usr/bin/env bash
# Subscription benchmark (issue 17): PostgreSQL, two gateway instances on one database, the
# generated site plus SITES-1 more, PER_SITE licensePools subscribers per site split over both
# instances (bench/subscribers.rs), then:
#   M1 (bench/run.sh's, with wrk, against instance A) in one session: `--subscriptions false` on
#      both instances; subscriptions on, no subscriber; with every subscriber connected (the
#      Bench site's own subscribers get M1's changes); and the first two again, in reverse order;
#   memory per subscriber: each instance's RSS before and after its subscribers connected;
#   delivery: setPoolTotal at RATE changes/s for CHANGE_SECONDS, alternating instances,
#      round robin over the sites; latency from each change to every subscriber of its site,
#      deliveries against expected, versions never going back, CPU of every process.
# Prints a report (also $BENCH_DIR/subscriptions.txt). See bench/README.md.
#
# Environment (all optional):
#   N (50000 people in the Bench site), SITES (100, Bench included), PER_SITE (100 subscribers),
#   RATE (40 changes/s), CHANGE_SECONDS (30), DURATION (15 s of M1 measured), WARMUP (3 s),
#   CONC (16), THREADS (2), M1_HEADROOM (20), PORT_A (5061), PORT_B (5062),
#   PG_URL (postgres://postgres@127.0.0.1:5432: a server where we may create the database
#   lg_subs_<N>), BENCH_DIR (/tmp/license-gateway-subs), KEEP_DB (1: keep the database),
#   M1_RUNS (which M1 runs to make: "prime off on subscribers on-again off-again"; "" for none,
#   e.g. to try other RATEs),
#   BIN and LOADGEN (prebuilt server and load generator instead of building the checkout),
#   SERVER_FLAGS (extra flags for both instances, e.g. "--max-websocket-connections 20000").
# Every process this script starts is stopped by its PID.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
N=${N:-50000}
SITES=${SITES:-100}
PER_SITE=${PER_SITE:-100}
RATE=${RATE:-40}
CHANGE_SECONDS=${CHANGE_SECONDS:-30}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-3}
CONC=${CONC:-16}
THREADS=${THREADS:-2}
M1_HEADROOM=${M1_HEADROOM:-20}
M1_RUNS=${M1_RUNS-prime off on subscribers on-again off-again}
PORT_A=${PORT_A:-5061}
PORT_B=${PORT_B:-5062}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
BENCH_DIR=${BENCH_DIR:-/tmp/license-gateway-subs}
SERVER_FLAGS=${SERVER_FLAGS:-}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}/release-lto
BUILD=${BIN:-}
BIN=${BIN:-$TARGET/license-gateway}
LOADGEN=${LOADGEN:-$TARGET/examples/subscribers}
ADMIN_PASSWORD=bench-admin-password
DB=lg_subs_$N
DB_URL=$PG_URL/$DB
URL_A=http://127.0.0.1:$PORT_A/graphql
URL_B=http://127.0.0.1:$PORT_B/graphql
LOGS=$BENCH_DIR/logs
NOTES=$BENCH_DIR/notes.txt
ROWS=$BENCH_DIR/m1-rows.txt
CONTROL=$BENCH_DIR/control
PID_A="" PID_B="" GEN_PID=""

. "$HERE/lib.sh"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$GEN_PID"
  stop_pid "$PID_A"
  stop_pid "$PID_B"
  [ -n "${KEEP_DB:-}" ] || psql -X -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
  [ $rc -eq 0 ] || log "stopped (rc=$rc); logs in $LOGS"
  exit $rc
}
trap cleanup EXIT INT TERM

sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$DB_URL" -c "$1"; }
gid() { printf '%s:%s' "$1" "$2" | basenc --base64url | tr -d '=\n'; }   # KIND ID -> global id
graphql() { # URL TOKEN QUERY VARIABLES_JSON -> data (fails on errors)
  local answer
  answer=$(curl -sS --max-time 60 -H 'Content-Type: application/json' ${2:+-H "Authorization: Bearer $2"} \
    --data-binary "$(jq -nc --arg q "$3" --argjson v "$4" '{query: $q, variables: $v}')" "$1")
  jq -e '.errors == null' <<<"$answer" >/dev/null || die "$3: ${answer:0:300}"
  jq -c .data <<<"$answer"
}
sign_in() { # USERNAME PASSWORD -> token
  graphql "$URL_A" "" 'mutation($u: String!, $p: String!) { signIn(username: $u, password: $p) { ... on SignInSuccess { token } } }' \
    "$(jq -nc --arg u "$1" --arg p "$2" '{u: $u, p: $p}')" | jq -r '.signIn.token // empty'
}

# start_pair FLAGS...: instance A and B on the database, with these flags and SERVER_FLAGS.
start_pair() {
  local tag=$1; shift
  # shellcheck disable=SC2086
  start_gateway "$BIN" "$LOGS/server-a-$tag.log" "$URL_A" DATABASE_URL="$DB_URL" LISTEN="127.0.0.1:$PORT_A" \
    RUST_LOG="${RUST_LOG:-warn}" -- "$@" $SERVER_FLAGS
  PID_A=$STARTED_PID
  # shellcheck disable=SC2086
  start_gateway "$BIN" "$LOGS/server-b-$tag.log" "$URL_B" DATABASE_URL="$DB_URL" LISTEN="127.0.0.1:$PORT_B" \
    RUST_LOG="${RUST_LOG:-warn}" -- "$@" $SERVER_FLAGS
  PID_B=$STARTED_PID
}
stop_pair() { stop_pid "$PID_A"; stop_pid "$PID_B"; PID_A="" PID_B=""; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
deliveries() { # URL -> licensePools deliveries the instance counted (its /metrics)
  curl -sf "${1%/graphql}/metrics" | awk '/^license_gateway_subscription_deliveries_total\{field="licensePools"\}/ {print $2}' | grep . || echo 0
}

# m1 NAME: pools reset to usage + headroom, wrk warm-up, measured M1 against instance A, verify.
m1() {
  [[ " $M1_RUNS " == *" $1 "* ]] || return 0
  local name=$1 f=$LOGS/wrk-m1-$1 args=(-t "$THREADS" -c "$CONC" --timeout 30s -s "$HERE/lua/m1.lua")
  local lua_env=(BENCH_LUA_DIR="$HERE/lua" TOKEN="$TOKEN" USER_IDS="$USERS" PROFILE_IDS="$PROFILES"
    FULL_PROFILE_IDS="$FULL" QUERY_FILE="$HERE/queries/m1.graphql")
  sql "UPDATE license_pools SET total = used + $M1_HEADROOM WHERE site_id = $BENCH_SITE" >/dev/null
  # Every run starts right after a checkpoint: each pays the same full-page writes (the first run otherwise pays
  # most of those of the bulk load).
  sql "CHECKPOINT" >/dev/null
  local load; load=$(cut -d' ' -f1-3 /proc/loadavg | tr ' ' ,)
  env "${lua_env[@]}" wrk "${args[@]}" -d "${WARMUP}s" "$URL_A" >"$f-warmup.txt" 2>&1 || die "wrk warm-up failed: $(tail -3 "$f-warmup.txt")"
  local a0 b0 d0 h0 i0 w0 t0 a1 b1 d1 h1 i1 w1 t1
  a0=$(proc_ticks "$PID_A"); b0=$(proc_ticks "$PID_B"); d0=$(db_ticks postgres); read -r h0 i0 < <(host_ticks)
  snap_times; w0=$(read_times); t0=$(date +%s.%N)
  env "${lua_env[@]}" wrk "${args[@]}" -d "${DURATION}s" "$URL_A" >"$f.txt" 2>&1 || die "wrk failed: $(tail -3 "$f.txt")"
  t1=$(date +%s.%N); snap_times; w1=$(read_times); read -r h1 i1 < <(host_ticks); d1=$(db_ticks postgres)
  a1=$(proc_ticks "$PID_A"); b1=$(proc_ticks "$PID_B")
  local res; res=$(sed -n 's/^RESULT //p' "$f.txt")
  [ -n "$res" ] || die "no RESULT line in $f.txt: $(head -3 "$f.txt")"
  grep '^FIRST_ERROR' "$f.txt" >&2 || true
  local cpu
  cpu=$(awk -v hz="$HZ" -v el="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b - a}')" -v a0="$a0" -v a1="$a1" -v b0="$b0" \
      -v b1="$b1" -v d0="$d0" -v d1="$d1" -v h0="$h0" -v h1="$h1" -v i0="$i0" -v i1="$i1" -v w0="$w0" -v w1="$w1" 'BEGIN {
      a = 100 * (a1 - a0) / hz / el; b = 100 * (b1 - b0) / hz / el; db = 100 * (d1 - d0) / hz / el; wrk = 100 * (w1 - w0) / el
      host = 100 * ((h1 - h0) - (i1 - i0)) / hz / el; other = host - a - b - db - wrk; if (other < 0) other = 0
      printf "a_cpu=%.0f b_cpu=%.0f db_cpu=%.0f wrk_cpu=%.0f other_cpu=%.0f", a, b, db, wrk, other }')
  [ "$name" = prime ] ||
    echo "run=$name $res rss_a_kb=$(rss_kb "$PID_A" VmRSS) rss_b_kb=$(rss_kb "$PID_B" VmRSS) $cpu load=$load" >>"$ROWS"
  log "M1 $name: $res $cpu load $load"
  DATABASE_URL=$DB_URL "$BIN" verify >"$LOGS/verify-$name.txt" 2>&1 \
    || { cat "$LOGS/verify-$name.txt" >&2; die "verify found drift or over-allocation after M1 ($name)"; }
}

# ---- 0. prerequisites ------------------------------------------------------------------------
need_apt=()
for tool in wrk jq psql; do command -v $tool >/dev/null || need_apt+=("$tool"); done
if [ ${#need_apt[@]} -gt 0 ]; then
  need_apt=("${need_apt[@]/psql/postgresql-client}")
  log "installing Debian packages: ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
psql -X -q -At "$PG_URL/postgres" -c 'select 1' >/dev/null || die "PostgreSQL at $PG_URL is not reachable (set PG_URL)"
if [ -z "$BUILD" ]; then
  log "cargo build --profile release-lto --locked --bin license-gateway --example subscribers"
  (cd "$ROOT" && cargo build --profile release-lto --locked --quiet --bin license-gateway --example subscribers) || die "build failed"
fi
[ -x "$LOADGEN" ] || die "no load generator at $LOADGEN (set LOADGEN)"
# Each subscriber is a socket in the load generator and one in a server: raise the open-file limit.
want=$((SITES * PER_SITE + 4096))
[ "$(ulimit -Hn)" -ge "$want" ] || ulimit -Hn "$want" 2>/dev/null || die "open-file limit $(ulimit -Hn) < $want (run as root, or raise it)"
ulimit -n "$(ulimit -Hn)"
port_busy "$PORT_A" && die "port $PORT_A is busy (set PORT_A)"
port_busy "$PORT_B" && die "port $PORT_B is busy (set PORT_B)"
mkdir -p "$BENCH_DIR" "$LOGS" "$CONTROL"
rm -f "$LOGS"/* "$CONTROL"/* "$ROWS" "$NOTES"
: >"$ROWS"; : >"$NOTES"

# ---- 1. the data -----------------------------------------------------------------------------
log "fresh database $DB, generate --people $N"
psql -X -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
USERS=$BENCH_DIR/users.txt
DATABASE_URL=$DB_URL "$BIN" generate --people "$N" --admin-password "$ADMIN_PASSWORD" --user-ids "$USERS" \
  >"$LOGS/generate.txt" 2>&1 || { cat "$LOGS/generate.txt" >&2; die "generate failed"; }
bench=$(grep '^BENCH ' "$LOGS/generate.txt") || die "generate printed no BENCH line"
BENCH_SITE=$(field site "$bench")
PROFILES=$(field profiles "$bench" | tr ',' '\n' | while read -r p; do gid Profile "$p"; echo; done | paste -sd,)
FULL=$(field all_module_profiles "$bench" | tr ',' '\n' | while read -r p; do gid Profile "$p"; echo; done | paste -sd,)

# ---- 2. M1 with subscriptions off; the operator, the sites and their tokens ------------------
start_pair off --subscriptions false
OPERATOR_PASSWORD=$(sed -nE 's/.*username `operator` and password `([^`]+)`.*/\1/p' "$LOGS/server-a-off.log")
[ -n "$OPERATOR_PASSWORD" ] || die "instance A printed no operator password (not a fresh database?)"
OPERATOR_TOKEN=$(sign_in operator "$OPERATOR_PASSWORD")
TOKEN=$(sign_in bench-admin "$ADMIN_PASSWORD")
[ -n "$OPERATOR_TOKEN" ] && [ -n "$TOKEN" ] || die "could not sign in"
SITES_FILE=$BENCH_DIR/sites.txt
echo "SITE $(gid Site "$BENCH_SITE") $TOKEN" >"$SITES_FILE"
if [ "$SITES" -gt 1 ]; then
  log "creating $((SITES - 1)) sites, each with an administrator, and signing them in"
  OPERATOR_TOKEN=$OPERATOR_TOKEN "$LOADGEN" setup --url "$URL_A" --sites $((SITES - 1)) >>"$SITES_FILE" \
    2>"$LOGS/setup.txt" || { cat "$LOGS/setup.txt" >&2; die "setup failed"; }
fi
[ "$(grep -c '^SITE ' "$SITES_FILE")" -eq "$SITES" ] || die "setup made $(grep -c '^SITE ' "$SITES_FILE") of $SITES sites"
# Fresh statistics and visibility maps, so that the first run does not pay for autovacuum after the bulk load.
sql "VACUUM (ANALYZE)" >/dev/null
# The first M1 run of a session is the slowest whatever it measures (in six sessions by 10-25%): one run first, not counted.
m1 prime
m1 off
stop_pair

# ---- 3. subscriptions on: M1 without subscribers, then with them, then the deliveries ---------
start_pair on
m1 on
rss_a0=$(rss_kb "$PID_A" VmRSS); rss_b0=$(rss_kb "$PID_B" VmRSS)
log "connecting $((SITES * PER_SITE)) subscribers ($PER_SITE per site over $SITES sites, half on each instance)"
OPERATOR_TOKEN=$OPERATOR_TOKEN "$LOADGEN" run --sites "$SITES_FILE" --urls "$URL_A,$URL_B" --per-site "$PER_SITE" \
  --control "$CONTROL" --rate "$RATE" --duration "$CHANGE_SECONDS" \
  --cpu "server_a=$PID_A" --cpu "server_b=$PID_B" >"$LOGS/loadgen.txt" 2>&1 &
GEN_PID=$!
until [ -e "$CONTROL/connected" ]; do
  pid_alive "$GEN_PID" || { cat "$LOGS/loadgen.txt" >&2; die "the load generator stopped while connecting"; }
  sleep 0.2
done
sleep 2 # let the servers settle (allocator, first states sent)
rss_a1=$(rss_kb "$PID_A" VmRSS); rss_b1=$(rss_kb "$PID_B" VmRSS)
connected=$(grep '^CONNECTED ' "$LOGS/loadgen.txt")
per=$(( SITES * PER_SITE / 2 ))
note "memory: instance A RSS $(mib "$rss_a0") -> $(mib "$rss_a1") MiB, B $(mib "$rss_b0") -> $(mib "$rss_b1") MiB with $per subscribers each: $(awk -v a0="$rss_a0" -v a1="$rss_a1" -v b0="$rss_b0" -v b1="$rss_b1" -v n="$per" 'BEGIN {printf "%.1f KiB (A), %.1f KiB (B) per subscriber", (a1 - a0) / n, (b1 - b0) / n}')"
note "${connected#CONNECTED }"
m1_started=$(date +%s.%N)
m1 subscribers
m1_seconds=$(awk -v a="$m1_started" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')
log "changes: setPoolTotal at $RATE/s for $CHANGE_SECONDS s"
counted_a0=$(deliveries "$URL_A"); counted_b0=$(deliveries "$URL_B")
touch "$CONTROL/go"
wait "$GEN_PID" || { cat "$LOGS/loadgen.txt" >&2; GEN_PID=""; die "the load generator failed"; }
GEN_PID=""
note "during the changes the instances counted $(awk -v a0="$counted_a0" -v b0="$counted_b0" -v a1="$(deliveries "$URL_A")" \
  -v b1="$(deliveries "$URL_B")" 'BEGIN {printf "%d (A) + %d (B) = %d", a1 - a0, b1 - b0, a1 - a0 + b1 - b0}') licensePools deliveries"
waited=$(grep '^WAITED ' "$LOGS/loadgen.txt")
note "before the changes (first states, M1's deliveries): ${waited#WAITED }"
if [[ " $M1_RUNS " == *" subscribers "* ]]; then
  note "during M1 with subscribers ($(printf %.0f "$m1_seconds") s with its warm-up), the Bench site's $PER_SITE subscribers got $(awk -v m="$(field messages "$waited")" -v first="$((SITES * PER_SITE))" -v n="$PER_SITE" -v s="$m1_seconds" 'BEGIN {printf "%.0f states each per second", (m - first) / n / s}') (the hub folds the changes that commit while it reads)"
fi
rss_a2=$(rss_kb "$PID_A" VmRSS); rss_b2=$(rss_kb "$PID_B" VmRSS)
note "after the changes: instance A RSS $(mib "$rss_a2") MiB, B $(mib "$rss_b2") MiB, peak $(mib "$(rss_kb "$PID_A" VmHWM)") / $(mib "$(rss_kb "$PID_B" VmHWM)") MiB"
# The first two runs again, in reverse order, to show how much M1 drifts within the session.
m1 on-again
stop_pair
start_pair off-again --subscriptions false
m1 off-again
stop_pair

# ---- 4. the report ---------------------------------------------------------------------------
delivery=$(grep '^DELIVERY ' "$LOGS/loadgen.txt")
latency=$(grep '^LATENCY ' "$LOGS/loadgen.txt")
cpu=$(grep '^CPU ' "$LOGS/loadgen.txt")
{
  echo "license-gateway subscription benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "host: $(nproc) cores, $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo); PostgreSQL $(psql -X -At "$PG_URL/postgres" -c 'show server_version')"
  echo "data: Bench site N=$N + $((SITES - 1)) sites; $PER_SITE subscribers per site ($((SITES * PER_SITE)) in all), half on each of two instances"
  echo "server flags: defaults${SERVER_FLAGS:+ plus $SERVER_FLAGS}"
  echo
  if [ -s "$ROWS" ]; then
    echo "M1 (changeLoginProfile, wrk -t$THREADS -c$CONC against instance A, ${WARMUP}s warm-up + ${DURATION}s measured):"
    awk -v subs="$((SITES * PER_SITE))" '
      function v(k,   i, kv) { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) return kv[2] } return "" }
      BEGIN {
        fmt = "| %-30s | %7s | %6s | %6s | %6s | %13s | %4s | %4s | %4s | %4s | %6s | %14s |\n"
        printf fmt, "run", "req/s", "p50 ms", "p99 ms", "errors", "acc./refused", "A%", "B%", "db%", "wrk%", "other%", "load (1,5,15)"
        printf "|--------------------------------|--------:|-------:|-------:|-------:|--------------:|-----:|-----:|-----:|-----:|-------:|----------------|\n"
      }
      {
        name = v("run")
        if (name ~ /^off/) label = "--subscriptions false"; else if (name ~ /^on/) label = "on, no subscriber"; else label = "on, " subs " subscribers"
        if (name ~ /again$/) label = label " (again)"; name = label
        printf fmt, name, sprintf("%.0f", v("rps")), v("p50_ms"), v("p99_ms"), v("sock_errors") + v("non2xx") + v("gql_errors"),
          v("accepted") "/" v("rejected"), v("a_cpu"), v("b_cpu"), v("db_cpu"), v("wrk_cpu"), v("other_cpu"), v("load")
      }' "$ROWS"
    echo
  fi
  echo "Deliveries (setPoolTotal through the API at $RATE/s for ${CHANGE_SECONDS}s, alternating instances, round robin over the sites):"
  echo "  ${delivery#DELIVERY }"
  echo "  latency from just before the mutation was sent (send_) and from its answer (answer_; may be negative:"
  echo "  the message can come before the answer), to each subscriber of the site; mutation_ = its round trip:"
  echo "  ${latency#LATENCY }"
  echo "  CPU in % of one core over the changes: ${cpu#CPU }"
  echo
  cat "$NOTES"
} >"$BENCH_DIR/subscriptions.txt"
cat "$BENCH_DIR/subscriptions.txt"
