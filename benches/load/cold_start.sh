#!/usr/bin/env bash
# Cold start: the first request after `ancm run` against the backend's own start time
# (examples/hello_backend.rs), RUNS times each, alternated. Only 127.0.0.1; every wait is
# bounded. See benches/load/cold_start.rs for what is timed.
#
#   benches/load/cold_start.sh            # 20 runs
#   RUNS=5 benches/load/cold_start.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-20}
cargo build --release --bin ancm --example hello_backend --example cold_start >&2
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
target/release/examples/cold_start --ancm target/release/ancm \
  --backend target/release/examples/hello_backend --runs "$RUNS"
echo "load average after:  $(cut -d' ' -f1-3 /proc/loadavg)"
