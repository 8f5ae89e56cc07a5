#!/usr/bin/env bash
# The reference runs of BENCHMARKS.md: shaddock and Redis side by side on this machine, the same
# work for both, each phase on a freshly started server. Results (one JSON line per run) go to
# $OUT (default target/bench). Loopback only; every run is bounded by conn-flood's own limits.
#
#   tools/conn-flood/reference-runs.sh [memory|connect|broadcast|sustained|churn|websocket|mqtt|socketio|tls ...]
#   (mqtt is mqtt-memory mqtt-broadcast mqtt-sustained, socketio is sio-memory sio-broadcast
#   sio-polling-memory sio-polling-broadcast, tls is tls-memory tls-connect tls-broadcast; each
#   may be given alone)
#
# BACKEND=io_uring runs shaddock on its io_uring backend (default epoll); REDIS=no skips the
# Redis runs.
#
# `mqtt` runs memory, broadcast and sustained over MQTT against shaddock's MQTT frontend and
# against mosquitto (Debian's package, started here on MQTT_PORT, default 1883, with a config
# written to $TMPDIR; never the system service). MQTT_VERSION=5 and QOS=1 change what the
# subscribers speak (default 3.1.1, QoS 0; the names of the results then say so);
# MOSQUITTO=no skips the mosquitto runs, SHADDOCK_RUNS=no the shaddock ones (and its build).
#
# `socketio` runs memory and broadcast as Pomelo's socket.io clients (`--proto socketio`,
# SIO_VERSION=4 by default, or 3 or 0.9) and, beside each, the same run as Pomelo over WebSocket
# (`--transport ws`). The server pings Socket.IO clients every 10 s (`[socketio]` below), as the
# Pomelo memory runs heartbeat every 10 s. `sio-polling-memory` and `sio-polling-broadcast` run
# the same clients over HTTP long-polling (`--sio-transport polling`, never upgraded) beside the
# same number over WebSocket. A polling client holds two sockets (its GETs, its POSTs) and the
# server one carrier per client besides (two while a POST connection is open), so these runs
# take POLLING_CONNS clients (default 5000), in two conn-flood processes for both transports.
#
# `tls` runs memory, connect and broadcast over TLS (`--tls`; Pomelo over TCP, or
# TLS_TRANSPORT=ws; both TLS versions offered, or TLS_VERSION=1.2 or 1.3) and, beside each, the
# same run in plain against the same server configuration: `[client.tls]` set, with a CA and
# a certificate for localhost that openssl makes in $OUT/tls (so plain and TLS clients share the
# port, as in production).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-target/bench}
BACKEND=${BACKEND:-epoll}
REDIS=${REDIS:-yes}
MOSQUITTO=${MOSQUITTO:-yes}
SHADDOCK_RUNS=${SHADDOCK_RUNS:-yes}
MQTT_PORT=${MQTT_PORT:-1883}
MQTT_VERSION=${MQTT_VERSION:-3.1.1}
QOS=${QOS:-0}
SIO_VERSION=${SIO_VERSION:-4}
POLLING_CONNS=${POLLING_CONNS:-5000}
TLS_TRANSPORT=${TLS_TRANSPORT:-tcp}
TLS_VERSION=${TLS_VERSION:-}
TLS_TAG=
if [ "$TLS_TRANSPORT" != tcp ]; then
  TLS_TAG=-$TLS_TRANSPORT
fi
if [ -n "$TLS_VERSION" ]; then
  TLS_TAG=$TLS_TAG-v$TLS_VERSION
fi
SIO_TAG=
if [ "$SIO_VERSION" != 4 ]; then
  SIO_TAG=-v$SIO_VERSION
fi
MQTT_TAG=
if [ "$MQTT_VERSION" != 3.1.1 ] || [ "$QOS" != 0 ]; then
  MQTT_TAG=-v$MQTT_VERSION-q$QOS
fi
# mosquitto listens with a backlog of 100: two loops × 48 connects in flight stay under it.
MQTT_FLAGS=(--proto mqtt --mqtt-version "$MQTT_VERSION" --qos "$QOS" --connect-window 48)
mkdir -p "$OUT"
if [ "$SHADDOCK_RUNS" = no ]; then
  cargo build --release -q -p conn-flood
else
  cargo build --release -q -p shaddock -p conn-flood
fi
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
[socketio]
ping_interval_secs = 10
[log]
level = "warn"
[[apps]]
apikey = "demo"
secret = "$SECRET"
TOML

