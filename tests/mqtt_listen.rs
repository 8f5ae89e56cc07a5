//! `mqtt.listen`, the optional dedicated MQTT port: off by default (`Server::mqtt_addr` is
//! `None`); when set, every reactor accepts there too and a connection there is handled as on
//! the client port: an MQTT client (raw bytes here, and the real `mosquitto_sub`) subscribed
//! there gets an HTTP push's exact payload, a Pomelo client there works too, and the port stops
//! accepting at shutdown; a port already taken fails the start with an error naming it.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{DEMO, DEMO_SECRET, IO_TIMEOUT, client, http, start, test_config, wait_until};
use serde_json::{Value, json};
use shaddock::Server;
use shaddock::config::Config;

/// A test configuration with `mqtt.listen` on a free loopback port.
fn with_mqtt_port(reactors: usize) -> Config {
    let mut config = test_config(reactors);
    config.mqtt.listen = Some("127.0.0.1:0".parse().unwrap());
    config
}

/// `POST /api/apps/demo/push {"msg": msg}`, which must be answered 200; its body.
fn http_push(control: SocketAddr, msg: &Value) -> Value {
    let body = json!({ "msg": msg }).to_string();
    let response = http::post_json(control, "/api/apps/demo/push", Some(DEMO_SECRET), &body);
    assert_eq!(response.status, 200, "HTTP push {body}: {}", response.text());
    response.json()
}

