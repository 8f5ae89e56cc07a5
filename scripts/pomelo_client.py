"""A minimal Pomelo client for the measurement scripts: handshake, ack, and `enter` as a client
of an app. Loopback only."""
import json, socket


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


def entered_client(addr, apikey, client_id, receive_buffer=None):
    """A connected socket whose session has entered `apikey`'s channel as `client_id`, with
    `receive_buffer` bytes of SO_RCVBUF if given (set before connecting, so the window is)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    s.connect(addr)
    s.sendall(pkg(1, b'{"sys":{"type":"script","version":"0.0.1"},"user":{}}'))
    read_pkg(s)
    s.sendall(pkg(2, b""))
    body = json.dumps({"role": "client", "apikey": apikey, "clientId": client_id}).encode()
    route = b"connector.entryHandler.enter"
    s.sendall(pkg(4, bytes([0, 1, len(route)]) + route + body))
    while True:
        kind, _ = read_pkg(s)
        if kind == 4:
            return s