# The TLS runs' server: bench.toml with [client.tls], and a CA that signed a localhost certificate.
make_tls() {
  local dir=$OUT/tls
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
    -subj '/CN=conn-flood bench CA' -keyout "$dir/ca-key.pem" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=localhost' \
    -keyout "$dir/key.pem" -out "$dir/cert.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$dir/san.ext"
  openssl x509 -req -in "$dir/cert.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" -days 7 \
    -extfile "$dir/san.ext" -out "$dir/cert.pem" 2>/dev/null
  awk '/^\[client\]$/ { print "[client.tls]"; print "cert = \"tls/cert.pem\""; print "key = \"tls/key.pem\""; print "" } { print }' \
    "$OUT/bench.toml" >"$OUT/bench-tls.toml"
}
CONFIG=$OUT/bench.toml

server_pid=
start_shaddock() {
  SHADDOCK_BACKEND=$BACKEND "$SHADDOCK" run --config "$CONFIG" 2>>"$OUT/shaddock.log" &
  server_pid=$!
  sleep 1
}
start_redis() {
  redis-server --port 6379 --save "" --appendonly no --protected-mode no --maxclients 30000 \
    --loglevel warning >>"$OUT/redis.log" 2>&1 &
  server_pid=$!
  sleep 1
}
start_mosquitto() {
  local conf=${TMPDIR:-/tmp}/conn-flood-mosquitto.conf
  printf '%s\n' "listener $MQTT_PORT 127.0.0.1" 'allow_anonymous true' 'max_connections -1' \
    'max_queued_messages 10000' 'persistence false' 'log_dest stderr' 'log_type error' \
    'log_type warning' >"$conf"
  mosquitto -c "$conf" >>"$OUT/mosquitto.log" 2>&1 &
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
  if [ "$server" = mosquitto ] && [ "$MOSQUITTO" = no ]; then
    return
  fi
  if [ "${server%-mqtt}" = shaddock ] && [ "$SHADDOCK_RUNS" = no ]; then
    return
  fi
  case $server in mosquitto | shaddock-mqtt) name=$name$MQTT_TAG ;; esac
  if [ "${server%-mqtt}" = shaddock ] && [ "$BACKEND" != epoll ]; then
    name=$name-$BACKEND
  fi
  case $server in
    redis)
      start_redis
      "$FLOOD" --redis --app demo "$@" --server-pid "$server_pid" >"$OUT/$name.txt" 2>/dev/null ;;
    mosquitto)
      start_mosquitto
      "$FLOOD" "${MQTT_FLAGS[@]}" --target "127.0.0.1:$MQTT_PORT" --app demo "$@" \
        --server-pid "$server_pid" >"$OUT/$name.txt" 2>/dev/null ;;
    shaddock-mqtt)
      start_shaddock
      "$FLOOD" "${MQTT_FLAGS[@]}" --target 127.0.0.1:3010 --app "demo=$SECRET" "$@" \
        --server-pid "$server_pid" >"$OUT/$name.txt" 2>/dev/null ;;
    *)
      start_shaddock
      "$FLOOD" --app "demo=$SECRET" "$@" --server-pid "$server_pid" >"$OUT/$name.txt" 2>/dev/null ;;
  esac
  stop_server
  tail -n 1 "$OUT/$name.txt" >"$OUT/$name.json"
  sed '$d' "$OUT/$name.txt"
}

# mqtt_run mqtt-memory|mqtt-broadcast|mqtt-sustained: shaddock's MQTT frontend, then mosquitto.
mqtt_run() {
  case $1 in
    mqtt-memory)
      run memory-shaddock-mqtt shaddock-mqtt -n 19000 --phases connect,idle --idle-secs 20 \
        --heartbeat-secs 10
      run memory-mosquitto mosquitto -n 19000 --phases connect,idle --idle-secs 20 \
        --heartbeat-secs 10 ;;
    mqtt-broadcast)
      run broadcast-shaddock-mqtt shaddock-mqtt -n 19000 --phases connect,broadcast --pushes 20
      run broadcast-mosquitto mosquitto -n 19000 --phases connect,broadcast --pushes 20 ;;
    mqtt-sustained)
      # From 1 push a second (mosquitto holds a few), past up to three steps not held (shaddock
      # misses ~20-70 pushes a second, before frames share writes, and holds more).
      run sustained-shaddock-mqtt shaddock-mqtt -n 10000 --procs 2 --phases connect,sustained \
        --rate-start 1 --rate-factor 1.5 --rate-steps 22 --rate-misses 4 --step-secs 3
      run sustained-mosquitto mosquitto -n 10000 --procs 2 --phases connect,sustained \
        --rate-start 1 --rate-factor 1.5 --rate-steps 22 --rate-misses 4 --step-secs 3 ;;
    *) echo "unknown run: $1" >&2; exit 2 ;;
  esac
}

