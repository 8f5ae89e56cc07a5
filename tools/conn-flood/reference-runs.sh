#!/usr/bin/env bash
# The reference runs of BENCHMARKS.md: shaddock and Redis side by side on this machine, the same
# work for both, each phase on a freshly started server. Results (one JSON line per run) go to
# $OUT (default target/bench). Loopback only; every run is bounded by conn-flood's own limits.
#
#   tools/conn-flood/reference-runs.sh [memory|connect|broadcast|sustained|churn|websocket ...]
#
# BACKEND=io_uring runs shaddock on its io_uring backend (default epoll); REDIS=no skips the
# Redis runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-target/bench}
BACKEND=${BACKEND:-epoll}
REDIS=${REDIS:-yes}
mkdir -p "$OUT"
cargo build --release -q -p shaddock -p conn-flood
SHADDOCK=target/release/shaddock
FLOOD=target/release/conn-flood
SECRET=bench-secret-123

cat > "$OUT/bench.toml" <<TOML
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

server_pid=
start_shaddock() {
  SHADDOCK_BACKEND=$BACKEND "$SHADDOCK" run --config "$OUT/bench.toml" 2>>"$OUT/shaddock.log" &
  server_pid=$!
  sleep 1
}
start_redis() {
  redis-server --port 6379 --save "" --appendonly no --protected-mode no --maxclients 30000 \
    --loglevel warning >>"$OUT/redis.log" 2>&1 &
  server_pid=$!
  sleep 1
}
stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  sleep 2
}
# run NAME SERVER ARGS...: one conn-flood run against a fresh server; keeps the table and the JSON.
run() {
  local name=$1 server=$2
  shift 2
  if [ "$server" = redis ] && [ "$REDIS" = no ]; then
    return
  fi
  if [ "$server" = shaddock ] && [ "$BACKEND" != epoll ]; then
    name=$name-$BACKEND
  fi
  if [ "$server" = redis ]; then
    start_redis
    "$FLOOD" --redis --app demo "$@" --server-pid "$server_pid" >"$OUT/$name.txt" 2>/dev/null
  else
    start_shaddock
    "$FLOOD" --app "demo=$SECRET" "$@" --server-pid "$server_pid" >"$OUT/$name.txt" 2>/dev/null
  fi
  stop_server
  tail -n 1 "$OUT/$name.txt" >"$OUT/$name.json"
  sed '$d' "$OUT/$name.txt"
}

for what in "${@:-memory connect broadcast sustained churn websocket}"; do
  for phase in $what; do
    case $phase in
      memory)
        run memory-shaddock shaddock -n 19000 --phases connect,idle --idle-secs 20 --heartbeat-secs 10
        run memory-redis redis -n 19000 --phases connect,idle --idle-secs 20 ;;
      connect)
        run connect-shaddock shaddock -n 19000 --phases connect
        run connect-redis redis -n 19000 --phases connect ;;
      broadcast)
        run broadcast-shaddock shaddock -n 19000 --phases connect,broadcast --pushes 20
        run broadcast-redis redis -n 19000 --phases connect,broadcast --pushes 20 ;;
      sustained)
        run sustained-shaddock shaddock -n 10000 --procs 2 --phases connect,sustained \
          --rate-start 40 --rate-factor 1.25 --rate-steps 20 --step-secs 3
        run sustained-redis redis -n 10000 --procs 2 --phases connect,sustained \
          --rate-start 20 --rate-factor 1.25 --rate-steps 14 --step-secs 3 ;;
      churn)
        run churn-shaddock shaddock -n 19000 --phases connect,churn \
          --churn-rate 1000 --churn-secs 10 --churn-push-rate 10
        run churn-redis redis -n 19000 --phases connect,churn \
          --churn-rate 1000 --churn-secs 10 --churn-push-rate 10 ;;
      websocket)
        run broadcast-shaddock-ws shaddock -n 19000 --transport ws --phases connect,broadcast --pushes 20
        run broadcast-shaddock-mix shaddock -n 19000 --transport mix --ws-percent 50 \
          --phases connect,broadcast --pushes 20 ;;
      *) echo "unknown run: $phase" >&2; exit 2 ;;
    esac
  done
done
