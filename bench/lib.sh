# Helpers shared by the benchmark scripts (sourced by run.sh and subscriptions.sh).
# Expects BENCH_DIR (scratch folder) and NOTES (a file that note() appends to) to be set.

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
note() { echo "$*" >>"$NOTES"; log "$*"; }
pid_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
field() { sed -nE "s/.*(^| )$1=([^ ]*).*/\\2/p" <<<"$2"; }   # KEY LINE -> value

# ---- a server process --------------------------------------------------------------------
# start_gateway BIN LOG URL [VAR=value ...] [-- FLAG ...]: runs `BIN FLAG... serve` with those
# variables in the background, waits until URL answers a query (60 s at most); sets STARTED_PID.
start_gateway() {
  local bin=$1 logf=$2 url=$3 i vars=() flags=(); shift 3
  while [ $# -gt 0 ] && [ "$1" != -- ]; do vars+=("$1"); shift; done
  [ $# -gt 0 ] && shift && flags=("$@")
  env "${vars[@]}" "$bin" "${flags[@]}" serve >"$logf" 2>&1 &
  STARTED_PID=$!
  for ((i = 0; i < 600; i++)); do
    pid_alive "$STARTED_PID" || { cat "$logf" >&2; die "server exited before it was ready ($logf)"; }
    curl -sf -o /dev/null -H 'Content-Type: application/json' --data '{"query":"{ __typename }"}' "$url" && return 0
    sleep 0.1
  done
  die "server not ready on $url after 60 s"
}
# stop_pid PID: SIGTERM, then SIGKILL after 10 s.
stop_pid() {
  local i
  if pid_alive "$1"; then
    kill -TERM "$1" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do pid_alive "$1" || break; sleep 0.1; done
    pid_alive "$1" && kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---- memory and CPU ------------------------------------------------------------------------
rss_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }   # PID VmRSS|VmHWM
# CPU accounting in clock ticks (as the peer harness's lib/bench.sh), so that foreign load on the host shows.
HZ=$(getconf CLK_TCK)
host_ticks() { awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6}' /proc/stat; }   # "total idle"
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }                          # utime + stime
db_ticks() { # every PostgreSQL process of this host (0 for SQLite: it runs inside the server)
  [ "$1" = postgres ] || { echo 0; return; }
  local p
  for p in $(pgrep -x postgres || true); do awk '{print $14 + $15 + $16 + $17}' "/proc/$p/stat" 2>/dev/null || true; done |
    awk '{s += $1} END {print s + 0}'
}
# user+sys of this shell's reaped children (wrk), from bash `times`; must run in the main shell
snap_times() { times >"$BENCH_DIR/.times"; }
read_times() { awk 'NR == 2 {for (i = 1; i <= 2; i++) {split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2]} print t}' "$BENCH_DIR/.times"; }
