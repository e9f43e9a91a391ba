#!/usr/bin/env bash
# Runs the optional peer comparison (the peer harness's compare.sh: PostGraphile, Apollo, the
# raw axum ceiling) with license-gateway as its extra server "ours", in one session on one
# seeded PostgreSQL, so the report can give ratios. The harness is not part of this repository:
# see bench/README.md, "Beside the peers", for what it is and where it comes from.
#
# Environment: everything compare.sh reads (SIZES, SERVERS, TESTS, DURATION, M1_HEADROOM, ...;
# TESTS="Q1 Q2 M1" skips PostGraphile's Q2view), plus
#   PEERS_DIR   the peer harness (default ../shared/peers beside the repository, where the
#               workspace keeps it)
#   BENCH_DIR   compare.sh's work folder (default /tmp/peers-compare-ours)
#   OURS_PORT   port of our server (5058)
#   OURS_BIN    a binary of ours to measure instead of building the checkout (e.g. to compare two
#               builds in one session)
# SERVERS=" " (a blank) measures ours alone, e.g. to try this script quickly.
#
# How ours fits in, given that compare.sh was written for servers without authentication:
# - Data: compare.sh seeds its `app` schema; our server migrates its own tables into the same
#   database and bench/compare-extra.sh (our EXTRA_CMD) runs `license-gateway generate` with N =
#   the number of seeded people. generate follows seed.sql row for row (same usernames, names,
#   dates, profiles, deletions), so both schemas hold the same site with the same usage.
# - One difference is a rule of ours: a deleted person's login is deleted with them (R6, R7),
#   while seed.sql leaves it. compare-ours.sql (EXTRA_SQL, applied for ours only) removes those
#   logins from the `app` copy too, so compare.sh's reference answers hold for our Q1.
# - Authentication: every request of ours needs `Authorization: Bearer ...`, and compare.sh
#   sends only Content-Type (its post() and its Q1/Q2 wrk script). So this script runs a copy
#   of the harness with two small patches that apply to the extra server only: post() adds the
#   headers in $EXTRA_HEADERS_FILE, and Q1/Q2 use $EXTRA_POST_LUA (our bench/lua/post.lua). The
#   peers' requests are unchanged. compare-extra.sh signs in before the server is handed over.
# - M1 uses our bench/lua/m1.lua (EXTRA_M1_LUA). compare.sh resets and checks only the `app`
#   pools; for ours compare-extra.sh does both: it resets our pools to usage + M1_HEADROOM when
#   compare.sh announces our M1 run, and runs `license-gateway verify` after it. This script
#   prints those results and fails when verify found drift or over-allocation.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PEERS_DIR=${PEERS_DIR:-$(cd "$ROOT/../shared/peers" 2>/dev/null && pwd || echo /work/shared/peers)}
export BENCH_DIR=${BENCH_DIR:-/tmp/peers-compare-ours}
OURS_DIR=$BENCH_DIR/ours
HARNESS=$BENCH_DIR/harness

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ -f "$PEERS_DIR/compare.sh" ] || die "no compare.sh in $PEERS_DIR (set PEERS_DIR)"
for c in jq curl psql; do command -v $c >/dev/null || die "$c not found"; done
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

if [ -z "${OURS_BIN:-}" ]; then
  log "cargo build --profile release-lto --locked"
  (cd "$ROOT" && cargo build --profile release-lto --locked --quiet) || die "build failed"
  OURS_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release-lto/license-gateway
fi
[ -x "$OURS_BIN" ] || die "OURS_BIN=$OURS_BIN is not an executable"

