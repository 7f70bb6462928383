#!/usr/bin/env bash
# HTTPS load comparison, `ancm` against nginx (one worker), measured interleaved in one run:
# new-connection rates (one TLS connection per request, `tls_load`) over TLS 1.3 and 1.2 with
# session resumption on and off, and keep-alive rates (wrk), with the server's CPU per
# request. Only 127.0.0.1 traffic; every run is bounded in time.
#
#   benches/load/run_tls.sh                        # 3 rounds x 3 s per run, two layouts (~4 minutes)
#   DURATION=2 ROUNDS=1 LAYOUTS=pinned benches/load/run_tls.sh   # quick look
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
DURATION=${DURATION:-3}       # seconds per run
ROUNDS=${ROUNDS:-3}           # interleaved rounds per layout
LAYOUTS=${LAYOUTS:-"pinned unpinned"}
CONC=${CONC:-50}              # concurrent connections of every load generator
BACKEND_PORT=${BACKEND_PORT:-18091}
ANCM_PORT=${ANCM_PORT:-18443}
NGINX_PORT=${NGINX_PORT:-18444}           # resumption on: tickets and a session cache
NGINX_NORESUME_PORT=${NGINX_NORESUME_PORT:-18445}   # resumption off
TOKEN=0f6d4a52-3b1e-4c1f-9d2a-7f1e2b3c4d5e

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release --bin ancm --example hello_backend --example tls_load >&2
ANCM=$ROOT/target/release/ancm
HELLO=$ROOT/target/release/examples/hello_backend
LOAD=$ROOT/target/release/examples/tls_load

WORK=$(mktemp -d)
chmod 755 "$WORK"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/site" "$WORK/nginx"
# The same ECDSA P-256 certificate for both servers.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
chmod 644 "$WORK/key.pem"

cat > "$WORK/site/web.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <system.webServer>
    <aspNetCore processPath="$HELLO" stdoutLogEnabled="false" hostingModel="outofprocess">
      <environmentVariables>
        <environmentVariable name="ASPNETCORE_PORT" value="$BACKEND_PORT" />
        <environmentVariable name="ASPNETCORE_TOKEN" value="$TOKEN" />
      </environmentVariables>
    </aspNetCore>
  </system.webServer>
</configuration>
XML

proxy_block() { # the location both nginx servers share, as in run.sh
  cat <<CONF
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header MS-ASPNETCORE-TOKEN "$TOKEN";
    }
CONF
}
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
  ssl_certificate $WORK/cert.pem;
  ssl_certificate_key $WORK/key.pem;
  ssl_protocols TLSv1.2 TLSv1.3;
  server {
    listen 127.0.0.1:$NGINX_PORT ssl;
    ssl_session_tickets on;
    ssl_session_cache shared:SSL:10m;
$(proxy_block)
  }
  server {
    listen 127.0.0.1:$NGINX_NORESUME_PORT ssl;
    ssl_session_tickets off;
    ssl_session_cache off;
$(proxy_block)
  }
}
CONF

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
wait_https() {
  for _ in $(seq 1 100); do curl -kfsS -o /dev/null "https://127.0.0.1:$1/" 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing answers on port $1" >&2; return 1
}

PIN_GEN=""; PIN_SRV=""
start_servers() {
  $PIN_SRV "$ANCM" run "$WORK/site" --https-listen "127.0.0.1:$ANCM_PORT" \
    --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem" 2>"$WORK/ancm.log" &
  ANCM_PID=$!; PIDS+=("$ANCM_PID")
  wait_https "$ANCM_PORT"     # the first request starts the backend under ancm
  $PIN_SRV "$NGINX" -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
  PIDS+=("$!")
  wait_https "$NGINX_PORT"
  NGINX_WORKER=$(pgrep -P "$(cat "$WORK/nginx.pid")" | head -1)
}
stop_servers() {
  kill "$ANCM_PID" 2>/dev/null || true; wait "$ANCM_PID" 2>/dev/null || true
  kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true; sleep 0.5
}

