//! A second daemon on a client port that another one listens on refuses to start, naming the
//! port and the key that allows sharing; with `client.share_port` in both, they share it (as a
//! cluster's processes on one machine do).

mod common;

use common::test_config;

fn on_port(port: u16, share: bool) -> shaddock::config::Config {
    let mut config = test_config(1);
    config.client.listen = format!("127.0.0.1:{port}").parse().unwrap();
    config.client.share_port = share;
    config
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_second_daemon_on_a_taken_client_port_refuses_to_start() {
    let port = free_port();
    let first = common::start(on_port(port, false));
    let error = shaddock::Server::start(on_port(port, false)).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse);
    let said = error.to_string();
    assert!(said.contains(&format!("client.listen 127.0.0.1:{port}")), "{said}");
    assert!(said.contains("client.share_port"), "{said}");
    drop(first);
}

#[test]
fn with_share_port_two_daemons_share_the_client_port() {
    let port = free_port();
    let first = common::start(on_port(port, true));
    let second = common::start(on_port(port, true));
    assert_eq!(first.client_addr(), second.client_addr());
}

#[test]
fn a_taken_mqtt_port_is_refused_too() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = test_config(1);
    config.mqtt.listen = Some(taken.local_addr().unwrap());
    let said = shaddock::Server::start(config).unwrap_err().to_string();
    assert!(said.starts_with("mqtt.listen "), "{said}");
}
