"""Measures a running daemon's resident memory per idle connection.

Usage: scripts/idle-rss.py HOST PORT DAEMON_PID N WARM

Opens WARM idle Pomelo clients (handshake, ack, enter the `demo` app), reads the daemon's VmRSS,
opens N - WARM more, reads it again, and prints (after - before) / (N - WARM) as JSON. A WARM
large enough to have touched every fixed buffer (io_uring: each reactor's 2 MiB buffer ring is
filled in FIFO order, so ~1,000 connections) keeps fixed costs out of the figure. Keep N within
the machine's budget (loopback only; each client is one file descriptor here and one there).
"""
import json, sys, time, resource

from pomelo_client import entered_client

addr = (sys.argv[1], int(sys.argv[2])); pid = int(sys.argv[3]); n = int(sys.argv[4]); warm = int(sys.argv[5])
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, n + 100))

def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

def client(i):
    return entered_client(addr, "demo", f"idle-{i:06d}")

socks = [client(i) for i in range(warm)]
time.sleep(1.5)
base = rss()
socks += [client(i) for i in range(warm, n)]
time.sleep(1.5)
top = rss()
print(json.dumps({"connections": n, "warm": warm, "rss_warm": base, "rss_all": top,
                  "bytes_per_idle_connection": round((top - base) / (n - warm), 1)}))
