//! Fleets through a real MQTT broker (docs/FLEETS.md): two `listen`
//! processes that share no LAN (different loopback ports, no discovery, no
//! peers in common) joined only by a Mosquitto started on a free port; a
//! phone at site A pings the lock at site B through its hub, the answer
//! comes back, also to a one-off sender that is no peer of the hub; the
//! broker is killed and restarted and they deliver again.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Listener, free_udp_port, json, run};

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A mosquitto on `port` with a temp config; killed on drop.
struct Broker {
    child: Child,
}

impl Broker {
    fn binary() -> Option<PathBuf> {
        ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    }

    fn start(bin: &Path, dir: &Path, port: u16) -> Broker {
        Broker::start_on(bin, dir, "127.0.0.1", port)
    }

    fn start_on(bin: &Path, dir: &Path, host: &str, port: u16) -> Broker {
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} {host}\nallow_anonymous true\npersistence false\n"),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Broker { child }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the sample line starting with `series ` (0 when absent).
fn sample(metrics_port: u16, series: &str) -> f64 {
    let page = ureq::get(&format!("http://127.0.0.1:{metrics_port}/metrics"))
        .call()
        .ok()
        .and_then(|r| r.into_string().ok())
        .unwrap_or_default();
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Waits (20 s at most) until the metric `series` reaches `at_least`.
fn until(metrics_port: u16, series: &str, at_least: f64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = sample(metrics_port, series);
        if v >= at_least {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{series} = {v}, wanted {at_least}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn site(did: &str, trust: &[&str], broker: u16, metrics: u16) -> Listener {
    let mqtt = format!("mqtt://127.0.0.1:{broker}");
    let metrics = format!("127.0.0.1:{metrics}");
    Listener::loopback_hub(
        did,
        trust,
        &["--mqtt", &mqtt, "--metrics", &metrics, "--mqtt-events"],
    )
}

/// `send` from the phone's fixed UDP port; the JSON answer, or `None`.
fn send(
    target: &str,
    via: &Listener,
    my_did: &str,
    port: u16,
    mesh: bool,
) -> Option<serde_json::Value> {
    let port = port.to_string();
    let addr = via.loopback();
    let mut args = vec![
        "send",
        target,
        &addr,
        "lock.open",
        "--my-did",
        my_did,
        "--port",
        &port,
        "--timeout",
        "5",
        "--json",
    ];
    if mesh {
        args.push("--mesh");
    }
    let out = run(&args);
    out.status.success().then(|| json(&out))
}

#[test]
fn a_phone_at_site_a_reaches_the_lock_at_site_b_through_a_broker_that_restarts() {
    let Some(bin) = Broker::binary() else {
        eprintln!("mosquitto not installed (apt-get install mosquitto): test skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let broker = Broker::start(&bin, dir.path(), port);
    let (hub_metrics, lock_metrics) = (free_tcp_port(), free_tcp_port());
    let trusted = ["jis:site-a:phone=0.9", "jis:site-a:script=0.9"];
    let hub = site("jis:site-a:hub", &trusted, port, hub_metrics);
    let lock = site("jis:site-b:lock", &trusted, port, lock_metrics);
    until(lock_metrics, "tibet_mqtt_subscribed_total", 2.0);

    // The phone says hello to its hub directly: it becomes a local peer,
    // and the hub subscribes to its DID's topics.
    let phone_port = free_udp_port();
    let hello = send(
        "jis:site-a:hub",
        &hub,
        "jis:site-a:phone",
        phone_port,
        false,
    )
    .expect("the hub answers the phone");
    assert_eq!(hello["decision"], "accept", "{hello}");
    until(hub_metrics, "tibet_mqtt_local_dids", 1.0);
    until(hub_metrics, "tibet_mqtt_subscribed_total", 4.0);

    // A mesh ping for the lock: the hub has no local next hop, publishes
    // it; the lock answers on the phone's topic; the hub sends it home.
    let r = send(
        "jis:site-b:lock",
        &hub,
        "jis:site-a:phone",
        phone_port,
        true,
    )
    .expect("the lock answers across sites");
    assert_eq!(r["responder_did"], "jis:site-b:lock", "{r}");
    assert_eq!(r["airlock_zone"], "GROEN", "{r}");
    assert_eq!(sample(hub_metrics, "tibet_mqtt_published_total"), 1.0);
    assert_eq!(sample(lock_metrics, "tibet_mqtt_received_total"), 1.0);
    assert!(sample(lock_metrics, "tibet_mqtt_events_published_total") >= 1.0);

    // A one-off sender (a script that never said hello, so no peer of the
    // hub) gets its answer too: the hub holds its response topic for a
    // while before publishing its ping.
    let r = send(
        "jis:site-b:lock",
        &hub,
        "jis:site-a:script",
        free_udp_port(),
        true,
    )
    .expect("the one-off sender is answered across sites");
    assert_eq!(r["responder_did"], "jis:site-b:lock", "{r}");
    assert_eq!(
        sample(hub_metrics, "tibet_mqtt_origins_subscribed_total"),
        1.0
    );

    // An unknown sender is dropped (ROOD): the hub relays only for senders
    // it would not drop itself (docs/SECURITY.md), so it never reaches MQTT.
    let r = send(
        "jis:site-b:lock",
        &hub,
        "jis:site-x:intruder",
        phone_port,
        true,
    );
    assert!(r.is_none(), "{r:?}");
    until(
        hub_metrics,
        "tibet_drops_total{reason=\"relay_sender_rood\"}",
        1.0,
    );

    // The broker is killed and restarted on the same port: both sites
    // reconnect, subscribe again, and deliver again.
    drop(broker);
    let broker = Broker::start(&bin, dir.path(), port);
    until(hub_metrics, "tibet_mqtt_reconnects_total", 1.0);
    until(lock_metrics, "tibet_mqtt_reconnects_total", 1.0);
    until(hub_metrics, "tibet_mqtt_subscribed_total", 8.0);
    until(lock_metrics, "tibet_mqtt_subscribed_total", 4.0);
    let r = send(
        "jis:site-b:lock",
        &hub,
        "jis:site-a:phone",
        phone_port,
        true,
    )
    .expect("answered after the broker restarted");
    assert_eq!(r["responder_did"], "jis:site-b:lock", "{r}");
    assert!(sample(hub_metrics, "tibet_mqtt_broker_down_total") >= 1.0);

    let lines = lock.terminate_and_collect();
    assert!(
        lines.iter().any(|l| l.contains("jis:site-a:phone")),
        "{lines:?}"
    );
    assert!(hub.terminate().success());
    drop(broker);
}

#[test]
fn a_site_reaches_a_broker_given_by_an_ipv6_literal() {
    let Some(bin) = Broker::binary() else {
        eprintln!("mosquitto not installed (apt-get install mosquitto): test skipped");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let _broker = Broker::start_on(&bin, dir.path(), "::1", port);
    let metrics = free_tcp_port();
    let mqtt = format!("mqtt://[::1]:{port}");
    let _site = Listener::loopback_hub(
        "jis:site-v6:hub",
        &[],
        &[
            "--mqtt",
            &mqtt,
            "--metrics",
            &format!("127.0.0.1:{metrics}"),
        ],
    );
    // Subscribed to its own DID's topics: connected over IPv6.
    until(metrics, "tibet_mqtt_subscribed_total", 2.0);
}

/// A site whose config file names the broker's CA and its own client
/// certificate (paths beside the file) reaches a broker that admits only
/// clients with a certificate of its CA: `ca_file` turns TLS on for the
/// `mqtt://` URL, and the certificate and its key are presented.
#[test]
fn a_site_with_a_client_certificate_in_its_config_reaches_a_broker_that_requires_one() {
    let Some((broker, files)) = tibet_testkit::mqtt::Broker::launch_tls() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (from, to) in [
        (&files.ca, "ca.pem"),
        (&files.client_cert, "hub.pem"),
        (&files.client_key, "hub.key"),
    ] {
        std::fs::copy(from, dir.path().join(to)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    let key = std::fs::Permissions::from_mode(0o600);
    std::fs::set_permissions(dir.path().join("hub.key"), key).unwrap();
    let cfg = dir.path().join("site.toml");
    std::fs::write(
        &cfg,
        format!(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\nca_file = \"ca.pem\"\n\
             cert_file = \"hub.pem\"\nkey_file = \"hub.key\"\n",
            broker.port()
        ),
    )
    .unwrap();
    let metrics = free_tcp_port();
    let _site = Listener::loopback_hub(
        "jis:site-a:hub",
        &[],
        &[
            "--config",
            cfg.to_str().unwrap(),
            "--metrics",
            &format!("127.0.0.1:{metrics}"),
        ],
    );
    // Subscribed to its own DID's topics: the broker let it in.
    until(metrics, "tibet_mqtt_subscribed_total", 2.0);
}
