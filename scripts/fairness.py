#!/usr/bin/env python3
"""Measures fairness under a flood: an innocent client's heartbeat round trip while other
connections send heartbeats as fast as the server takes them (issue 17's attack: 200 flooders).

Usage: scripts/fairness.py HOST PORT [FLOODERS] [SECS] [PROCS]

Opens FLOODERS (200) Pomelo connections of app `demo`, spread over PROCS (2) processes, each of
which writes 64 KiB blocks of heartbeat packages whenever its socket is writable and reads and
drops the echoes; after a second of flood, one more entered client sends a heartbeat every 20 ms
and times each echo, for SECS (20) seconds. Prints as JSON the innocent round trips (p50, p99,
max, in ms) and the flood's rate (heartbeats echoed per second). Loopback only; every loop is
bounded by SECS.
"""
import json, multiprocessing, selectors, socket, sys, time

from pomelo_client import entered_client, pkg, read_pkg

HEARTBEAT = pkg(3, b"")
BLOCK = HEARTBEAT * (64 * 1024 // len(HEARTBEAT))


def flood(addr, first, count, until, echoed):
    socks = []
    for i in range(count):
        s = entered_client(addr, "demo", f"flood-{first + i:05d}")
        s.setblocking(False)
        socks.append(s)
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    received = 0
    while time.time() < until:
        for key, events in sel.select(timeout=0.1):
            s = key.fileobj
            try:
                if events & selectors.EVENT_READ:
                    received += len(s.recv(256 * 1024))
                if events & selectors.EVENT_WRITE:
                    s.send(BLOCK)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                sel.unregister(s)
    with echoed.get_lock():
        echoed.value += received // len(HEARTBEAT)


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    flooders = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    secs = float(sys.argv[4]) if len(sys.argv) > 4 else 20.0
    procs = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    addr = (host, port)
    innocent = entered_client(addr, "demo", "innocent")
    innocent.settimeout(10)
    start = time.time() + 2.0  # the flooders connect and enter first
    until = start + 1.0 + secs
    echoed = multiprocessing.Value("q", 0)
    share = -(-flooders // procs)
    workers = [
        multiprocessing.Process(target=flood, args=(addr, p * share, min(share, flooders - p * share), until, echoed))
        for p in range(procs)
        if flooders - p * share > 0
    ]
    for w in workers:
        w.start()
    time.sleep(max(0.0, start + 1.0 - time.time()))
    rtts = []
    measure_until = until - 0.2
    while time.time() < measure_until:
        sent = time.perf_counter()
        innocent.sendall(HEARTBEAT)
        while read_pkg(innocent)[0] != 3:
            pass
        rtts.append((time.perf_counter() - sent) * 1000.0)
        time.sleep(0.02)
    for w in workers:
        w.join(timeout=secs + 30)
    rtts.sort()
    print(json.dumps({
        "flooders": flooders,
        "secs": secs,
        "round_trips": len(rtts),
        "p50_ms": round(percentile(rtts, 0.50), 2),
        "p99_ms": round(percentile(rtts, 0.99), 2),
        "max_ms": round(rtts[-1], 2),
        "flood_heartbeats_per_sec": round(echoed.value / (secs + 1.0)),
    }))


if __name__ == "__main__":
    main()
