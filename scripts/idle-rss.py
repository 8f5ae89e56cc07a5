"""Measures a running daemon's resident memory per idle connection.

Usage: scripts/idle-rss.py HOST PORT DAEMON_PID N WARM

Opens WARM idle Pomelo clients (handshake, ack, enter the `demo` app), reads the daemon's VmRSS,
opens N - WARM more, reads it again, and prints (after - before) / (N - WARM) as JSON. A WARM
large enough to have touched every fixed buffer (io_uring: each reactor's 2 MiB buffer ring is
filled in FIFO order, so ~1,000 connections) keeps fixed costs out of the figure. Keep N within
the machine's budget (loopback only; each client is one file descriptor here and one there).
"""
import json, socket, struct, sys, time, resource

addr = (sys.argv[1], int(sys.argv[2])); pid = int(sys.argv[3]); n = int(sys.argv[4]); warm = int(sys.argv[5])
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 100, n + 100))

def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

def pkg(kind, body):
    return bytes([kind]) + len(body).to_bytes(3, "big") + body

def read_pkg(s):
    head = b""
    while len(head) < 4:
        head += s.recv(4 - len(head))
    length = int.from_bytes(head[1:4], "big")
    body = b""
    while len(body) < length:
        body += s.recv(length - len(body))
    return head[0], body

def client(i):
    s = socket.create_connection(addr)
    s.sendall(pkg(1, b'{"sys":{"type":"rss","version":"0.0.1"},"user":{}}'))
    read_pkg(s)
    s.sendall(pkg(2, b""))
    body = json.dumps({"role": "client", "apikey": "demo", "clientId": f"idle-{i:06d}"}).encode()
    route = b"connector.entryHandler.enter"
    msg = bytes([0, 1, len(route)]) + route + body
    s.sendall(pkg(4, msg))
    while True:
        kind, _ = read_pkg(s)
        if kind == 4:
            return s

socks = [client(i) for i in range(warm)]
time.sleep(1.5)
base = rss()
socks += [client(i) for i in range(warm, n)]
time.sleep(1.5)
top = rss()
print(json.dumps({"connections": n, "warm": warm, "rss_warm": base, "rss_all": top,
                  "bytes_per_idle_connection": round((top - base) / (n - warm), 1)}))
