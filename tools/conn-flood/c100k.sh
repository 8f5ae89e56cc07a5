#!/usr/bin/env bash
# C100K on this machine (issue 10): NODES shaddock processes (default 6) share one client port
# (SO_REUSEPORT: the kernel spreads connections over them), joined by a Redis bus started here,
# and conn-flood holds CONNS entered connections (default 100,000) from several worker
# processes and source addresses (one process may hold at most 20,000 files); PUSHES single
# pushAlls (default 10) each reach every connection, whichever node holds it. Beside it, in the
# same run: one shaddock process holding 19,000, and, as the baseline, a Redis Cluster of NODES
# masters (classic PUBLISH is forwarded to every node) holding the same CONNS subscribers spread
# over its nodes. Loopback only; every run is bounded by conn-flood's own limits.
#
#   tools/conn-flood/c100k.sh     # REDIS_CLUSTER=no skips the baseline, SHADDOCK_RUNS=no the rest
#
# Results (each run's table and JSON line) go to $OUT (default target/bench-c100k).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-target/bench-c100k}
NODES=${NODES:-6}
CONNS=${CONNS:-100000}
PUSHES=${PUSHES:-10}
SINGLE=${SINGLE:-19000}
BUS_PORT=${BUS_PORT:-6391}
CLUSTER_BASE=${CLUSTER_BASE:-7101}
REDIS_CLUSTER=${REDIS_CLUSTER:-yes}
SHADDOCK_RUNS=${SHADDOCK_RUNS:-yes}
SECRET=bench-secret-123
mkdir -p "$OUT"
cargo build --release -q -p shaddock -p conn-flood
SHADDOCK=target/release/shaddock
FLOOD=target/release/conn-flood
# Enough workers that none holds more than 17,000 connections, and 8 source addresses (each has
# its own ephemeral ports toward the one client port).
PROCS=$(( (CONNS + 16999) / 17000 ))
FLOOD_ARGS=(--procs "$PROCS" --sources 8 --connect-window 128 --max-secs 240)

pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
  sleep 2
}
trap stop_all EXIT

# node_config I [CLUSTER]: node I's configuration; with CLUSTER=no, a process alone.
node_config() {
  local i=$1 cluster=${2:-yes}
  cat <<TOML
reactors = 1
pin_cores = false
[client]
listen = "127.0.0.1:3010"
share_port = true
heartbeat_secs = 60
[control]
listen = "127.0.0.1:$((3080 + i))"
[log]
level = "warn"
[[apps]]
apikey = "demo"
secret = "$SECRET"
TOML
  if [ "$cluster" = yes ]; then
    printf '[cluster]\nredis = "redis://127.0.0.1:%s"\nnode_id = "n%s"\nprefix = "c100k:"\n' \
      "$BUS_PORT" "$i"
  fi
}

# run NAME ARGS...: one conn-flood run; keeps the table and the JSON line.
run() {
  local name=$1
  shift
  "$FLOOD" "$@" >"$OUT/$name.txt" 2>"$OUT/$name.err" || { cat "$OUT/$name.err" >&2; return 1; }
  tail -n 1 "$OUT/$name.txt" >"$OUT/$name.json"
  sed '$d' "$OUT/$name.txt"
}

# --- NODES shaddock processes on one port, joined over Redis -------------------------------------
if [ "$SHADDOCK_RUNS" = yes ]; then
redis-server --port "$BUS_PORT" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning \
  >>"$OUT/bus.log" 2>&1 &
pids+=($!)
sleep 1
node_pids=()
for i in $(seq 0 $((NODES - 1))); do
  node_config "$i" >"$OUT/node-$i.toml"
  "$SHADDOCK" run --config "$OUT/node-$i.toml" 2>>"$OUT/node-$i.log" &
  pids+=($!)
  node_pids+=($!)
done
for i in $(seq 0 $((NODES - 1))); do
  for _ in $(seq 1 50); do
    curl -fsS "http://127.0.0.1:$((3080 + i))/healthz" 2>/dev/null | grep -q '"up"' && break
    sleep 0.2
  done
done
server_pids=()
for pid in "${node_pids[@]}"; do server_pids+=(--server-pid "$pid"); done
run "memory-cluster-$NODES" --app "demo=$SECRET" -n "$CONNS" "${FLOOD_ARGS[@]}" \
  --phases connect,idle --idle-secs 10 --heartbeat-secs 30 "${server_pids[@]}"
stop_all

redis-server --port "$BUS_PORT" --bind 127.0.0.1 --save "" --appendonly no --loglevel warning \
  >>"$OUT/bus.log" 2>&1 &
pids+=($!)
sleep 1
for i in $(seq 0 $((NODES - 1))); do
  "$SHADDOCK" run --config "$OUT/node-$i.toml" 2>>"$OUT/node-$i.log" &
  pids+=($!)
done
sleep 2
run "broadcast-cluster-$NODES" --app "demo=$SECRET" -n "$CONNS" "${FLOOD_ARGS[@]}" \
  --phases connect,broadcast --pushes "$PUSHES"
for i in $(seq 0 $((NODES - 1))); do
  printf 'node %s: ' "$i"
  curl -fsS "http://127.0.0.1:$((3080 + i))/metrics" \
    | grep -E '^shaddock_(cluster_(published|received|not_forwarded)_total|deliveries_total)' \
    | tr '\n' ' '
  echo
done | tee "$OUT/broadcast-cluster-$NODES.nodes"
stop_all

# --- one process at SINGLE -------------------------------------------------------------------
node_config 0 no >"$OUT/single.toml"
for phases in "connect,idle --idle-secs 10 --heartbeat-secs 30" "connect,broadcast --pushes $PUSHES"; do
  "$SHADDOCK" run --config "$OUT/single.toml" 2>>"$OUT/single.log" &
  pid=$!
  pids+=("$pid")
  sleep 1
  name=memory-single
  case $phases in connect,broadcast*) name=broadcast-single ;; esac
  # shellcheck disable=SC2086 # phases is a list of flags
  run "$name" --app "demo=$SECRET" -n "$SINGLE" --sources 8 --phases $phases --server-pid "$pid"
  stop_all
done
fi

# --- the baseline: a Redis Cluster of NODES masters ------------------------------------------------
if [ "$REDIS_CLUSTER" = yes ]; then
  for phases in "connect,idle --idle-secs 10" "connect,broadcast --pushes $PUSHES"; do
    targets=()
    cluster_pids=()
    nodes=()
    for i in $(seq 0 $((NODES - 1))); do
      port=$((CLUSTER_BASE + i))
      dir=$OUT/redis-cluster/$port
      rm -rf "$dir" && mkdir -p "$dir"
      (cd "$dir" && exec redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
        --cluster-config-file nodes.conf --save "" --appendonly no --maxclients 19000 \
        --protected-mode no \
        --loglevel warning) >>"$OUT/redis-cluster.log" 2>&1 &
      pids+=($!)
      cluster_pids+=(--server-pid "$!")
      targets+=(--target "127.0.0.1:$port")
      nodes+=("127.0.0.1:$port")
    done
    sleep 1
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
    sleep 2
    name=memory-redis-cluster-$NODES
    case $phases in connect,broadcast*) name=broadcast-redis-cluster-$NODES ;; esac
    # shellcheck disable=SC2086 # phases is a list of flags
    run "$name" --redis --app demo -n "$CONNS" "${FLOOD_ARGS[@]}" "${targets[@]}" \
      --phases $phases "${cluster_pids[@]}"
    stop_all
  done
fi