# sio_run sio-memory|sio-broadcast: Socket.IO clients, then Pomelo over WebSocket;
# sio-polling-memory|sio-polling-broadcast: Socket.IO polling clients, then Socket.IO WebSocket.
sio_run() {
  local sio=(--proto socketio --sio-version "$SIO_VERSION")
  case $1 in
    sio-memory)
      run "memory-shaddock-sio$SIO_TAG" shaddock "${sio[@]}" -n 19000 --phases connect,idle \
        --idle-secs 20
      run memory-shaddock-ws shaddock --transport ws -n 19000 --phases connect,idle \
        --idle-secs 20 --heartbeat-secs 10 ;;
    sio-broadcast)
      run "broadcast-shaddock-sio$SIO_TAG" shaddock "${sio[@]}" -n 19000 \
        --phases connect,broadcast --pushes 20
      run broadcast-shaddock-ws shaddock --transport ws -n 19000 --phases connect,broadcast \
        --pushes 20 ;;
    sio-polling-memory)
      run "memory-shaddock-sio-polling$SIO_TAG" shaddock "${sio[@]}" --sio-transport polling \
        -n "$POLLING_CONNS" --procs 2 --phases connect,idle --idle-secs 20
      run "memory-shaddock-sio-ws$SIO_TAG" shaddock "${sio[@]}" -n "$POLLING_CONNS" \
        --procs 2 --phases connect,idle --idle-secs 20 ;;
    sio-polling-broadcast)
      run "broadcast-shaddock-sio-polling$SIO_TAG" shaddock "${sio[@]}" --sio-transport polling \
        -n "$POLLING_CONNS" --procs 2 --phases connect,broadcast --pushes 20
      run "broadcast-shaddock-sio-ws$SIO_TAG" shaddock "${sio[@]}" -n "$POLLING_CONNS" \
        --procs 2 --phases connect,broadcast --pushes 20 ;;
    *) echo "unknown run: $1" >&2; exit 2 ;;
  esac
}

# tls_run tls-memory|tls-connect|tls-broadcast: TLS clients, then plain ones, on the TLS server.
tls_run() {
  [ -f "$OUT/bench-tls.toml" ] || make_tls
  local both=(--transport "$TLS_TRANSPORT")
  local tls=(--tls --tls-ca "$OUT/tls/ca.pem" --tls-name localhost)
  if [ -n "$TLS_VERSION" ]; then
    tls+=(--tls-version "$TLS_VERSION")
  fi
  CONFIG=$OUT/bench-tls.toml
  case $1 in
    tls-memory)
      run "memory-shaddock-tls$TLS_TAG" shaddock "${tls[@]}" "${both[@]}" -n 19000 \
        --phases connect,idle --idle-secs 20 --heartbeat-secs 10
      run "memory-shaddock-tls-plain$TLS_TAG" shaddock "${both[@]}" -n 19000 \
        --phases connect,idle --idle-secs 20 --heartbeat-secs 10 ;;
    tls-connect)
      run "connect-shaddock-tls$TLS_TAG" shaddock "${tls[@]}" "${both[@]}" -n 19000 \
        --phases connect
      run "connect-shaddock-tls-plain$TLS_TAG" shaddock "${both[@]}" -n 19000 --phases connect ;;
    tls-broadcast)
      run "broadcast-shaddock-tls$TLS_TAG" shaddock "${tls[@]}" "${both[@]}" -n 19000 \
        --phases connect,broadcast --pushes 20
      run "broadcast-shaddock-tls-plain$TLS_TAG" shaddock "${both[@]}" -n 19000 \
        --phases connect,broadcast --pushes 20 ;;
    *) echo "unknown run: $1" >&2; exit 2 ;;
  esac
  CONFIG=$OUT/bench.toml
}

for what in "${@:-memory connect broadcast sustained churn websocket mqtt}"; do
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
      mqtt)
        for part in mqtt-memory mqtt-broadcast mqtt-sustained; do mqtt_run "$part"; done ;;
      mqtt-*) mqtt_run "$phase" ;;
      socketio)
        for part in sio-memory sio-broadcast sio-polling-memory sio-polling-broadcast; do
          sio_run "$part"
        done ;;
      sio-*) sio_run "$phase" ;;
      tls)
        for part in tls-memory tls-connect tls-broadcast; do tls_run "$part"; done ;;
      tls-*) tls_run "$phase" ;;
      *) echo "unknown run: $phase" >&2; exit 2 ;;
    esac
  done
done
