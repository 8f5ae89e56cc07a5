#!/usr/bin/env python3
"""Writes the first seeds of every fuzz target into fuzz/corpus/<target>/, from the repository's
test vectors: tests/data/ (Pomelo and MQTT captures, the socket.io recordings, the protobuf
vectors) and a few hand-built connections of the kinds the unit tests drive.

The committed corpora are these seeds plus what short fuzz runs found, minimized together with
`cargo fuzz cmin` (so the files are named by their hash). Run from anywhere:
`python3 fuzz/seeds.py` (it adds files; it deletes none).
"""

import glob
import hashlib
import json
import os
import re
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")
seeds = {}


def add(target, data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    seeds.setdefault(target, set()).add(bytes(data))


# --- Pomelo ---------------------------------------------------------------------------------

def package(kind, body=b""):
    return bytes([kind]) + len(body).to_bytes(3, "big") + body


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def message(kind, msg_id, route, body):
    """kind 0 request, 1 notify, 2 response, 3 push; route a str, an int (dict code) or None."""
    flag = kind << 1 | (1 if isinstance(route, int) else 0)
    out = bytes([flag])
    if kind in (0, 2):
        out += varint(msg_id)
    if isinstance(route, int):
        out += route.to_bytes(2, "big")
    elif route is not None:
        out += bytes([len(route.encode())]) + route.encode()
    return out + body


def split_packages(stream):
    out = []
    while len(stream) >= 4:
        n = 4 + int.from_bytes(stream[1:4], "big")
        out.append(stream[:n])
        stream = stream[n:]
    return out


HELLO = json.dumps({"sys": {"type": "js-websocket", "version": "0.0.1", "rsa": {}}, "user": {}})
HELLO_APP = json.dumps(
    {"sys": {"type": "anchor-tcp", "version": "0.0.1", "protoVersion": 0, "dictVersion": "x"},
     "user": {"apikey": "demo"}})
ENTER = "connector.entryHandler.enter"
PUSH_ALL = "pushserver.pushHandler.pushAll"
PUSH_TO = "pushserver.pushHandler.pushByClientId"
CLIENT = json.dumps({"role": "client", "apikey": "demo", "clientId": "c1"}).encode()
MANAGER = json.dumps({"role": "server", "apikey": "demo", "secret": "demo-secret"}).encode()

# The captures: every connection's client bytes, and every package either way.
captures = open(os.path.join(DATA, "pomelo-captures.md"), encoding="utf-8").read()
conns = {}
conn = None
prev = ""
for line in captures.splitlines():
    if line.startswith("### conn") or line.startswith("## Run"):
        conn = line
        conns.setdefault(conn, b"")
    m = re.match(r"\s+`([0-9a-f ]+)`$", line)
    if m and conn:
        pkg = bytes.fromhex(m.group(1))
        add("pomelo_package", pkg)
        if pkg[0] == 4:
            add("pomelo_message", pkg[4:])
        if pkg[0] == 1:
            add("pomelo_handshake", pkg[4:])
        if pkg[0] == 5:
            add("pomelo_kick", pkg[4:])
        if "c2s" in prev:
            conns[conn] += pkg
    prev = line
for block in re.findall(r"```\n(\{.*?\})\n```", captures, re.S):
    add("pomelo_handshake", block)

pomelo_tcp = [
    package(1, HELLO.encode()) + package(2) + package(4, message(0, 1, ENTER, CLIENT))
    + package(3) + package(4, message(1, 0, "connector.entryHandler.noop", b"{}")),
    package(1, HELLO.encode()) + package(2) + package(4, message(0, 1, ENTER, MANAGER))
    + package(4, message(0, 2, PUSH_ALL, b'{"apikey":"demo","msg":{"title":"hi"}}'))
    + package(4, message(0, 300, PUSH_TO, b'{"apikey":"demo","clientId":"c1","msg":"x"}')),
    package(1, HELLO.encode()) + package(2) + package(4, message(0, 1, "a.b.constructor", b"{}")),
    package(1, b"{}") + package(9),
]
pomelo_tcp += [stream for stream in conns.values() if stream]
for stream in pomelo_tcp:
    for pkg in split_packages(stream):
        add("pomelo_package", pkg)
        if pkg[0] == 4:
            add("pomelo_message", pkg[4:])
    add("pomelo_package", stream)
for body in [HELLO, HELLO_APP, '{"sys":{"type":"x","protoVersion":"abc"},"user":{"apiKey":"other"}}',
             '{"user":{}}', "not json", '{"code":501}', '{"code":200,"sys":{"heartbeat":3}}']:
    add("pomelo_handshake", body)
for body in ['{"reason":"attack"}', '{"reason":"replaced"}', "", '{"reason":null}', '{"reason":"\\u00e9\\n"}']:
    add("pomelo_kick", body)
add("pomelo_message", message(3, 0, 4, b"\x0a\x02hi"))
add("pomelo_message", message(2, 2**31, None, b"{}"))
add("pomelo_dict", f"{ENTER}\n{PUSH_ALL}\n{PUSH_TO}\0onAdd\nonMsg\nonLeave")
add("pomelo_dict", 'a.b.c\na.b.c\0"quoted"\\\n\ttab\n\u00e9\U0001F600')
add("pomelo_dict", "")

# --- pomelo-protobuf: [route index] + body, the route index as fuzzing::pomelo::routes() counts.


def js_keys(obj):
    """JavaScript's key order: integer-like keys ascending, then insertion order."""
    ints = sorted((k for k in obj if re.fullmatch(r"0|[1-9][0-9]*", k)), key=int)
    return ints + [k for k in obj if k not in ints]


vectors = json.load(open(os.path.join(DATA, "protobuf-vectors.json"), encoding="utf-8"))
files = [json.load(open(os.path.join(DATA, "protos", name), encoding="utf-8"))
         for name in ("clientProtos.json", "serverProtos.json")]
files += [s["protos"] for s in vectors["sets"]]
routes = [(i, k) for i, f in enumerate(files) for k in js_keys(f) if not k.startswith("message ")]
set_file = {s["name"]: 2 + i for i, s in enumerate(vectors["sets"])}
cases = [(s["name"], c["route"], c["hex"]) for s in vectors["sets"] for c in s["cases"]]
cases += [(c["set"], c["route"], c["hex"]) for c in vectors["decode_only"]]
for set_name, route, hexed in cases:
    index = routes.index((set_file[set_name], route))
    add("protobuf_decode", bytes([index]) + bytes.fromhex(hexed))
enter_pb = bytes.fromhex("0a06636c69656e74120464656d6f1a026331")  # {role:client, apikey:demo, clientId:c1}
add("protobuf_decode", bytes([routes.index((0, ENTER))]) + enter_pb)

# --- HTTP, WebSocket, socket.io recordings ---------------------------------------------------

HOST = "Host: 127.0.0.1:3010\r\n"
KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def head(start_line, headers, body="", host=True):
    lines = [start_line] + ([HOST.strip()] if host else []) + [f"{n}: {v}" for n, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8", "surrogatepass")


def upgrade(path, extra=""):
    return (f"GET {path} HTTP/1.1\r\n{HOST}Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n").encode()


def client_frame(opcode, payload, mask=b"\x12\x34\x56\x78", fin=True):
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogatepass")
    n = len(payload)
    out = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        out += bytes([0x80 | n])
    elif n < 65536:
        out += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        out += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return out + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


OPCODES = {"text": 1, "binary": 2, "close": 8, "ping": 9, "pong": 10}
sio_conns = []
for path in sorted(glob.glob(os.path.join(DATA, "socketio", "*.json"))):
    if os.path.basename(path).startswith("package"):
        continue
    name = os.path.basename(path)
    v09 = name.startswith("v09")
    eio = "4" if "eio4" in name else "3"
    by_conn = {}
    for e in json.load(open(path, encoding="utf-8")):
        if e.get("dir") != "c2s":
            continue
        stream = by_conn.setdefault(e.get("conn"), [b""])
        if e.get("layer") == "http":
            h = e["http"]
            raw = head(h["start_line"], h["headers"], h.get("body", ""))
            add("http_head", raw)
            add("http_head", head(h["start_line"], h["headers"], h.get("body", ""), host=False))
            if any(n.lower() == "upgrade" for n, _ in h["headers"]):
                add("ws_upgrade", raw)
            stream[0] += raw
            body = h.get("body", "")
            if body and h["start_line"].startswith("POST"):
                if v09:
                    add("v09_frames", body)
                elif eio == "4":
                    add("eio_payload_v4", body)
                else:
                    add("eio_payload_v3", body)
        elif e.get("layer") == "ws":
            w = e["ws"]
            payload = w["payload"]
            if isinstance(payload, dict):
                import base64
                payload = base64.b64decode(payload["base64"])
            mask = bytes.fromhex(w.get("mask_hex", "12345678"))
            frame = client_frame(OPCODES[w["opcode"]], payload, mask)
            add("ws_frames", frame)
            stream[0] += frame
            if w["opcode"] != "text":
                continue
            if v09:
                add("v09_packet", payload)
                add("v09_frames", payload)
            else:
                add("eio_packet", payload)
                if payload.startswith("4"):
                    add("sio_packet", payload[1:])
    for stream in by_conn.values():
        if stream[0]:
            sio_conns.append(stream[0])
            add("ws_frames", stream[0][stream[0].find(b"\r\n\r\n") + 4:] or b"\x81\x80\0\0\0\0")

# The packets inside the polling bodies, and the Pomelo requests inside the messages.
for body in list(seeds.get("eio_payload_v3", [])) + list(seeds.get("eio_payload_v4", [])):
    text = body.decode("utf-8")
    parts = text.split("\x1e") if not re.match(r"\d+:", text) else re.split(r"\d+:", text)[1:]
    for part in parts:
        if part:
            add("eio_packet", part)
            if part.startswith("4"):
                add("sio_packet", part[1:])
for packet in list(seeds.get("sio_packet", [])) + list(seeds.get("v09_packet", [])):
    text = packet.decode("utf-8")
    m = re.match(r'2\["message",(".*")\]$', text)
    if m:
        add("pomelo_sio", json.loads(m.group(1)))
    if text.startswith("3:::"):
        add("pomelo_sio", text[4:])
for body in seeds.get("v09_frames", set()).copy():
    for packet in body.decode("utf-8").split("\ufffd")[2::2]:
        add("v09_packet", packet)

# A few more of each, where the recordings have none.
for data in ["2probe", "3probe", "5", "6", "1", "0{}", "b4AQID"]:
    add("eio_packet", data)
add("eio_payload_v3", b"\x00\x01\x08\xff42[\"message\",\"c1\"]\x00\x01\xff2")  # binary form
add("eio_payload_v3", b"\x01\x03\xff\x01\x02\x03")  # a binary packet
add("eio_payload_v3", "3:4\u20ac12:\U0001F600")
add("eio_payload_v4", "2\x1e3\x1e42[\"message\",\"\\u0000\"]")
for data in ['0/chat,{"token":1}', "1", '2/chat,12["foo",1]', '3/chat,12["bar"]',
             '51-["baz",{"_placeholder":true,"num":0}]', '4"Not authorized"', '2["message",1]']:
    add("sio_packet", data)
for data in ["1::/chat:?token=x", "6:::1+[\"x\"]", "7:::1+0", "8::", '5:2+::{"name":"message"}']:
    add("v09_packet", data)
add("v09_frames", "\ufffd3\ufffd2::\ufffd4\ufffd3:::\U0001F600")
add("pomelo_sio", "\0\0\0\x01\x1c" + ENTER + '{"role":"client","apikey":"demo","clientId":"c1"}')
add("pomelo_sio", "\0\0\0\0\x03a.b\U0001F600")

for data in [b"GET / HTTP/1.1\r\n", b"\x10\x0e", b"\x01\x00\x00\x02{}", b"OPTIONS ", b"GE", b"",
             b"POST /x", b"CONNECT", b"TRACE /", b"get / "]:
    add("sniff", data)
for data in [upgrade("/"), upgrade("/ws?token=1", "Origin: http://a\r\nSec-WebSocket-Protocol: mqtt\r\n"),
             b"POST / HTTP/1.1\r\nHost: x\r\n\r\n", upgrade("/").replace(b"13", b"8"),
             b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"]:
    add("ws_upgrade", data)
    add("http_head", data)
add("http_head", b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n40")
add("http_head", b"GET /a?b HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n")
add("ws_frames", client_frame(1, "hi", fin=False) + client_frame(0, " there") + client_frame(9, "p")
    + client_frame(8, b"\x03\xe8bye"))
add("ws_frames", client_frame(2, b"\x04" * 300))
add("ws_frames", client_frame(8, b"\x03\xe9\xff"))

# --- MQTT ------------------------------------------------------------------------------------

mqtt = open(os.path.join(DATA, "mqtt-captures.md"), encoding="utf-8").read()
mqtt_sessions = {"3": [], "5": []}
for title, block in re.findall(r"## (mosquitto_\w+, [35][.0-9]+)[^\n]*\n```\n(.*?)```", mqtt, re.S):
    version = "5" if "5.0" in title else "3"
    stream = b"".join(bytes.fromhex(line) for line in block.strip().splitlines())
    mqtt_sessions[version].append(stream)
    target = "mqtt_v5" if version == "5" else "mqtt_v311"
    add(target, stream)
    for line in block.strip().splitlines():
        add(target, bytes.fromhex(line))
# The client → server vectors of src/protocol/mqtt/tests.rs.
tests_rs = open(os.path.join(ROOT, "src", "protocol", "mqtt", "tests.rs"), encoding="utf-8").read()
connect_v5 = re.search(r"const CONNECT_V5: &\[u8\] = &\[(.*?)\];", tests_rs, re.S).group(1)


def rust_bytes(text):
    text = re.sub(r"//[^\n]*", "", text)
    out = bytearray()
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        if item.startswith("b'"):
            out.append(ord(item[2:-1]))
        else:
            out.append(int(item, 0))
    return bytes(out)


add("mqtt_v5", rust_bytes(connect_v5))
for version, items in re.findall(r"\((V3|V5), vec!\[(.*?)\]\)", tests_rs):
    add("mqtt_v5" if version == "V5" else "mqtt_v311", rust_bytes(items))


def mqtt_str(s):
    return len(s).to_bytes(2, "big") + s.encode()


def mqtt_packet(byte0, body):
    return bytes([byte0]) + varint(len(body)) + body


MQTT_MANAGER = mqtt_packet(0x10, mqtt_str("MQTT") + b"\x04\xc2\x00\x3c" + mqtt_str("m1")
                           + mqtt_str("demo") + mqtt_str("demo-secret"))
MQTT_CLIENT = mqtt_packet(0x10, mqtt_str("MQTT") + b"\x04\x02\x00\x3c" + mqtt_str("c1"))
MQTT_SUB = mqtt_packet(0x82, b"\x00\x01" + mqtt_str("push/demo") + b"\x01")
MQTT_PUB = mqtt_packet(0x32, mqtt_str("push/demo") + b"\x00\x07" + b'{"title":"hi"}')
MQTT_V5_CLIENT = mqtt_packet(0x10, mqtt_str("MQTT") + b"\x05\x00\x00\x3c\x05\x11\x00\x00\x00\x3c"
                             + mqtt_str("c5"))
MQTT_V5_SUB = mqtt_packet(0x82, b"\x00\x01\x00" + mqtt_str("push/demo") + b"\x01")
for data in [MQTT_SUB, MQTT_PUB, b"\xc0\x00", b"\xe0\x00", b"\x62\x02\x00\x07"]:
    add("mqtt_v311", data)
for data in [MQTT_V5_CLIENT, MQTT_V5_SUB, b"\xe0\x02\x8e\x00", b"\xf0\x02\x18\x00"]:
    add("mqtt_v5", data)

# --- whole connections: flags | cut lengths | bytes ---------------------------------------------


def session(stream, protos=False, cuts=()):
    add("session", bytes([len(cuts) << 4 | (1 if protos else 0)]) + bytes(cuts) + stream)


def sio_ws(eio, messages):
    frames = b"".join(client_frame(1, m) for m in messages)
    return upgrade(f"/socket.io/?EIO={eio}&transport=websocket") + frames


def sio_request(msg_id, route, body):
    return "\0\0\0" + chr(msg_id) + chr(len(route)) + route + body


ENTER_SIO = sio_request(1, ENTER, CLIENT.decode())
MANAGER_SIO = sio_request(1, ENTER, MANAGER.decode())
PUSH_SIO = sio_request(2, PUSH_ALL, '{"apikey":"demo","msg":"hi"}')
connections = pomelo_tcp + mqtt_sessions["3"] + mqtt_sessions["5"] + sio_conns + [
    upgrade("/") + client_frame(2, package(1, HELLO.encode())) + client_frame(2, package(2))
    + client_frame(2, package(4, message(0, 1, ENTER, CLIENT))) + client_frame(9, "ping")
    + client_frame(8, b"\x03\xe8"),
    MQTT_MANAGER + MQTT_PUB + b"\xc0\x00" + b"\xe0\x00",
    MQTT_CLIENT + MQTT_SUB + b"\x40\x02\x00\x01",
    MQTT_V5_CLIENT + MQTT_V5_SUB,
    upgrade("/mqtt", "Sec-WebSocket-Protocol: mqtt\r\n") + client_frame(2, MQTT_CLIENT)
    + client_frame(2, MQTT_SUB[:3]) + client_frame(2, MQTT_SUB[3:]),
    sio_ws(4, ["40", '42["message",' + json.dumps(ENTER_SIO) + "]", "3", "41"]),
    sio_ws(3, ["2probe", "5", '42["message",' + json.dumps(MANAGER_SIO) + "]",
               '42["message",' + json.dumps(PUSH_SIO) + "]", "2"]),
    b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /socket.io/?EIO=3&transport=polling&sid=abc HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n1:2",
    b"GET /socket.io/1/?t=1 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /socket.io/1/xhr-polling/abc?t=2 HTTP/1.1\r\nHost: x\r\n\r\n",
]
for stream in connections:
    session(stream)
    session(stream, cuts=(1, 3, 7, 30))
pb_enter = package(1, HELLO_APP.encode()) + package(2) + package(4, message(0, 1, 1, enter_pb))
session(pb_enter, protos=True)
session(pb_enter, protos=True, cuts=(5, 4, 2))
session(pomelo_tcp[1], protos=True)

# --- write -----------------------------------------------------------------------------------
for target, datas in sorted(seeds.items()):
    folder = os.path.join(ROOT, "fuzz", "corpus", target)
    os.makedirs(folder, exist_ok=True)
    for data in datas:
        with open(os.path.join(folder, hashlib.sha1(data).hexdigest()), "wb") as f:
            f.write(data)
    print(f"{target}: {len(datas)}")
