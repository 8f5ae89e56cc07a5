#!/usr/bin/env bash
# The soak run (issue 17): one shaddock process holding CONNS entered connections (default
# 19,000) for SECS seconds (default 600) while conn-flood reconnects CHURN of them a second
# (default 1,000) and pushes PUSH_RATE pushes a second (default 10) to all; the server's RSS is
# sampled every SAMPLE_SECS (default 10) into $OUT/soak-rss.csv, and the script prints the RSS
# slope over the run after the first minute (least squares, KiB per minute) beside conn-flood's
# own table (lost pushes, reconnects held). Loopback only; bounded by SECS and conn-flood's limits.
#
#   tools/conn-flood/soak.sh             # BACKEND=io_uring for the io_uring backend
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-target/bench-soak}
BACKEND=${BACKEND:-epoll}
CONNS=${CONNS:-19000}
SECS=${SECS:-600}
CHURN=${CHURN:-1000}
PUSH_RATE=${PUSH_RATE:-10}
SAMPLE_SECS=${SAMPLE_SECS:-10}
SECRET=bench-secret-123
mkdir -p "$OUT"
cargo build --release -q -p shaddock -p conn-flood

cat >"$OUT/soak.toml" <<TOML
reactors = 2
pin_cores = true
[client]
listen = "127.0.0.1:3010"
heartbeat_secs = 30
[control]
listen = "127.0.0.1:3080"
[log]
level = "warn"
[[apps]]
apikey = "demo"
secret = "$SECRET"
TOML
SHADDOCK_BACKEND=$BACKEND target/release/shaddock run --config "$OUT/soak.toml" \
  2>>"$OUT/soak-shaddock.log" &
server=$!
sampler=
cleanup() {
  [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
}
trap cleanup EXIT
sleep 1

# RSS every SAMPLE_SECS: seconds since start, KiB.
(
  start=$(date +%s)
  echo "secs,rss_kib"
  while kill -0 "$server" 2>/dev/null; do
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$server/status" 2>/dev/null || true)
    [ -n "$rss" ] && echo "$(( $(date +%s) - start )),$rss"
    sleep "$SAMPLE_SECS"
  done
) >"$OUT/soak-rss.csv" &
sampler=$!

target/release/conn-flood --app "demo=$SECRET" -n "$CONNS" --phases connect,churn \
  --churn-rate "$CHURN" --churn-secs "$SECS" --churn-push-rate "$PUSH_RATE" \
  --max-secs $((SECS + 300)) --server-pid "$server" >"$OUT/soak.txt" 2>"$OUT/soak.err"
sed '$d' "$OUT/soak.txt"
tail -n 1 "$OUT/soak.txt" >"$OUT/soak.json"
kill "$sampler" 2>/dev/null || true
sampler=

# The slope after the first minute (connects and warm-up), by least squares.
awk -F, 'NR > 1 && $1 >= 60 { n++; x += $1; y += $2; xx += $1 * $1; xy += $1 * $2 }
  END {
    if (n < 3) { print "rss slope: too few samples"; exit }
    slope = (n * xy - x * y) / (n * xx - x * x)
    printf "rss slope after the first minute: %.1f KiB/min over %d samples (%s)\n", slope * 60, n, FILENAME
  }' "$OUT/soak-rss.csv" | tee "$OUT/soak-slope.txt"
awk -F, 'NR == 2 { first = $2 } NR > 1 { last = $2; if ($2 > max) max = $2 }
  END { printf "rss: %d KiB at start, %d KiB at the end, %d KiB at most\n", first, last, max }' \
  "$OUT/soak-rss.csv" | tee -a "$OUT/soak-slope.txt"
