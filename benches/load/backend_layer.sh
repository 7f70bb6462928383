#!/usr/bin/env bash
# The backend side (issue 13, P5): CPU per request of the same axum hello world
# (crates/iis-integration/examples/axum_app.rs) with IisIntegrationLayer (started with the
# ANCM variables) and without it (no variables: it serves 127.0.0.1:5000 bare), both on CPU 1,
# wrk -c50 on CPU 0 sending what the front sends (token, X-Forwarded-For, X-Forwarded-Proto),
# interleaved. Only 127.0.0.1; every run is bounded.
#
#   benches/load/backend_layer.sh             # 3 rounds × 4 s
#   ROUNDS=1 DURATION=2 benches/load/backend_layer.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-4}
PORT=${PORT:-18190}
TOKEN=0f6d4a52-3b1e-4c1f-9d2a-7f1e2b3c4d5e
cargo build --release -p iis-integration --example axum_app >&2
APP=target/release/examples/axum_app

ASPNETCORE_PORT=$PORT ASPNETCORE_APPL_PATH=/ ASPNETCORE_TOKEN=$TOKEN taskset -c 1 "$APP" >/dev/null 2>&1 &
WITH=$!
env -u ASPNETCORE_PORT -u ASPNETCORE_APPL_PATH -u ASPNETCORE_TOKEN taskset -c 1 "$APP" >/dev/null 2>&1 &
WITHOUT=$!
trap 'kill $WITH $WITHOUT 2>/dev/null || true; wait 2>/dev/null || true' EXIT
HEADERS=(-H "MS-ASPNETCORE-TOKEN: $TOKEN" -H "X-Forwarded-For: 203.0.113.7:51000" -H "X-Forwarded-Proto: https")
for _ in $(seq 1 50); do
  curl -fsS -o /dev/null "${HEADERS[@]}" "http://127.0.0.1:$PORT/" 2>/dev/null &&
    curl -fsS -o /dev/null http://127.0.0.1:5000/ 2>/dev/null && break
  sleep 0.1
done
# utime and stime of the whole process (every thread), in clock ticks.
ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq 1 "$ROUNDS"); do
  for variant in with without; do
    if [ "$variant" = with ]; then pid=$WITH; port=$PORT; else pid=$WITHOUT; port=5000; fi
    read -r user0 sys0 < <(ticks "$pid")
    out=$(taskset -c 0 wrk -t1 -c50 -d"${DURATION}s" "${HEADERS[@]}" "http://127.0.0.1:$port/")
    read -r user1 sys1 < <(ticks "$pid")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    bad=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    [ -n "$bad" ] && echo "WARNING: $variant: $bad non-2xx responses" >&2
    awk -v v="$variant" -v u=$((user1 - user0)) -v s=$((sys1 - sys0)) -v n="$reqs" -v hz="$(getconf CLK_TCK)" \
      'BEGIN {f = 1e6 / hz / n; printf "%-8s %8d requests  %6.2f us CPU per request (user %5.2f, kernel %5.2f)\n", v " layer", n, (u + s) * f, u * f, s * f}'
  done
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
