#!/usr/bin/env bash
# Soak: `ancm` under a fixed-rate mixed load (small GETs, 64 KiB POSTs echoed, WebSocket
# sessions) at 80 % of the maximum rate measured first, for SOAK_SECONDS, with one backend
# crash (SIGKILL of the backend process) and one web.config change in the middle; the
# gateway's RSS, open file descriptors, threads and TCP connections sampled every 10 s; then
# the gateway left alone for 60 s and its CPU over that minute measured. Only 127.0.0.1
# traffic; every step is bounded in time.
#
#   benches/load/soak.sh                   # 10 minutes of load (~13 minutes in all)
#   SOAK_SECONDS=60 benches/load/soak.sh   # quick check (~2.5 minutes)
#
# Writes benches/load/results/soak-<SOAK_SECONDS>s.{csv,svg,txt} (samples and events, the
# plot, the summary; see soak_report.py) and prints the summary.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SOAK_SECONDS=${SOAK_SECONDS:-600}
PROBE_SECONDS=${PROBE_SECONDS:-10}   # the short run at full speed that measures the maximum
LOAD_PERCENT=${LOAD_PERCENT:-80}     # of the measured maximum
IDLE_SECONDS=${IDLE_SECONDS:-60}
SAMPLE_SECONDS=${SAMPLE_SECONDS:-10}
CONNECTIONS=${CONNECTIONS:-32}
WS_SESSIONS=${WS_SESSIONS:-4}
POST_EVERY=${POST_EVERY:-10}         # every 10th request a 64 KiB POST
ANCM_PORT=${ANCM_PORT:-18090}
OUT=${OUT:-$ROOT/benches/load/results}
CRASH_AT=$((SOAK_SECONDS * 40 / 100))    # seconds into the soak
CHANGE_AT=$((SOAK_SECONDS * 60 / 100))

command -v curl >/dev/null || {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends curl >/dev/null
}