/// An MQTT packet: `first` byte, the remaining length (varint), `body`.
fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut len = body.len();
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        out.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// A length-prefixed MQTT string.
fn string(s: &str) -> Vec<u8> {
    let mut out = (s.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(s.as_bytes());
    out
}

/// Reads one MQTT packet: its first byte and body.
fn read_packet(stream: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut first = [0; 1];
    stream.read_exact(&mut first).expect("a packet's first byte");
    let (mut len, mut shift) = (0usize, 0);
    loop {
        let mut byte = [0; 1];
        stream.read_exact(&mut byte).expect("a remaining length byte");
        len |= usize::from(byte[0] & 0x7F) << shift;
        if byte[0] & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    let mut body = vec![0; len];
    stream.read_exact(&mut body).expect("a packet's body");
    (first[0], body)
}

/// A 3.1.1 client of the demo app connected to `addr` as `id` and subscribed to `push/demo` at
/// QoS 0, each step answered as the spec says.
fn mqtt_subscriber(addr: SocketAddr, id: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    // CONNECT: "MQTT", level 4, username + clean session, keep alive 60, then the payload.
    let mut connect = string("MQTT");
    connect.extend_from_slice(&[4, 0x82, 0, 60]);
    connect.extend(string(id));
    connect.extend(string(DEMO));
    stream.write_all(&packet(0x10, &connect)).unwrap();
    assert_eq!(read_packet(&mut stream), (0x20, vec![0, 0]), "CONNACK accepted");
    // SUBSCRIBE packet id 1, push/demo at QoS 0.
    let mut subscribe = vec![0, 1];
    subscribe.extend(string("push/demo"));
    subscribe.push(0);
    stream.write_all(&packet(0x82, &subscribe)).unwrap();
    assert_eq!(read_packet(&mut stream), (0x90, vec![0, 1, 0]), "SUBACK granted QoS 0");
    stream
}

#[test]
fn without_mqtt_listen_there_is_no_mqtt_port() {
    assert_eq!(Config::default().mqtt.listen, None);
    let server = start(test_config(2));
    assert_eq!(server.mqtt_addr(), None);
}

#[test]
fn an_mqtt_client_on_the_mqtt_port_gets_the_exact_payload_of_an_http_push() {
    let server = start(with_mqtt_port(2));
    let mqtt = server.mqtt_addr().expect("mqtt.listen is set");
    assert_ne!(mqtt.port(), 0, "port 0 is resolved");
    assert_ne!(mqtt.port(), server.client_addr().port());
    // More than one connection, so that with SO_REUSEPORT both reactors likely hold one.
    let mut subscribers: Vec<TcpStream> =
        (0..4).map(|i| mqtt_subscriber(mqtt, &format!("mq-{i}"))).collect();
    let msg = json!({"title": "hi", "n": [1, "héllo ✓", null]});
    assert_eq!(http_push(server.control_addr(), &msg), json!({"recipients": 4}));
    let mut publish = string("push/demo");
    publish.extend_from_slice(msg.to_string().as_bytes());
    for (i, subscriber) in subscribers.iter_mut().enumerate() {
        assert_eq!(read_packet(subscriber), (0x30, publish.clone()), "subscriber {i}");
    }
}

#[test]
fn a_pomelo_client_on_the_mqtt_port_is_sniffed_as_on_the_client_port() {
    let server = start(with_mqtt_port(1));
    let mqtt = server.mqtt_addr().expect("mqtt.listen is set");
    let mut pomelo = client(mqtt, DEMO, "pomelo-on-mqtt-port");
    let mut subscriber = mqtt_subscriber(mqtt, "mq-beside");
    let msg = json!("both");
    assert_eq!(http_push(server.control_addr(), &msg), json!({"recipients": 2}));
    assert_eq!(pomelo.next_push(), ("onMsg".to_owned(), json!({ "msg": msg })));
    let mut publish = string("push/demo");
    publish.extend_from_slice(b"\"both\"");
    assert_eq!(read_packet(&mut subscriber), (0x30, publish));
}

/// A child process killed when dropped, so a failing test leaves none.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn mosquitto_sub_on_the_mqtt_port_prints_an_http_push() {
    let server = start(with_mqtt_port(2));
    let (mqtt, control) = (server.mqtt_addr().expect("mqtt.listen is set"), server.control_addr());
    let port = mqtt.port().to_string();
    let args = ["-h", "127.0.0.1", "-p", &port, "-V", "mqttv5", "-u", DEMO, "-i", "phone-1"];
    let child = Command::new("mosquitto_sub")
        .args(args)
        .args(["-t", "push/demo", "-q", "1", "-C", "1", "-W", "10"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub runs (Debian: apt-get install mosquitto-clients)");
    let mut child = Killed(child);
    wait_until("phone-1 is online", Duration::from_secs(10), || {
        let page = http::get(control, "/api/apps/demo/clients", Some(DEMO_SECRET)).json();
        page["clients"] == json!(["phone-1"])
    });
    assert_eq!(http_push(control, &json!({"title": "hi"})), json!({"recipients": 1}));
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "mosquitto_sub did not exit within 15 s");
        thread::sleep(Duration::from_millis(10));
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child.0.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    child.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert_eq!(
        (status.code(), stdout.as_str(), stderr.as_str()),
        (Some(0), "{\"title\":\"hi\"}\n", "")
    );
}

#[test]
fn the_mqtt_port_stops_accepting_at_shutdown() {
    let server = Server::start(with_mqtt_port(2)).expect("server starts");
    let mqtt = server.mqtt_addr().expect("mqtt.listen is set");
    drop(TcpStream::connect(mqtt).expect("the mqtt port accepts"));
    let shutdown = thread::spawn(move || server.shutdown());
    wait_until("the mqtt port refuses connections", Duration::from_secs(2), || {
        TcpStream::connect(mqtt).is_err()
    });
    shutdown.join().expect("shutdown does not panic").expect("shutdown succeeds");
}

#[test]
fn an_mqtt_port_in_use_fails_the_start_naming_mqtt_listen() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = test_config(1);
    config.mqtt.listen = Some(taken.local_addr().unwrap());
    let error = Server::start(config).expect_err("the port is taken");
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse, "{error}");
    assert!(error.to_string().starts_with("mqtt.listen 127.0.0.1:"), "{error}");
}
