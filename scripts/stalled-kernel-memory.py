"""Measures what clients that stop reading pin on a running daemon: kernel send-queue bytes (the
server sockets' `skmem` w, from `ss`) and user-space queued bytes (`shaddock_write_queue_bytes`).
The clients keep a 16 KiB receive buffer, so that their closed window leaves the rest on the
server's side, as a remote client's does (on loopback the client's own receive queue would
otherwise grow to tcp_rmem's maximum and hide it).

Usage: scripts/stalled-kernel-memory.py HOST PORT CONTROL_PORT SECRET N PUSHES PUSH_BYTES

Opens N Pomelo clients of app `demo` that never read after entering, pushes PUSHES messages of
PUSH_BYTES each to the channel over the HTTP API (until every client is kicked `slow` or the
pushes are done), and prints as JSON the most kernel and user-space bytes seen per stalled
connection. Run it against `client.send_buffer_bytes` unset and set to compare. Loopback only.
"""
import json, re, subprocess, sys, time, urllib.request

from pomelo_client import entered_client

host, port, control, secret = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
n, pushes, push_bytes = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])

socks = [entered_client((host, port), "demo", f"stalled-{i:05d}", 16 * 1024) for i in range(n)]


def kernel_send_queue():
    out = subprocess.run(["ss", "-tmnH", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    return sum(int(w) for w in re.findall(r"skmem:\(r\d+,rb\d+,t\d+,tb\d+,f\d+,w(\d+),", out))


def queued_user_space():
    text = urllib.request.urlopen(f"http://{host}:{control}/metrics").read().decode()
    m = re.search(r"^shaddock_write_queue_bytes (\d+)", text, re.M)
    return int(m.group(1)) if m else 0


def push(i):
    body = json.dumps({"msg": {"pad": "x" * push_bytes, "n": i}}).encode()
    req = urllib.request.Request(f"http://{host}:{control}/api/apps/demo/push", data=body,
                                 headers={"Authorization": f"Bearer {secret}",
                                          "Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req).read())["recipients"]


kernel = user = 0
for i in range(pushes):
    if push(i) == 0:
        break
    time.sleep(0.01)
    kernel, user = max(kernel, kernel_send_queue()), max(user, queued_user_space())
print(json.dumps({"stalled": n, "pushes": i + 1, "push_bytes": push_bytes,
                  "kernel_send_queue_per_connection": kernel // n,
                  "user_queue_per_connection": user // n}))
