#!/usr/bin/env bash
# Load comparison: direct to one backend, through `ancm`, and through nginx (one worker) adding
# the same headers, measured interleaved in one run, in two layouts (no pinning; wrk on CPU 0
# with proxy and backend on CPU 1). Only 127.0.0.1 traffic; every run is bounded in time.
#
#   benches/load/run.sh              # full run (~6 minutes)
#   DURATION=3 ROUNDS=1 benches/load/run.sh   # quick look
#   COMPARE_OBS=1 benches/load/run.sh         # also a second ancm with the access log and
#                                             # metrics on (OBS_FLAGS), interleaved
#   ANCM_FLAGS="--threads 1" benches/load/run.sh   # extra `ancm run` flags for every ancm
#   ANCM_B=/tmp/ancm-old benches/load/run.sh        # also that ancm binary (target ancm-b),
#                                                   # interleaved: before/after of a change
#   STRACE=1 benches/load/run.sh     # also syscalls per request (strace -c -f, separate run)
#   LAYOUTS=pinned POST=0 benches/load/run.sh      # one layout, GETs only
#   UDS=1 benches/load/run.sh        # also ancm and nginx to a backend on a Unix socket
#   ANCM_BIN=/tmp/ancm HELLO_BIN=/tmp/hello_backend benches/load/run.sh   # no build
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DURATION=${DURATION:-5}     # seconds per wrk run
ROUNDS=${ROUNDS:-3}         # interleaved rounds per layout
BACKEND_PORT=${BACKEND_PORT:-18081}
ANCM_PORT=${ANCM_PORT:-18080}
NGINX_PORT=${NGINX_PORT:-18082}
OBS_BACKEND_PORT=${OBS_BACKEND_PORT:-18083}
OBS_PORT=${OBS_PORT:-18084}
OBS_ADMIN_PORT=${OBS_ADMIN_PORT:-18085}
COMPARE_OBS=${COMPARE_OBS:-0}
# Another ancm binary (a build of another commit), run as target ancm-b on its own backend
# and measured interleaved with ancm: a before/after comparison under the same load.
ANCM_B=${ANCM_B:-}
B_BACKEND_PORT=${B_BACKEND_PORT:-18086}
B_PORT=${B_PORT:-18087}
# 1 adds the Unix-domain-socket transport: ancm-uds (an ancm whose site sets
# backendTransport=unix, its own backend) and nginx-uds (nginx to a backend on a Unix socket).
UDS=${UDS:-0}
UDS_PORT=${UDS_PORT:-18088}
NGINX_UDS_PORT=${NGINX_UDS_PORT:-18089}
LAYOUTS=${LAYOUTS:-unpinned pinned}   # which layouts, in order
POST=${POST:-1}             # 0 skips the 1 MiB POST echo rows and the 1 GiB memory check
STRACE=${STRACE:-0}         # 1 adds a syscalls-per-request run per proxy and layout
STRACE_DURATION=${STRACE_DURATION:-3}
# The 1 GiB echo below is over IIS's default request body limit (30,000,000 bytes).
ANCM_FLAGS="--max-request-body 2147483648 ${ANCM_FLAGS:-}"
TOKEN=0f6d4a52-3b1e-4c1f-9d2a-7f1e2b3c4d5e

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v curl >/dev/null || need+=(curl)
[ "${STRACE:-0}" = 1 ] && { command -v strace >/dev/null || need+=(strace); }
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# ANCM_BIN and HELLO_BIN run given builds instead of building this tree.
if [ -z "${ANCM_BIN:-}" ] || [ -z "${HELLO_BIN:-}" ]; then
  cargo build --release --bin ancm --example hello_backend >&2
fi
ANCM=${ANCM_BIN:-$ROOT/target/release/ancm}
HELLO=${HELLO_BIN:-$ROOT/target/release/examples/hello_backend}

WORK=$(mktemp -d)
# nginx's worker runs unprivileged and writes request bodies to temp files under $WORK.
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The second ancm (COMPARE_OBS=1) writes its access log here and serves metrics.
OBS_FLAGS=${OBS_FLAGS:---access-log $WORK/access --admin-listen 127.0.0.1:$OBS_ADMIN_PORT}