cargo build --release --bin ancm --example hello_backend >&2
ANCM=$ROOT/target/release/ancm
HELLO=$ROOT/target/release/examples/hello_backend
# The load generator is a bench target (benches/load/soak_load.rs), built like the others.
LOAD=$(cargo bench --bench soak_load --no-run --message-format=json-render-diagnostics |
  python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "soak_load" and m.get("executable"):
        print(m["executable"])')
[ -x "$LOAD" ] || { echo "soak_load was not built" >&2; exit 1; }

WORK=$(mktemp -d)
ANCM_PID=""
cleanup() {
  [ -n "$ANCM_PID" ] && kill "$ANCM_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/site" "$WORK/load" "$OUT"
# No ASPNETCORE_PORT: each backend gets a port of its own, so the recycle starts the new
# backend before it stops the old one (a fixed port would stop first, with downtime).
web_config() {
  cat <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <system.webServer>
    <aspNetCore processPath="$HELLO" stdoutLogEnabled="false" hostingModel="outofprocess">
      <environmentVariables>
        <environmentVariable name="SOAK_GENERATION" value="$1" />
      </environmentVariables>
    </aspNetCore>
  </system.webServer>
</configuration>
XML
}
web_config 1 > "$WORK/site/web.config"

now_ms() { date +%s%3N; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
backend_pid() { pgrep -P "$ANCM_PID" | head -1 || true; }
EVENTS=$WORK/events.csv
echo "unix_ms,event,detail" > "$EVENTS"
event() { echo "$(now_ms),$1,$2" >> "$EVENTS"; }
event_at() { echo "$1,$2,$3" >> "$EVENTS"; }   # UNIX_MS EVENT DETAIL
SAMPLES=$WORK/samples.csv
echo "unix_ms,phase,rss_kib,fds,threads,client_conns,backend_conns,backend_pid" > "$SAMPLES"
sample() { # PHASE
  local status rss threads fds clients all
  status=$(cat "/proc/$ANCM_PID/status")
  rss=$(awk '$1 == "VmRSS:" {print $2}' <<<"$status")
  threads=$(awk '$1 == "Threads:" {print $2}' <<<"$status")
  fds=$(find "/proc/$ANCM_PID/fd" -mindepth 1 -maxdepth 1 | wc -l)
  # Established TCP connections of the gateway: from clients (its listening port) and to
  # backends (everything else).
  all=$(ss -Htnp state established 2>/dev/null | grep -c "pid=$ANCM_PID," || true)
  clients=$(ss -Htnp state established "( sport = :$ANCM_PORT )" 2>/dev/null | grep -c "pid=$ANCM_PID," || true)
  echo "$(now_ms),$1,$rss,$fds,$threads,$clients,$((all - clients)),$(backend_pid)" >> "$SAMPLES"
}
wait_until() { # TIMEOUT_S COMMAND...: poll every 0.1 s
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}
answers() { curl -fsS -o /dev/null "http://127.0.0.1:$ANCM_PORT/" 2>/dev/null; }
new_backend() { local pid; pid=$(backend_pid); [ -n "$pid" ] && [ "$pid" != "$1" ]; }

RUST_LOG=${RUST_LOG:-info} "$ANCM" run "$WORK/site" --listen "127.0.0.1:$ANCM_PORT" 2>"$WORK/ancm.log" &
ANCM_PID=$!
wait_until 30 answers || { echo "ancm does not answer" >&2; cat "$WORK/ancm.log" >&2; exit 1; }
LOAD_ARGS=(--addr "127.0.0.1:$ANCM_PORT" --connections "$CONNECTIONS" --ws-sessions "$WS_SESSIONS" --post-every "$POST_EVERY")

echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
PROBE=$(timeout $((PROBE_SECONDS + 30)) "$LOAD" "${LOAD_ARGS[@]}" --rate 0 --seconds "$PROBE_SECONDS" | tail -1)
MAX_RATE=$(sed -n 's/.* rate=\([0-9]*\).*/\1/p' <<<"$PROBE")
RATE=$((MAX_RATE * LOAD_PERCENT / 100))
echo "# probe ($PROBE_SECONDS s, full speed): $PROBE -> soak at $RATE req/s" >&2
event probe "$PROBE"
sleep 5
sample baseline

event soak_start "rate=$RATE"
timeout $((SOAK_SECONDS + 60)) "$LOAD" "${LOAD_ARGS[@]}" --rate "$RATE" --seconds "$SOAK_SECONDS" \
  --out "$WORK/load" > "$WORK/load.out" &
LOAD_PID=$!
START=$(date +%s)
NEXT_SAMPLE=$SAMPLE_SECONDS
CRASHED=""; CHANGED=""
while kill -0 "$LOAD_PID" 2>/dev/null; do
  T=$(( $(date +%s) - START ))
  if [ "$T" -ge "$NEXT_SAMPLE" ]; then sample soak; NEXT_SAMPLE=$((NEXT_SAMPLE + SAMPLE_SECONDS)); fi
  if [ -z "$CRASHED" ] && [ "$T" -ge "$CRASH_AT" ]; then
    CRASHED=$(backend_pid)
    AT=$(now_ms)
    kill -9 "$CRASHED"
    event_at "$AT" crash "SIGKILL backend $CRASHED"
    wait_until 30 new_backend "$CRASHED" && event restarted "backend $(backend_pid)" || event restarted "none within 30 s"
  fi
  if [ -z "$CHANGED" ] && [ "$T" -ge "$CHANGE_AT" ]; then
    CHANGED=$(backend_pid)
    AT=$(now_ms)
    # Rewritten in place (truncated, then written), as an editor saves it.
    web_config 2 > "$WORK/site/web.config"
    event_at "$AT" config_change "SOAK_GENERATION=2 (backend $CHANGED)"
    wait_until 60 new_backend "$CHANGED" && event recycled "backend $(backend_pid)" || event recycled "none within 60 s"
  fi
  sleep 0.2
done
wait "$LOAD_PID" || true
event soak_end "$(tail -1 "$WORK/load.out")"

# Left alone: no request for IDLE_SECONDS; CPU over that time.
CPU0=$(ticks "$ANCM_PID")
for _ in $(seq 1 $((IDLE_SECONDS / SAMPLE_SECONDS))); do sleep "$SAMPLE_SECONDS"; sample idle; done
CPU1=$(ticks "$ANCM_PID")
event idle_cpu "ticks=$((CPU1 - CPU0)) hz=$(getconf CLK_TCK) seconds=$IDLE_SECONDS"

kill -TERM "$ANCM_PID"
CODE=0; wait "$ANCM_PID" || CODE=$?
ANCM_PID=""
event exit "code=$CODE"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
event loadavg "$(cut -d' ' -f1-3 /proc/loadavg)"

python3 "$ROOT/benches/load/soak_report.py" --work "$WORK" --out "$OUT" --name "soak-${SOAK_SECONDS}s" \
  --warmup "$(( SOAK_SECONDS / 5 < 60 ? SOAK_SECONDS / 5 : 60 ))"
grep -E "ERROR|WARN" "$WORK/ancm.log" | tail -20 >&2 || true
