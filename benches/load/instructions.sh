#!/usr/bin/env bash
# User-space instructions per proxied request, counted by valgrind's callgrind: ancm (and
# ANCM_B, another build, when given) and nginx 1.22 (one worker, master_process off) in
# front of the same hello_backend, wrk -c1 for DURATION seconds with instrumentation on only
# while wrk runs. At -c1 every request is one wake-up of the proxy, so the count hardly
# depends on the machine's load, unlike CPU time: a before/after of a few hundred
# instructions shows. The backend runs outside valgrind. Only 127.0.0.1; every run bounded.
#
#   benches/load/instructions.sh                       # ancm and nginx, 2 runs each
#   ANCM_B=/tmp/ancm-old benches/load/instructions.sh   # + another build, interleaved
#   RUNS=1 DURATION=3 benches/load/instructions.sh
#
# Prints per run: requests, instructions per request; then, for the last run of each, the
# instructions per request by crate (self cost of each function, grouped by its source
# file; std code inlined into a crate's function counts for that crate).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-2}
DURATION=${DURATION:-4}
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 2; }
if [ -z "${ANCM_BIN:-}" ] || [ -z "${HELLO_BIN:-}" ]; then
  cargo build --release --bin ancm --example hello_backend >&2
fi
ANCM=$(realpath "${ANCM_BIN:-target/release/ancm}")
# web.config's processPath is relative to the site folder: absolute paths.
HELLO=$(realpath "${HELLO_BIN:-target/release/examples/hello_backend}")
WORK=$(mktemp -d)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
# A free port in 20000-47999: ASPNETCORE_PORT must lie in 1025-48000 (protocol §2.3).
free_port() {
  python3 -c '
import random, socket
while True:
    p = random.randint(20000, 47999)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    print(p)
    break'
}

wait_up() { # PORT LOG
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "http://127.0.0.1:$1/" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "nothing answers on $1; the last lines of its log:" >&2
  tail -5 "$2" >&2
  return 1
}

# count NAME PID PORT: one instrumented wrk run against PORT; prints "NAME requests ir/req".
count() {
  local name=$1 pid=$2 port=$3 out=$WORK/$1.$4
  timeout 20 wrk -t1 -c1 -d1s "http://127.0.0.1:$port/" >/dev/null
  callgrind_control -i on "$pid" >/dev/null
  timeout $((DURATION + 10)) wrk -t1 -c1 -d"${DURATION}s" "http://127.0.0.1:$port/" >"$out.wrk"
  callgrind_control -i off "$pid" >/dev/null
  callgrind_control -d "$name.$4" "$pid" >/dev/null
  local reqs
  reqs=$(awk '/requests in/ {print $1}' "$out.wrk")
  local file
  file=$(ls -t "$WORK/$name.cg".*  | head -1)
  cp "$file" "$out.cg"
  printf '%-8s run %s: %7d requests, %6d instructions per request\n' "$name" "$4" "$reqs" \
    "$(python3 benches/load/instructions_by_crate.py --total "$out.cg" "$reqs")"
  echo "$out.cg $reqs" >"$WORK/$name.last"
}

start_ancm() { # NAME BINARY
  local site=$WORK/site-$1 port bport
  port=$(free_port); bport=$(free_port)
  mkdir -p "$site"
  cat >"$site/web.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration><system.webServer>
  <aspNetCore processPath="$HELLO" stdoutLogEnabled="false" hostingModel="outofprocess">
    <environmentVariables><environmentVariable name="ASPNETCORE_PORT" value="$bport" /></environmentVariables>
  </aspNetCore>
</system.webServer></configuration>
XML
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/$1.cg" \
    "$2" run "$site" --listen "127.0.0.1:$port" 2>"$WORK/$1.log" &
  PIDS+=($!)
  eval "${1//-/_}_PID=$! ${1//-/_}_PORT=$port"
  wait_up "$port" "$WORK/$1.log"
}

start_nginx() {
  local port bport
  port=$(free_port); bport=$(free_port)
  ASPNETCORE_PORT=$bport "$HELLO" >/dev/null 2>&1 &
  PIDS+=($!)
  mkdir -p "$WORK/nginx"
  cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes 1; master_process off; daemon off;
pid $WORK/nginx.pid; error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off; keepalive_requests 1000000;
  client_body_temp_path $WORK/nginx/body; proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/f; uwsgi_temp_path $WORK/nginx/u; scgi_temp_path $WORK/nginx/s;
  upstream backend { server 127.0.0.1:$bport; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$port;
    proxy_request_buffering off; client_body_buffer_size 64k; proxy_buffers 16 64k; proxy_buffer_size 64k;
    location / {
      proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header MS-ASPNETCORE-TOKEN 0f6d4a52-3b1e-4c1f-9d2a-7f1e2b3c4d5e;
    }
  }
}
CONF
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/nginx.cg" \
    nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" 2>"$WORK/nginx.log" &
  PIDS+=($!)
  nginx_PID=$! nginx_PORT=$port
  wait_up "$port" "$WORK/nginx.log"
}

start_ancm ancm "$ANCM"
[ -n "${ANCM_B:-}" ] && start_ancm ancm-b "$ANCM_B"
start_nginx
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq 1 "$RUNS"); do
  count ancm "$ancm_PID" "$ancm_PORT" "$run"
  [ -n "${ANCM_B:-}" ] && count ancm-b "$ancm_b_PID" "$ancm_b_PORT" "$run"
  count nginx "$nginx_PID" "$nginx_PORT" "$run"
done
for name in ancm ${ANCM_B:+ancm-b} nginx; do
  read -r file reqs <"$WORK/$name.last"
  echo
  echo "$name: instructions per request by crate (last run)"
  python3 benches/load/instructions_by_crate.py "$file" "$reqs"
done