mkdir -p "$WORK/site" "$WORK/site-obs" "$WORK/site-b" "$WORK/site-uds" "$WORK/nginx"
site_config() { # PORT [TRANSPORT]
  cat <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <system.webServer>
    <aspNetCore processPath="$HELLO" stdoutLogEnabled="false" hostingModel="outofprocess">
      <environmentVariables>
        <environmentVariable name="ASPNETCORE_PORT" value="$1" />
        <environmentVariable name="ASPNETCORE_TOKEN" value="$TOKEN" />
      </environmentVariables>
      <handlerSettings>
        <handlerSetting name="backendTransport" value="${2:-tcp}" />
      </handlerSettings>
    </aspNetCore>
  </system.webServer>
</configuration>
XML
}
site_config "$BACKEND_PORT" > "$WORK/site/web.config"
# Its own backend (same program) on its own port, so both gateways proxy alike.
site_config "$OBS_BACKEND_PORT" > "$WORK/site-obs/web.config"
site_config "$B_BACKEND_PORT" > "$WORK/site-b/web.config"
site_config "" unix > "$WORK/site-uds/web.config"

cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 64; keepalive_requests 1000000; }
  upstream backend_uds { server unix:$WORK/hello.sock; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    client_max_body_size 0;
    # Stream like ancm does (no spooling of request bodies to disk), with 64 KiB buffers.
    proxy_request_buffering off;
    client_body_buffer_size 64k;
    proxy_buffers 16 64k;
    proxy_buffer_size 64k;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header MS-ASPNETCORE-TOKEN "$TOKEN";
    }
  }
  server {
    listen 127.0.0.1:$NGINX_UDS_PORT;
    client_max_body_size 0;
    # Stream like ancm does (no spooling of request bodies to disk), with 64 KiB buffers.
    proxy_request_buffering off;
    client_body_buffer_size 64k;
    proxy_buffers 16 64k;
    proxy_buffer_size 64k;
    location / {
      proxy_pass http://backend_uds;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header MS-ASPNETCORE-TOKEN "$TOKEN";
    }
  }
}
CONF

cat > "$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = string.rep("x", 1048576)
wrk.headers["Content-Type"] = "application/octet-stream"
LUA

