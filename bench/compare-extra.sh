#!/usr/bin/env bash
# EXTRA_CMD of compare-ours.sh: started by compare.sh (in its own process group, with
# DATABASE_URL and PORT) once the peers' seed is in place; ends by exec'ing our server, so that
# compare.sh measures (and stops) the server process itself. Before that it
#   1. generates our site with N = the number of people compare.sh seeded (same data, our schema),
#   2. signs in as bench-admin on a temporary instance (another port: compare.sh polls $PORT) and
#      leaves the token where compare.sh's patched post() and our wrk scripts read it,
#   3. starts a watcher that resets our pools to usage + M1_HEADROOM when compare.sh announces our
#      M1 run, and runs `license-gateway verify` once that run's measurement is over.
# Needs (exported by compare-ours.sh): OURS_DIR OURS_BIN OURS_QUERIES BENCH_DIR M1_HEADROOM
# EXTRA_NAME EXTRA_HEADERS_FILE BENCH_ENV_FILE.
set -euo pipefail
: "${DATABASE_URL:?}" "${PORT:?}" "${OURS_DIR:?}" "${OURS_BIN:?}" "${OURS_QUERIES:?}" "${BENCH_DIR:?}"
: "${EXTRA_HEADERS_FILE:?}" "${BENCH_ENV_FILE:?}"
PASSWORD=bench-admin-password
log() { printf '[%s] compare-extra: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

n=$(psql -X -At "$DATABASE_URL" -c 'SELECT count(*) FROM app.people')
notes=$OURS_DIR/notes-$n.txt
rm -f "$OURS_DIR/verify-$n.txt" "$BENCH_ENV_FILE" "$EXTRA_HEADERS_FILE"

# 1. our data, from the same N
t0=$(date +%s.%N)
"$OURS_BIN" generate --people "$n" --admin-password "$PASSWORD" --user-ids "$OURS_DIR/users.txt" \
  >"$OURS_DIR/generate-$n.txt" 2>&1
bench=$(grep '^BENCH ' "$OURS_DIR/generate-$n.txt")
field() { sed -nE "s/.*(^| )$1=([^ ]*).*/\\2/p" <<<"$bench"; }
site=$(field site)
gids() { tr ',' '\n' | while read -r id; do printf 'Profile:%s' "$id" | basenc --base64url | tr -d '=\n'; echo; done | paste -sd,; }
echo "  N=$n: generated in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}') s; pools (used/total) CASE $(field CASE), DOCUMENT $(field DOCUMENT)" >"$notes"

# 2. a session for bench-admin, made on a temporary instance on a free port
LISTEN=127.0.0.1:0 RUST_LOG=warn "$OURS_BIN" serve >"$OURS_DIR/signin-$n.log" 2>&1 &
tmp=$!
url=""
for _ in $(seq 1 300); do
  url=$(sed -nE 's|.*listening on (http://[^/]+)/.*|\1/graphql|p' "$OURS_DIR/signin-$n.log")
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { kill "$tmp"; log "temporary instance did not start"; exit 1; }
body=$(jq -nc --arg p "$PASSWORD" '{query: "mutation($u: String!, $p: String!) { signIn(username: $u, password: $p) { ... on SignInSuccess { token } } }", variables: {u: "bench-admin", p: $p}}')
token=$(curl -sS -H 'Content-Type: application/json' --data-binary "$body" "$url" | jq -r '.data.signIn.token // empty')
kill -TERM "$tmp"
wait "$tmp" || true
[ -n "$token" ] || { log "could not sign in as bench-admin"; exit 1; }
printf 'Authorization: Bearer %s\n' "$token" >"$EXTRA_HEADERS_FILE"
{
  echo "TOKEN=$token"
  echo "USER_IDS=$OURS_DIR/users.txt"
  echo "PROFILE_IDS=$(field profiles | gids)"
  echo "FULL_PROFILE_IDS=$(field all_module_profiles | gids)"
  echo "QUERY_FILE=$OURS_QUERIES/m1.graphql"
} >"$BENCH_ENV_FILE"

# 3. M1: our pools to usage + headroom when compare.sh starts our M1 run (it waits >= 2 s for an
#    idle host first), verify after its measurement. The verify runs in a session of its own, so
#    that stopping our server (compare.sh signals the whole process group) does not cut it off.
(
  while ! grep -qs "srv=${EXTRA_NAME:-ours} n=$n test=M1" "$BENCH_DIR/current"; do sleep 0.1; done
  psql -X -q "$DATABASE_URL" -c "UPDATE license_pools SET total = used + ${M1_HEADROOM:-20} WHERE site_id = $site"
  echo "  N=$n: M1: our pools reset to usage + ${M1_HEADROOM:-20} before the warm-up" >>"$notes"
  stats="SELECT (SELECT xact_commit || ' ' || xact_rollback FROM pg_stat_database WHERE datname = current_database())
    || ' ' || (SELECT COALESCE(max(id), 0) FROM audit_events)"
  before=$(psql -X -At "$DATABASE_URL" -c "$stats")
  events="SELECT string_agg(outcome || ' ' || n, ', ') FROM (SELECT outcome, count(*) AS n FROM audit_events
    WHERE id > ${before##* } AND action = 'updateLogin' GROUP BY outcome ORDER BY outcome) e"
  setsid bash -c '
    out=$1; notes=$2; n=$3; site=$4; stats=$5; before=$6; events=$7
    while ! grep -qs "^RESULT" "$out"; do sleep 0.1; done
    read -r c0 r0 _ <<<"$before"
    read -r c1 r1 _ <<<"$(psql -X -At "$DATABASE_URL" -c "$stats")"
    events=$(psql -X -At "$DATABASE_URL" -c "$events")
    echo "  N=$n: M1 (warm-up included): commits $((c1 - c0)), rollbacks $((r1 - r0)) (refusals decided at the lock); events $events" >>"$notes"
    "$OURS_BIN" verify >"$OURS_DIR/verify-$n.txt" 2>&1 && ok="ok (no drift, no over-allocation)" || ok="FAILED"
    pools=$(psql -X -At "$DATABASE_URL" -c "SELECT string_agg(m.code || chr(32) || lp.used || chr(47) || lp.total, chr(44) || chr(32) ORDER BY m.id)
      FROM license_pools lp JOIN modules m ON m.id = lp.module_id WHERE lp.site_id = $site")
    echo "  N=$n: after M1: verify $ok; used/total $pools" >>"$notes"
  ' verify "$BENCH_DIR/logs/wrk-extra-$n-M1.txt" "$notes" "$n" "$site" "$stats" "$before" "$events" </dev/null >/dev/null 2>&1 &
) </dev/null >/dev/null 2>&1 &

exec env LISTEN="127.0.0.1:$PORT" RUST_LOG="${RUST_LOG:-warn}" "$OURS_BIN" serve
