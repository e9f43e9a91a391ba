#!/usr/bin/env bash
# Instructions the server executes per request (valgrind callgrind), for Q1, Q2 and M1 (accepted and
# refused changeLoginProfile of users without modules to a profile with every module): unlike req/s,
# repeatable to within 1% whatever else the host does, so it tells whether a change made the
# server's own work smaller. SQL runs in PostgreSQL, outside the count (with BACKEND=sqlite it
# runs inside the server and is counted). See bench/README.md.
#
# Environment (all optional): BACKEND (postgres | sqlite), N (people, 50000), REQUESTS (100 per
# test), PG_URL (postgres://postgres@127.0.0.1:5432), PORT (5059), WORK (/tmp/license-gateway-instr),
# KEEP_ALIVE (1: Q1 and Q2 on one kept connection, as wrk sends them, so the count leaves out what
# a new connection costs; 0, the default: a new connection per request), RUST_LOG (warn; info adds
# the access line), BIN (a binary to measure instead of building the checkout, e.g. to compare two
# builds).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
BACKEND=${BACKEND:-postgres}
N=${N:-50000}
REQUESTS=${REQUESTS:-100}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PORT=${PORT:-5059}
WORK=${WORK:-/tmp/license-gateway-instr}
KEEP_ALIVE=${KEEP_ALIVE:-0}
LOG=${RUST_LOG:-warn}
URL=http://127.0.0.1:$PORT/graphql
PASSWORD=instr-admin-password
SRV=""

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
cleanup() {
  [ -n "$SRV" ] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null
  [ "$BACKEND" = postgres ] && psql -X -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS lg_instr_$N" 2>/dev/null
  true
}
trap cleanup EXIT INT TERM

tools="valgrind jq curl"
[ "$BACKEND" = sqlite ] && tools="$tools sqlite3"
for tool in $tools; do
  command -v $tool >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $tool >/dev/null; }
done
if [ -z "${BIN:-}" ]; then
  log "cargo build --profile release-lto --locked"
  (cd "$ROOT" && cargo build --profile release-lto --locked --quiet) || die "build failed"
  BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release-lto/license-gateway
fi
mkdir -p "$WORK"
rm -f "$WORK"/callgrind.*

case $BACKEND in
  postgres)
    DB=$PG_URL/lg_instr_$N
    psql -X -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS lg_instr_$N" -c "CREATE DATABASE lg_instr_$N" ;;
  sqlite)
    DB=sqlite:$WORK/lg_instr_$N.db
    rm -f "$WORK/lg_instr_$N.db"* ;;
  *) die "BACKEND must be postgres or sqlite" ;;
esac
log "generate --people $N ($BACKEND)"
DATABASE_URL=$DB "$BIN" generate --people "$N" --admin-password "$PASSWORD" >"$WORK/generate.txt"

DATABASE_URL=$DB LISTEN=127.0.0.1:$PORT RUST_LOG=$LOG valgrind --tool=callgrind \
  --callgrind-out-file="$WORK/callgrind.%p" "$BIN" serve >"$WORK/server.log" 2>&1 &
SRV=$!
for _ in $(seq 600); do
  curl -sf -o /dev/null -H 'Content-Type: application/json' --data '{"query":"{ __typename }"}' "$URL" && break
  kill -0 "$SRV" 2>/dev/null || die "server exited: $(tail -3 "$WORK/server.log")"
  sleep 0.2