cpu_ticks() { # "utime stime" of a pid and its threads, in clock ticks
  awk '{print $14, $15}' "/proc/$1/stat"
}
ctx_switches() { # voluntary + involuntary context switches of every thread of a pid
  cat /proc/"$1"/task/*/status 2>/dev/null |
    awk '$1 == "voluntary_ctxt_switches:" || $1 == "nonvoluntary_ctxt_switches:" {n += $2} END {print n + 0}'
}
rss_kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
wait_http() {
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$1/" 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing answers on port $1" >&2; return 1
}

PIN_GEN=""; PIN_SRV=""
start_servers() {

  # shellcheck disable=SC2086 # flags are words
  $PIN_SRV "$ANCM" run "$WORK/site" --listen "127.0.0.1:$ANCM_PORT" $ANCM_FLAGS 2>"$WORK/ancm.log" &
  ANCM_PID=$!; PIDS+=("$ANCM_PID")
  wait_http "$ANCM_PORT"     # the first request starts the backend under ancm
  if [ "$COMPARE_OBS" = 1 ]; then
    # shellcheck disable=SC2086
    $PIN_SRV "$ANCM" run "$WORK/site-obs" --listen "127.0.0.1:$OBS_PORT" $ANCM_FLAGS $OBS_FLAGS 2>"$WORK/ancm-obs.log" &
    OBS_PID=$!; PIDS+=("$OBS_PID")
    wait_http "$OBS_PORT"
  fi
  if [ "$UDS" = 1 ]; then
    # shellcheck disable=SC2086
    $PIN_SRV "$ANCM" run "$WORK/site-uds" --listen "127.0.0.1:$UDS_PORT" $ANCM_FLAGS 2>"$WORK/ancm-uds.log" &
    UDS_PID=$!; PIDS+=("$UDS_PID")
    wait_http "$UDS_PORT"
    rm -f "$WORK/hello.sock"
    $PIN_SRV "$HELLO" "unix:$WORK/hello.sock" 2>"$WORK/hello-uds.log" &
    HELLO_UDS_PID=$!; PIDS+=("$HELLO_UDS_PID")
    for _ in $(seq 1 100); do [ -S "$WORK/hello.sock" ] && break; sleep 0.05; done
    chmod 666 "$WORK/hello.sock"   # nginx's worker runs unprivileged
  fi
  if [ -n "$ANCM_B" ]; then
    # shellcheck disable=SC2086
    $PIN_SRV "$ANCM_B" run "$WORK/site-b" --listen "127.0.0.1:$B_PORT" $ANCM_FLAGS 2>"$WORK/ancm-b.log" &
    B_PID=$!; PIDS+=("$B_PID")
    wait_http "$B_PORT"
  fi
  $PIN_SRV "$NGINX" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
  PIDS+=("$!")
  wait_http "$NGINX_PORT"
  NGINX_WORKER=$(pgrep -P "$(cat "$WORK/nginx.pid")" | head -1)
  [ "$UDS" = 1 ] && wait_http "$NGINX_UDS_PORT"
  IDLE_RSS=$(rss_kib "$ANCM_PID" VmRSS)
}
stop_servers() {
  kill "$ANCM_PID" 2>/dev/null || true; wait "$ANCM_PID" 2>/dev/null || true
  if [ "$COMPARE_OBS" = 1 ]; then
    kill "$OBS_PID" 2>/dev/null || true; wait "$OBS_PID" 2>/dev/null || true
    rm -rf "$WORK/access"   # up to a few hundred MB per layout
  fi
  if [ -n "$ANCM_B" ]; then kill "$B_PID" 2>/dev/null || true; wait "$B_PID" 2>/dev/null || true; fi
  if [ "$UDS" = 1 ]; then
    kill "$UDS_PID" "$HELLO_UDS_PID" 2>/dev/null || true; wait "$UDS_PID" "$HELLO_UDS_PID" 2>/dev/null || true
  fi
  kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true; sleep 0.5
}

# The proxy process a target's CPU is read from (none for direct).
proxy_pid() {
  case $1 in ancm) echo "$ANCM_PID" ;; ancm-obs) echo "$OBS_PID" ;; ancm-b) echo "$B_PID" ;; ancm-uds) echo "$UDS_PID" ;; nginx-uds) echo "$NGINX_WORKER" ;; nginx) echo "$NGINX_WORKER" ;; *) echo "" ;; esac
}

# run_wrk NAME PORT CONC [script] -> appends to results: layout name conc req/s p50 p99
# cpu_us/req user_us/req sys_us/req ctx_switches/req transfer/s
RESULTS=$WORK/results.tsv
: > "$RESULTS"
run_wrk() {
  local name=$1 port=$2 conc=$3 script=${4:-} pid u0=0 s0=0 u1=0 s1=0 c0=0 c1=0 out
  pid=$(proxy_pid "$name")
  if [ -n "$pid" ]; then read -r u0 s0 < <(cpu_ticks "$pid"); c0=$(ctx_switches "$pid"); fi
  out=$($PIN_GEN wrk -t1 -c"$conc" -d"${DURATION}s" --latency ${script:+-s "$script"} "http://127.0.0.1:$port/")
  if [ -n "$pid" ]; then read -r u1 s1 < <(cpu_ticks "$pid"); c1=$(ctx_switches "$pid"); fi
  local reqs rps p50 p99 tps bad
  bad=$(awk '/Non-2xx or 3xx responses/ {print $NF}' <<<"$out")
  if [ -n "$bad" ]; then
    echo "WARNING: $LAYOUT $name c$conc: $bad non-2xx/3xx responses; its row is not comparable" >&2
  fi
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  tps=$(awk '/Transfer\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  local cpu="-" user="-" sys="-" csw="-"
  if [ -n "$pid" ] && [ "$reqs" -gt 0 ]; then
    read -r cpu user sys csw < <(awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v c=$((c1 - c0)) -v r="$reqs" \
      -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f %.2f %.2f %.3f\n", (u + s) / hz / r * 1e6, u / hz / r * 1e6, s / hz / r * 1e6, c / r}')
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$LAYOUT" "$name" "$conc${script:+ post1MiB}" "$rps" "$p50" "$p99" \
    "$cpu" "$user" "$sys" "$csw" "$tps" >> "$RESULTS"
}

# strace_run NAME PORT -> appends "layout name syscalls/req (top calls)" to the syscall file.
# A separate short wrk -c50 run with `strace -c -f` attached to the proxy process (all its
# threads): strace slows the proxy several-fold, so only the counts per request mean anything.
SYSCALLS=$WORK/syscalls.txt
strace_run() {
  local name=$1 port=$2 pid out reqs
  pid=$(proxy_pid "$name")
  strace -c -f -p "$pid" -o "$WORK/strace.$name" 2>/dev/null &
  local spid=$!
  sleep 0.5
  out=$($PIN_GEN wrk -t1 -c50 -d"${STRACE_DURATION}s" "http://127.0.0.1:$port/")
  kill -INT "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  awk -v r="$reqs" -v who="$LAYOUT $name" '
    $1 ~ /^[0-9.]+$/ && NF >= 5 { calls = $4; name = $NF; if (name == "total") { total = calls; next }
      top = top sprintf(" %s %.2f", name, calls / r) }
    END { printf "%-20s %.2f syscalls/req:%s  (%d requests)\n", who, total / r, top, r }' "$WORK/strace.$name" >> "$SYSCALLS"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" > "$WORK/load.txt"
for LAYOUT in $LAYOUTS; do
  if [ "$LAYOUT" = pinned ]; then PIN_GEN="taskset -c 0"; PIN_SRV="taskset -c 1"; else PIN_GEN=""; PIN_SRV=""; fi
  start_servers
  echo "# $LAYOUT: ancm idle RSS ${IDLE_RSS} KiB" >&2
  echo "$LAYOUT idle_rss_kib $IDLE_RSS" >> "$WORK/rss.txt"
  if [ "$LAYOUT" = unpinned ] && [ "$POST" = 1 ]; then
    # First, before any other load: 1 GiB echoed through ancm (upload and download at
    # once), then a 1 GiB download, and the growth of ancm's peak RSS over its idle RSS.
    hwm0=$(rss_kib "$ANCM_PID" VmHWM)  # after one small request: the idle peak
    head -c 1073741824 /dev/zero | timeout 120 curl -sS -o /dev/null -w '%{size_download}\n' \
      -H 'Content-Type: application/octet-stream' -T - -X POST "http://127.0.0.1:$ANCM_PORT/" > "$WORK/gib.txt"
    timeout 120 curl -sS -o /dev/null "http://127.0.0.1:$ANCM_PORT/bytes/1073741824"
    hwm1=$(rss_kib "$ANCM_PID" VmHWM)
    echo "$LAYOUT gib_echo_bytes $(cat "$WORK/gib.txt") rss_growth_kib $((hwm1 - hwm0)) (VmHWM $hwm0 -> $hwm1)" >> "$WORK/rss.txt"
  fi
  for _ in $(seq 1 "$ROUNDS"); do
    for conc in 50 1; do
      run_wrk direct "$BACKEND_PORT" "$conc"
      run_wrk ancm "$ANCM_PORT" "$conc"
      [ "$COMPARE_OBS" = 1 ] && run_wrk ancm-obs "$OBS_PORT" "$conc"
      [ -n "$ANCM_B" ] && run_wrk ancm-b "$B_PORT" "$conc"
      run_wrk nginx "$NGINX_PORT" "$conc"
      if [ "$UDS" = 1 ]; then
        run_wrk ancm-uds "$UDS_PORT" "$conc"
        run_wrk nginx-uds "$NGINX_UDS_PORT" "$conc"
      fi
    done
    if [ "$POST" = 1 ]; then
      run_wrk direct "$BACKEND_PORT" 8 "$WORK/post.lua"
      run_wrk ancm "$ANCM_PORT" 8 "$WORK/post.lua"
      [ "$COMPARE_OBS" = 1 ] && run_wrk ancm-obs "$OBS_PORT" 8 "$WORK/post.lua"
      [ -n "$ANCM_B" ] && run_wrk ancm-b "$B_PORT" 8 "$WORK/post.lua"
      run_wrk nginx "$NGINX_PORT" 8 "$WORK/post.lua"
    fi
  done
  if [ "$STRACE" = 1 ]; then
    strace_run ancm "$ANCM_PORT"
    [ -n "$ANCM_B" ] && strace_run ancm-b "$B_PORT"
    strace_run nginx "$NGINX_PORT"
    if [ "$UDS" = 1 ]; then
      strace_run ancm-uds "$UDS_PORT"
      strace_run nginx-uds "$NGINX_UDS_PORT"
    fi
  fi
  stop_servers
done
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)" >> "$WORK/load.txt"

echo
cat "$WORK/load.txt"
echo
echo "CPU columns: µs of the proxy process (all threads) per request, user + kernel = cpu; csw/req:"
echo "its voluntary + involuntary context switches per request (threads alive at the end)."
echo "layout   target   conc                req/s        p50        p99   cpu/req  user/req   sys/req  csw/req  transfer/s"
sort -k1,1r -k3,3 -k2,2 "$RESULTS" | awk -F'\t' '{printf "%-8s %-8s %-14s %10s %10s %10s %9s %9s %9s %8s %10s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11}'
echo
cat "$WORK/rss.txt"
if [ -s "$SYSCALLS" ]; then
  echo
  echo "syscalls per request (strace -c -f on the proxy, separate ${STRACE_DURATION} s run at -c50):"
  cat "$SYSCALLS"
fi
echo
echo "ratios ancm/nginx (means over rounds):"
awk -F'\t' '
  function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1e6; return v }
  { k = $1 " " $3; n[k "," $2]++; rps[k "," $2] += $4; p99[k "," $2] += us($6); p50[k "," $2] += us($5)
    if ($7 != "-") { cpu[k "," $2] += $7; usr[k "," $2] += $8; sys[k "," $2] += $9; csw[k "," $2] += $10 } }
  function ratio(a, b) { return b > 0 ? a / b : 0 }
  END {
    for (key in n) { split(key, a, ","); if (a[2] != "ancm") continue; k = a[1]
      printf "  %-22s req/s %.2f  p99 %.2f  cpu/req %.2f (user %.2f, sys %.2f, csw %.2f)  | ancm p50 - direct p50 = %.1f us\n", k,
        ratio(rps[k ",ancm"], rps[k ",nginx"]), ratio(p99[k ",ancm"], p99[k ",nginx"]),
        ratio(cpu[k ",ancm"], cpu[k ",nginx"]), ratio(usr[k ",ancm"], usr[k ",nginx"]),
        ratio(sys[k ",ancm"], sys[k ",nginx"]), ratio(csw[k ",ancm"], csw[k ",nginx"]),
        (p50[k ",ancm"] - p50[k ",direct"]) / n[k ",ancm"] }
  }' "$RESULTS" | sort
if [ "$COMPARE_OBS" = 1 ]; then
  echo
  echo "ancm with the access log and metrics on (ancm-obs) / ancm (means over rounds):"
  awk -F'\t' '
    { k = $1 " " $3; n[k "," $2]++; rps[k "," $2] += $4; if ($7 != "-") cpu[k "," $2] += $7 }
    END {
      for (key in n) { split(key, a, ","); if (a[2] != "ancm-obs") continue; k = a[1]
        printf "  %-22s req/s %.3f  cpu/req %.3f  (cpu us/req %.2f vs %.2f)\n", k,
          rps[k ",ancm-obs"] / rps[k ",ancm"], cpu[k ",ancm-obs"] / cpu[k ",ancm"],
          cpu[k ",ancm-obs"] / n[k ",ancm-obs"], cpu[k ",ancm"] / n[k ",ancm"] }
    }' "$RESULTS" | sort
fi
if [ -n "$ANCM_B" ]; then
  echo
  echo "ancm / ancm-b ($ANCM_B) (means over rounds):"
  awk -F'\t' '
    { k = $1 " " $3; n[k "," $2]++; rps[k "," $2] += $4; if ($7 != "-") { cpu[k "," $2] += $7; usr[k "," $2] += $8; sys[k "," $2] += $9 } }
    END {
      for (key in n) { split(key, a, ","); if (a[2] != "ancm-b") continue; k = a[1]; m = n[k ",ancm"]; mb = n[k ",ancm-b"]
        printf "  %-22s req/s %.3f  cpu/req %.3f  (cpu us/req %.2f vs %.2f; user %.2f vs %.2f; sys %.2f vs %.2f)\n", k,
          rps[k ",ancm"] / rps[k ",ancm-b"], cpu[k ",ancm"] / cpu[k ",ancm-b"],
          cpu[k ",ancm"] / m, cpu[k ",ancm-b"] / mb, usr[k ",ancm"] / m, usr[k ",ancm-b"] / mb, sys[k ",ancm"] / m, sys[k ",ancm-b"] / mb }
    }' "$RESULTS" | sort
fi
if [ "$UDS" = 1 ]; then
  echo
  echo "Unix-domain socket to the backend (means over rounds): ancm-uds against nginx over TCP,"
  echo "nginx over a Unix socket, and ancm over TCP"
  awk -F'\t' '
    { k = $1 " " $3; n[k "," $2]++; rps[k "," $2] += $4; if ($7 != "-") cpu[k "," $2] += $7 }
    function r(a, b) { return b > 0 ? a / b : 0 }
    END {
      for (key in n) { split(key, a, ","); if (a[2] != "ancm-uds") continue; k = a[1]
        printf "  %-22s req/s: / nginx %.2f, / nginx-uds %.2f, / ancm %.2f   cpu/req: / nginx %.2f, / nginx-uds %.2f, / ancm %.2f\n", k,
          r(rps[k ",ancm-uds"], rps[k ",nginx"]), r(rps[k ",ancm-uds"], rps[k ",nginx-uds"]), r(rps[k ",ancm-uds"], rps[k ",ancm"]),
          r(cpu[k ",ancm-uds"], cpu[k ",nginx"]), r(cpu[k ",ancm-uds"], cpu[k ",nginx-uds"]), r(cpu[k ",ancm-uds"], cpu[k ",ancm"]) }
    }' "$RESULTS" | sort
fi
