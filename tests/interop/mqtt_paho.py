"""Eclipse paho-mqtt (PyPI, pinned in tests/interop/requirements.txt), run unchanged against
shaddock's client port over raw TCP: QoS 1 with a persistent session.

    tests/interop/.venv/bin/python tests/interop/mqtt_paho.py --host 127.0.0.1 --port 3010 \
        --control-port 3080 --apikey demo --secret SECRET --protocol-version 4|5 \
        [--client-id ID] [--count 10] [--timeout-ms 20000]

A client connects with a persistent session (3.1.1: clean session 0; 5.0: clean start 0 and a
Session Expiry Interval of 300 s), subscribes to push/{apikey} at QoS 1 and disconnects cleanly;
then `count` pushes {"n": i} are made through the HTTP push API while it is away; a new paho
client with the same client identifier reconnects (not clean) and must get every one of them
once, in order, at QoS 1, with no further subscription. It waits 500 ms after the last one so a
duplicate would be seen. Prints one JSON line and exits 0, or 1 with `error`. Run by
tests/interop_mqtt_persistent.rs.
"""

import argparse
import json
import sys
import threading
import time
import urllib.error
import urllib.request

RESULT = {"script": "mqtt_paho", "ok": False}

try:
    import paho.mqtt
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
except ImportError as e:  # the Rust runner checks first; this is for a run by hand
    RESULT["error"] = (
        f"paho-mqtt is not installed ({e}): run `python3 -m venv tests/interop/.venv && "
        "tests/interop/.venv/bin/pip install -r tests/interop/requirements.txt`"
    )
    print(json.dumps(RESULT), flush=True)
    sys.exit(1)


class Session:
    """One paho client and what it saw."""

    def __init__(self, opt, label, version):
        self.label = label
        self.version = version
        self.lock = threading.Lock()
        self.received = []
        self.connack = None
        self.granted = None
        self.disconnects = []
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.gone = threading.Event()
        if version == 5:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=opt.client_id, protocol=mqtt.MQTTv5
            )
        else:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=opt.client_id,
                clean_session=False,
                protocol=mqtt.MQTTv311,
            )
        self.client.username_pw_set(opt.apikey)
        self.client.on_connect = self.on_connect
        self.client.on_subscribe = self.on_subscribe
        self.client.on_message = self.on_message
        self.client.on_disconnect = self.on_disconnect

    def on_connect(self, _client, _userdata, flags, reason_code, _properties):
        self.connack = {
            "session_present": bool(flags.session_present),
            "reason_code": reason_code.value,
        }
        self.connected.set()

    def on_subscribe(self, _client, _userdata, _mid, reason_codes, _properties):
        self.granted = [rc.value for rc in reason_codes]
        self.subscribed.set()

    def on_message(self, _client, _userdata, msg):
        with self.lock:
            self.received.append(
                {
                    "topic": msg.topic,
                    "payload": msg.payload.decode("utf-8", "replace"),
                    "qos": msg.qos,
                    "retain": bool(msg.retain),
                    "dup": bool(msg.dup),
                }
            )

    def on_disconnect(self, _client, _userdata, _flags, reason_code, _properties):
        self.disconnects.append(reason_code.value)
        self.gone.set()

    def connect(self, opt, deadline):
        if self.version == 5:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 300
            self.client.connect(opt.host, opt.port, keepalive=30, clean_start=False, properties=props)
        else:
            self.client.connect(opt.host, opt.port, keepalive=30)
        self.client.loop_start()
        wait(self.connected, deadline, f"{self.label}: the CONNACK")
        if self.connack["reason_code"] != 0:
            raise Failure(f"{self.label}: CONNECT refused: {self.connack}")

    def count(self):
        with self.lock:
            return len(self.received)

    def summary(self):
        with self.lock:
            return {
                "connack": self.connack,
                "granted": self.granted,
                "received": list(self.received),
                "disconnects": list(self.disconnects),
            }

    def stop(self):
        try:
            self.client.disconnect()
        except Exception:  # noqa: BLE001 - already gone
            pass
        self.client.loop_stop()


class Failure(Exception):
    pass


def wait(event, deadline, what):
    if not event.wait(max(0.0, deadline - time.monotonic())):
        raise Failure(f"timed out waiting for {what}")


def until(cond, deadline, what):
    while not cond():
        if time.monotonic() >= deadline:
            raise Failure(f"timed out waiting until {what}")
        time.sleep(0.01)


def http(opt, method, path, body=None):
    url = f"http://{opt.host}:{opt.control_port}{path}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {opt.secret}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5) as res:
            return res.status, json.loads(res.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def online(opt):
    status, body = http(opt, "GET", f"/api/apps/{opt.apikey}/clients?limit=1000")
    if status != 200:
        raise Failure(f"GET clients answered {status}: {body}")
    return body["clients"]


def run(opt, deadline):
    RESULT["versions"] = {"python": sys.version.split()[0], "paho-mqtt": paho.mqtt.__version__}
    RESULT["protocol_version"] = opt.protocol_version
    topic = f"push/{opt.apikey}"

    first = Session(opt, "first", opt.protocol_version)
    sessions.append(first)
    first.connect(opt, deadline)
    first.client.subscribe(topic, qos=1)
    wait(first.subscribed, deadline, "first: the SUBACK")
    until(lambda: opt.client_id in online(opt), deadline, f"{opt.client_id} is listed online")
    first.client.disconnect()
    wait(first.gone, deadline, "first: the disconnect")
    first.client.loop_stop()
    RESULT["first"] = first.summary()
    # The server has the DISCONNECT once the client is no longer listed online.
    until(lambda: opt.client_id not in online(opt), deadline, f"{opt.client_id} is gone offline")

    RESULT["answers"] = []
    for i in range(opt.count):
        status, body = http(opt, "POST", f"/api/apps/{opt.apikey}/push", {"msg": {"n": i}})
        if status != 200:
            raise Failure(f"HTTP push {i} answered {status}: {body}")
        RESULT["answers"].append(body)

    second = Session(opt, "second", opt.protocol_version)
    sessions.append(second)
    second.connect(opt, deadline)
    soon = min(deadline, time.monotonic() + 5)
    until(lambda: second.count() >= opt.count, soon, f"{opt.count} messages within 5 s of reconnecting")
    time.sleep(0.5)
    RESULT["second"] = second.summary()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--apikey", default="demo")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--protocol-version", type=int, choices=[4, 5], required=True)
    parser.add_argument("--client-id", default=None)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--timeout-ms", type=int, default=20000)
    opt = parser.parse_args()
    if opt.client_id is None:
        opt.client_id = f"paho-persistent-v{opt.protocol_version}"
    RESULT["timeout_ms"] = opt.timeout_ms
    deadline = time.monotonic() + opt.timeout_ms / 1000
    try:
        run(opt, deadline)
        RESULT["ok"] = True
    except Exception as e:  # noqa: BLE001 - reported in the result line
        RESULT["error"] = f"{type(e).__name__}: {e}"
    finally:
        for s in sessions:
            s.stop()
        for s, key in ((s, s.label) for s in sessions):
            RESULT.setdefault(key, s.summary())
    print(json.dumps(RESULT), flush=True)
    sys.exit(0 if RESULT["ok"] else 1)


sessions = []

if __name__ == "__main__":
    main()