# ---- a writable copy of the harness, patched for a server with authentication -------------
rm -rf "$HARNESS" "$OURS_DIR"
mkdir -p "$HARNESS" "$OURS_DIR"
cp -r "$PEERS_DIR"/. "$HARNESS"/
chmod -R u+w "$HARNESS"
patch_once() { # FILE OLD NEW: replaces the one occurrence of OLD, or fails
  python3 - "$@" <<'PY'
import sys
path, old, new = sys.argv[1:4]
text = open(path).read()
if text.count(old) != 1:
    sys.exit(f"compare-ours.sh: cannot patch {path}: expected one occurrence of {old!r}, found {text.count(old)}")
open(path, "w").write(text.replace(old, new))
PY
}
patch_once "$HARNESS/compare.sh" \
  $'  curl -sS --max-time 120 -H \'Content-Type: application/json\' --data-binary "@$2" "$1"' \
  $'  local extra=()  # compare-ours.sh: headers of the extra server (its bearer token)\n  if [ "$SRV_KEY" = extra ] && [ -n "${EXTRA_HEADERS_FILE:-}" ]; then extra=(-H "@$EXTRA_HEADERS_FILE"); fi\n  curl -sS --max-time 120 -H \'Content-Type: application/json\' "${extra[@]}" --data-binary "@$2" "$1"'
patch_once "$HARNESS/compare.sh" \
  $'    WRK_SCRIPT=$LUA_DIR/post.lua WRK_ENV=(BODY_FILE="${!b}" REJECT_MARKER="$SRV_REJECT")' \
  $'    WRK_SCRIPT=$LUA_DIR/post.lua WRK_ENV=(BODY_FILE="${!b}" REJECT_MARKER="$SRV_REJECT")\n    # compare-ours.sh: the extra server\'s own Q1/Q2 script (it adds the bearer token)\n    if [ "$SRV_KEY" = extra ] && [ -n "${EXTRA_POST_LUA:-}" ]; then WRK_SCRIPT=$EXTRA_POST_LUA; fi'

# ---- what compare.sh and compare-extra.sh need ------------------------------------------------
jq -Rsc '{query: .}' "$HERE/queries/q1.graphql" >"$OURS_DIR/q1.json"
jq -Rsc '{query: .}' "$HERE/queries/q2.graphql" >"$OURS_DIR/q2.json"
export EXTRA_NAME=ours
export EXTRA_PORT=${OURS_PORT:-5058}
export EXTRA_CMD="exec bash '$HERE/compare-extra.sh'"
export EXTRA_Q1_BODY=$OURS_DIR/q1.json EXTRA_Q2_BODY=$OURS_DIR/q2.json
export EXTRA_POST_LUA=$HERE/lua/post.lua EXTRA_M1_LUA=$HERE/lua/m1.lua
export EXTRA_REJECT_MARKER=LicenseLimitExceeded
export EXTRA_SQL=$HERE/compare-ours.sql
export EXTRA_HEADERS_FILE=$OURS_DIR/headers.txt
# read by compare-extra.sh and by our wrk scripts (settings that exist only once our server runs)
export OURS_DIR OURS_BIN OURS_QUERIES=$HERE/queries
export BENCH_LUA_DIR=$HERE/lua BENCH_ENV_FILE=$OURS_DIR/current.env
export M1_HEADROOM=${M1_HEADROOM:-20}
export RESULTS_DIR=${RESULTS_DIR:-$BENCH_DIR/results}
export READY_WAIT_S=${READY_WAIT_S:-180}   # generate runs before our server listens

set +e
bash "$HARNESS/compare.sh"
rc=$?
set -e

# ---- our own checks, which compare.sh cannot make on our tables ------------------------------
echo
echo "ours (license-gateway):"
cat "$OURS_DIR"/notes-*.txt 2>/dev/null || echo "  no notes: our server did not run"
bad=0
for f in "$OURS_DIR"/verify-*.txt; do
  [ -e "$f" ] || continue
  grep -q '^all counters match a fresh recount' "$f" || { bad=1; echo "!!! $f:"; cat "$f"; }
done
if [[ " ${TESTS:-Q1 Q2 Q2view M1} " == *" M1 "* ]] && ! ls "$OURS_DIR"/verify-*.txt >/dev/null 2>&1; then
  bad=1; echo "!!! no verify after M1 was recorded for ours"
fi
[ $bad = 0 ] || die "ours: verify found drift or over-allocation after M1 (or did not run)"
exit $rc