done
TOKEN=$(curl -sS -H 'Content-Type: application/json' --data-binary "$(jq -nc --arg p "$PASSWORD" \
  '{query: "mutation($p: String!) { signIn(username: \"bench-admin\", password: $p) { ... on SignInSuccess { token } } }", variables: {p: $p}}')" \
  "$URL" | jq -r '.data.signIn.token // empty')
[ -n "$TOKEN" ] || die "could not sign in"

send() { # BODY_FILE COUNT
  if [ "$KEEP_ALIVE" = 1 ]; then # one curl, one connection, COUNT requests
    curl -sS -o /dev/null -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" --data-binary "@$1" \
      $(for _ in $(seq "$2"); do printf '%s ' "$URL"; done) >/dev/null
    return
  fi
  for _ in $(seq "$2"); do
    curl -sS -o /dev/null -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" --data-binary "@$1" "$URL"
  done
}
count() { # -> instructions since the last zeroing
  callgrind_control -d "$SRV" >/dev/null 2>&1
  local f
  f=$(ls -t "$WORK"/callgrind."$SRV"* | head -1)
  callgrind_annotate "$f" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
}

echo "license-gateway instructions per request ($BACKEND, N=$N, $REQUESTS sequential requests each, after 20 to warm up, KEEP_ALIVE=$KEEP_ALIVE, RUST_LOG=$LOG)"
for t in q1 q2; do
  jq -Rsc '{query: .}' "$HERE/queries/$t.graphql" >"$WORK/$t.json"
  send "$WORK/$t.json" 20
  callgrind_control -z "$SRV" >/dev/null 2>&1
  send "$WORK/$t.json" "$REQUESTS"
  total=$(count)
  printf '%s  %d instructions per request\n' "$(tr a-z A-Z <<<"$t")" $((total / REQUESTS))
done

# M1: distinct live users of a profile without modules, each moved once to a profile with every
# module, so that every change needs one license of each module: first with the pools far from
# full (accepted: the whole transaction), then with them full (refused on the lock-free read).
sql() { # SQL -> rows (as run.sh's sql)
  case $BACKEND in
    postgres) psql -X -q -At -v ON_ERROR_STOP=1 "$DB" -c "$1" ;;
    sqlite) sqlite3 -cmd ".timeout 30000" "${DB#sqlite:}" "$1" ;;
  esac
}
site=$(sed -nE 's/^BENCH site=([0-9]+) .*/\1/p' "$WORK/generate.txt")
none=$(sql "SELECT MIN(id) FROM profiles p WHERE site_id = $site AND NOT EXISTS
  (SELECT 1 FROM profile_modules pm WHERE pm.profile_id = p.id)")
full=$(sql "SELECT MIN(id) FROM profiles p WHERE site_id = $site AND
  (SELECT COUNT(*) FROM profile_modules pm WHERE pm.profile_id = p.id) = (SELECT COUNT(*) FROM modules)")
gid() { printf '%s:%s' "$1" "$2" | basenc --base64url | tr -d '=\n'; }
sql "SELECT id FROM logins WHERE profile_id = $none AND deleted_at IS NULL AND occupying = 1 ORDER BY id
  LIMIT $((2 * (20 + REQUESTS)))" >"$WORK/m1-logins.txt"
[ "$(wc -l <"$WORK/m1-logins.txt")" -eq $((2 * (20 + REQUESTS))) ] || die "too few users without modules for M1"
m1() { # FIRST_LINE COUNT: one request per login
  sed -n "$1,$(($1 + $2 - 1))p" "$WORK/m1-logins.txt" | while read -r login; do
    jq -nc --rawfile q "$HERE/queries/m1.graphql" --arg id "$(gid User "$login")" --arg p "$(gid Profile "$full")" \
      '{query: $q, variables: {id: $id, profileId: $p}}' >"$WORK/m1.json"
    curl -sS -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" --data-binary "@$WORK/m1.json" "$URL" \
      | jq -r '.data.changeLoginProfile.__typename // "ERROR"'
  done
}
for kind in accepted refused; do
  if [ $kind = accepted ]; then
    sql "UPDATE license_pools SET total = used + 1000 WHERE site_id = $site" >/dev/null; first=1; want=UpdateLoginSuccess
  else
    sql "UPDATE license_pools SET total = used WHERE site_id = $site" >/dev/null; first=$((21 + REQUESTS)); want=LicenseLimitExceeded
  fi
  m1 "$first" 20 >"$WORK/m1-$kind-warmup.txt"
  callgrind_control -z "$SRV" >/dev/null 2>&1
  m1 $((first + 20)) "$REQUESTS" >"$WORK/m1-$kind.txt"
  total=$(count)
  [ "$(sort -u "$WORK/m1-$kind.txt")" = "$want" ] || die "M1 $kind: expected only $want, got $(sort "$WORK/m1-$kind.txt" | uniq -c | tr '\n' ' ')"
  printf 'M1 %s  %d instructions per request\n' "$kind" $((total / REQUESTS))
done