RESULTS=$WORK/results.tsv
# record LAYOUT TEST TARGET REQUESTS SECS TICKS RESUMED% ERRORS
record() {
  local cpu rps
  rps=$(awk -v r="$4" -v s="$5" 'BEGIN {printf "%.0f", r / s}')
  cpu=$(awk -v t="$6" -v r="$4" -v hz="$(getconf CLK_TCK)" 'BEGIN {if (r > 0) printf "%.1f", t / hz / r * 1e6; else print "-"}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$rps" "$cpu" "$7" "$8" >> "$RESULTS"
  [ "$8" = 0 ] || echo "WARNING: $1 $2 $3: $8 failed requests; its row is not comparable" >&2
}

# new_conn TARGET TLS RESUME
new_conn() {
  local target=$1 tls=$2 resume=$3 port pid before after out
  if [ "$target" = ancm ]; then port=$ANCM_PORT; pid=$ANCM_PID
  elif [ "$resume" = on ]; then port=$NGINX_PORT; pid=$NGINX_WORKER
  else port=$NGINX_NORESUME_PORT; pid=$NGINX_WORKER; fi
  before=$(cpu_ticks "$pid")
  out=$($PIN_GEN "$LOAD" "127.0.0.1:$port" --tls "$tls" --resume "$resume" -c "$CONC" -d "$DURATION")
  after=$(cpu_ticks "$pid")
  local requests secs resumed errors
  requests=$(sed -E 's/.*requests=([0-9]+).*/\1/' <<<"$out")
  secs=$(sed -E 's/.*secs=([0-9.]+).*/\1/' <<<"$out")
  resumed=$(sed -E 's/.*resumed=([0-9]+).*/\1/' <<<"$out")
  errors=$(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$out")
  record "$LAYOUT" "new TLS$tls resume-$resume" "$target" "$requests" "$secs" $((after - before)) \
    "$(awk -v a="$resumed" -v r="$requests" 'BEGIN {if (r > 0) printf "%.0f%%", a / r * 100; else print "-"}')" "$errors"
}

# keep_alive TARGET: wrk over HTTPS (its TLS 1.3 handshake once per connection)
keep_alive() {
  local target=$1 port pid before after out
  if [ "$target" = ancm ]; then port=$ANCM_PORT; pid=$ANCM_PID; else port=$NGINX_PORT; pid=$NGINX_WORKER; fi
  before=$(cpu_ticks "$pid")
  out=$($PIN_GEN wrk -t1 -c"$CONC" -d"${DURATION}s" "https://127.0.0.1:$port/")
  after=$(cpu_ticks "$pid")
  local requests bad
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  bad=$(awk '/Non-2xx or 3xx responses/ {print $NF}' <<<"$out")
  record "$LAYOUT" "keep-alive" "$target" "$requests" "$DURATION" $((after - before)) "-" "${bad:-0}"
}

echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for LAYOUT in $LAYOUTS; do
  if [ "$LAYOUT" = pinned ]; then PIN_GEN="taskset -c 0"; PIN_SRV="taskset -c 1"; else PIN_GEN=""; PIN_SRV=""; fi
  start_servers
  for round in $(seq 1 "$ROUNDS"); do
    # Alternate which server goes first, so that both see the same drift in the noise.
    if [ $((round % 2)) = 1 ]; then order="ancm nginx"; else order="nginx ancm"; fi
    for tls in 1.3 1.2; do
      for resume in on off; do
        for target in $order; do new_conn "$target" "$tls" "$resume"; done
      done
    done
    for target in $order; do keep_alive "$target"; done
  done
  stop_servers
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

echo
printf '%-9s %-22s %-6s %9s %12s %9s %7s\n' layout test target req/s cpu_us/req resumed errors
sort -t$'\t' -k1,1 -k2,2 -k3,3 "$RESULTS" | awk -F'\t' '{printf "%-9s %-22s %-6s %9s %12s %9s %7s\n", $1, $2, $3, $4, $5, $6, $7}'
echo
echo "ancm/nginx (min-max over rounds of each side; ratio of the means):"
awk -F'\t' '
  { k = $1 "\t" $2; t = $3; n[k, t]++; rps[k, t] += $4; cpu[k, t] += $5
    if (!((k, t) in lo) || $4 < lo[k, t]) lo[k, t] = $4; if ($4 > hi[k, t]) hi[k, t] = $4
    if (!((k, t) in clo) || $5 < clo[k, t]) clo[k, t] = $5; if ($5 > chi[k, t]) chi[k, t] = $5
    keys[k] = 1 }
  END { for (k in keys) {
      split(k, a, "\t")
      printf "  %-9s %-22s req/s %6d-%-6d vs %6d-%-6d (%.2f)  cpu/req %5.1f-%-5.1f vs %5.1f-%-5.1f us (%.2f)\n", a[1], a[2],
        lo[k, "ancm"], hi[k, "ancm"], lo[k, "nginx"], hi[k, "nginx"], rps[k, "ancm"] / rps[k, "nginx"],
        clo[k, "ancm"], chi[k, "ancm"], clo[k, "nginx"], chi[k, "nginx"],
        (cpu[k, "ancm"] / n[k, "ancm"]) / (cpu[k, "nginx"] / n[k, "nginx"]) } }' "$RESULTS" | sort
