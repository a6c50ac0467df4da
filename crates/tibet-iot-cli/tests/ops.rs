//! Operations: the metrics endpoint scraped over real HTTP, and the systemd
//! notifications of `listen` received on a real notify socket.

mod common;

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Listener, assert_code, bin, loopback_args, run, stderr};

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value of the sample line starting with `series ` (exact series).
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.parse().ok())
}

/// Without `--audit` no audit sink is installed (the engine builds no audit
/// records); the ping counters and the processing histogram come from the
/// engine's own stats all the same.
#[test]
fn metrics_count_pings_without_an_audit_file() {
    let port = free_tcp_port();
    let metrics = format!("127.0.0.1:{port}");
    let hub = Listener::loopback_hub(
        "jis:home:hub",
        &["jis:home:phone=0.9"],
        &["--metrics", &metrics],
    );
    assert_code(&hub.send("light.on", "jis:home:phone", &[]), 0);
    assert_code(&hub.send("light.off", "jis:home:phone", &[]), 0);
    let page = ureq::get(&format!("http://{metrics}/metrics"))
        .call()
        .expect("scrape")
        .into_string()
        .unwrap();
    assert_eq!(
        sample(
            &page,
            "tibet_pings_total{zone=\"GROEN\",decision=\"accept\"}"
        ),
        Some(2.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, "tibet_ping_processing_seconds_count"),
        Some(2.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, "tibet_audit_tokens_written_total"),
        Some(0.0),
        "{page}"
    );
}

#[test]
fn metrics_are_served_over_http_and_count_decisions() {
    let port = free_tcp_port();
    let metrics = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let hub = Listener::loopback_hub(
        "jis:home:hub",
        &["jis:home:phone=0.9", "jis:home:guest=0.5"],
        &["--metrics", &metrics, "--audit", audit.to_str().unwrap()],
    );
    assert_code(&hub.send("light.on", "jis:home:phone", &[]), 0);
    assert_code(&hub.send("door.unlock", "jis:home:guest", &[]), 2);
    assert_code(
        &hub.send("door.unlock", "jis:home:stranger", &["--timeout", "1"]),
        3,
    );

    // Prometheus asks for OpenMetrics.
    let url = format!("http://{metrics}/metrics");
    let response = ureq::get(&url)
        .set(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        )
        .call()
        .expect("scrape");
    assert_eq!(response.status(), 200);
    assert!(
        response
            .header("Content-Type")
            .unwrap_or_default()
            .starts_with("application/openmetrics-text"),
    );
    let openmetrics = response.into_string().unwrap();
    assert!(openmetrics.ends_with("# EOF\n"), "{openmetrics}");
    assert!(openmetrics.contains("# TYPE tibet_pings counter\n"));
    // Other clients get the classic text format.
    let response = ureq::get(&url).call().expect("scrape");
    assert!(
        response
            .header("Content-Type")
            .unwrap_or_default()
            .starts_with("text/plain; version=0.0.4"),
    );
    let page = response.into_string().unwrap();
    assert!(
        page.contains("# TYPE tibet_pings_total counter\n"),
        "{page}"
    );
    let pings = |zone: &str, decision: &str| {
        sample(
            &page,
            &format!("tibet_pings_total{{zone=\"{zone}\",decision=\"{decision}\"}}"),
        )
    };
    assert_eq!(pings("GROEN", "accept"), Some(1.0), "{page}");
    assert_eq!(pings("GEEL", "pending"), Some(1.0), "{page}");
    assert_eq!(pings("ROOD", "reject"), Some(1.0), "{page}");
    assert_eq!(
        sample(&page, "tibet_drops_total{reason=\"airlock_rood\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&page, "tibet_pending_reviews"), Some(1.0), "{page}");
    // One token per answered ping, none lost; the ROOD drop goes into the
    // aggregated `drops` token of its interval (docs/SECURITY.md). The
    // engine times every decided ping, the dropped one too.
    let written = sample(&page, "tibet_audit_tokens_written_total").unwrap();
    assert!(written >= 2.0, "{page}");
    assert_eq!(sample(&page, "tibet_audit_tokens_failed_total"), Some(0.0));
    assert_eq!(
        sample(&page, "tibet_ping_processing_seconds_count"),
        Some(3.0),
        "{page}"
    );

    // Anything but GET /metrics is refused.
    match ureq::get(&format!("http://{metrics}/")).call() {
        Err(ureq::Error::Status(404, _)) => {}
        other => panic!("expected 404, got {other:?}"),
    }

    // promtool (Debian package `prometheus`) accepts the page where present.
    if let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(page.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("promtool not installed: format check skipped");
    }
}

#[test]
fn a_bad_metrics_address_is_one_line_and_exit_1() {
    for addr in ["nope", "192.0.2.1:9"] {
        let out = run(&[
            "listen",
            "--did",
            "jis:home:hub",
            "--trust",
            "jis:home:phone=0.9",
            "--port",
            "0",
            "--no-discovery",
            "--metrics",
            addr,
        ]);
        assert_code(&out, 1);
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(addr), "{err}");
    }
}

/// Reads notify datagrams until one contains `needle` (10 s at most).
fn expect_notify(sock: &UnixDatagram, needle: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            seen.push(msg.clone());
            if msg.lines().any(|l| l == needle) {
                return;
            }
        }
    }
    panic!("no {needle} notification; got {seen:?}");
}

#[test]
fn listen_notifies_systemd_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut child = bin()
        .args([
            "listen",
            "--did",
            "jis:home:hub",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--no-discovery",
        ])
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "100000")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    expect_notify(&sock, "READY=1", &mut seen);
    assert!(
        seen.iter().all(|m| !m.contains("WATCHDOG=1")),
        "watchdog before ready: {seen:?}"
    );
    expect_notify(&sock, "WATCHDOG=1", &mut seen);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    expect_notify(&sock, "STOPPING=1", &mut seen);
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn systemd_analyze_verifies_the_shipped_unit() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze not installed: unit check skipped");
        return;
    }
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../packaging/tibet-iot.service"
    ))
    .unwrap();
    assert!(unit.contains("Type=notify"));
    // verify needs ExecStart's binary to exist: point it at the built one.
    let unit = unit.replace("/usr/local/bin/tibet-iot", env!("CARGO_BIN_EXE_tibet-iot"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tibet-iot.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // verify exits 0 even for directives it ignores; those lines name the file.
    assert!(!err.contains("tibet-iot.service"), "{err}");
}

#[test]
fn a_bad_mqtt_url_or_credentials_file_is_one_line_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-credentials");
    let missing = missing.to_str().unwrap();
    for (extra, needle) in [
        (vec!["--mqtt", "broker.lan:1883"], "bad MQTT URL"),
        (vec!["--mqtt", "mqtt://broker.lan:port"], "bad MQTT URL"),
        (
            vec![
                "--mqtt",
                "mqtt://127.0.0.1:1883",
                "--mqtt-credentials",
                missing,
            ],
            "cannot read MQTT credentials file",
        ),
    ] {
        let mut args = vec![
            "listen",
            "--did",
            "jis:site-a:hub",
            "--trust",
            "jis:site-a:phone=0.9",
            "--port",
            "0",
            "--no-discovery",
        ];
        args.extend(extra);
        let out = run(&args);
        assert_code(&out, 1);
        let err = stderr(&out);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn the_config_file_sets_metrics_and_checks_mqtt() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "did = \"jis:site-a:hub\"\nbind = \"127.0.0.1\"\nport = 0\n[discovery]\nenabled = false\n\
             [trust]\n\"jis:site-a:phone\" = 0.9\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    let hub = Listener::start(&["--config", config.to_str().unwrap()]);
    let page = ureq::get(&format!("http://127.0.0.1:{port}/metrics"))
        .call()
        .expect("scrape")
        .into_string()
        .unwrap();
    assert!(page.contains("tibet_peers 0"), "{page}");
    drop(hub);

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "did = \"jis:site-a:hub\"\n[trust]\n\"jis:site-a:phone\" = 0.9\n[mqtt]\nurl = \"tcp://broker\"\n",
    )
    .unwrap();
    let out = run(&["listen", "--config", bad.to_str().unwrap(), "--port", "0"]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("bad MQTT URL"), "{err}");

    // TLS files are found beside the config file, not in the working
    // directory; a client key that others may read stops the start.
    let tls = dir.path().join("tls.toml");
    std::fs::write(
        &tls,
        "did = \"jis:site-a:hub\"\n[trust]\n\"jis:site-a:phone\" = 0.9\n[mqtt]\n\
         url = \"mqtts://127.0.0.1:1\"\nca_file = \"ca.pem\"\ncert_file = \"hub.pem\"\nkey_file = \"hub.key\"\n",
    )
    .unwrap();
    for name in ["ca.pem", "hub.pem", "hub.key"] {
        std::fs::write(dir.path().join(name), "-----BEGIN PEM-----\n").unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    let key = dir.path().join("hub.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(&["listen", "--config", tls.to_str().unwrap(), "--port", "0"]);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!(
            "MQTT client key file {} is readable",
            key.display()
        )),
        "{err}"
    );
}

#[test]
fn logs_on_a_pipe_have_levels_and_no_colours() {
    // A broker that is down is a logged warning and a retry, never an exit:
    // the listener keeps running and says so with a level, no colours.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let mqtt = format!("mqtt://127.0.0.1:{}", free_tcp_port());
    let hub = Listener::start_with(
        &[
            "--did",
            "jis:site-a:hub",
            "--trust",
            "jis:site-a:phone=0.9",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--no-discovery",
            "--mqtt",
            &mqtt,
        ],
        &[],
        Some(&log),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        let err = std::fs::read_to_string(&log).unwrap_or_default();
        if err.contains("unreachable") || Instant::now() > deadline {
            break err;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(err.contains(" WARN "), "{err}");
    assert!(err.contains("unreachable"), "{err}");
    assert!(!err.contains('\x1b'), "{err:?}");
    assert!(hub.terminate().success(), "still running, stops cleanly");
}

/// 16 slow clients hold every slot of `--metrics`; the 3,000 connections
/// that follow, paced over 2.25 s, are each refused (closed), and the log
/// says so at most once a second, each line with a count.
#[test]
fn refused_metrics_connections_are_logged_at_most_once_a_second() {
    use std::io::Read;
    use std::net::TcpStream;

    let port = free_tcp_port();
    let metrics = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr");
    let hub = Listener::start_with(
        &loopback_args("jis:home:hub", &[], &["--metrics", &metrics]),
        &[],
        Some(&log),
    );
    // Slow clients: connected, saying nothing (the server waits 5 s).
    let slow: Vec<TcpStream> = (0..16)
        .map(|_| TcpStream::connect(&metrics).unwrap())
        .collect();
    let started = Instant::now();
    let mut refused = 0u64;
    while refused < 3000 && started.elapsed() < Duration::from_secs(4) {
        // The load's pace: one connection every 0.75 ms.
        let due = started + Duration::from_micros(750 * refused);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let mut s = TcpStream::connect(&metrics).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        // Refused: closed at once, without a byte.
        match s.read(&mut [0u8; 64]) {
            Ok(0) => refused += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => refused += 1,
            other => panic!("a connection beyond the slots was served: {other:?}"),
        }
    }
    let burst = started.elapsed();
    drop(slow);
    assert!(refused >= 100, "only {refused} connections in {burst:?}");
    // Every refusal is counted (a scrape made before the slow clients'
    // slots are free is refused too).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut attempts = 0;
    let counted = loop {
        attempts += 1;
        let page = ureq::get(&format!("http://{metrics}/metrics"))
            .call()
            .ok()
            .and_then(|r| r.into_string().ok());
        if let Some(v) = page.and_then(|p| sample(&p, "tibet_metrics_scrapes_refused_total")) {
            break v as u64;
        }
        assert!(Instant::now() < deadline, "no scrape");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        (refused..refused + attempts).contains(&counted),
        "{counted} counted, {refused} refused"
    );
    assert!(hub.terminate().success());
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("metrics: too many clients"))
        .collect();
    let most = burst.as_secs() + 1;
    assert!(
        lines.len() >= 2 && lines.len() as u64 <= most,
        "{} lines for {refused} refusals in {burst:?}: {:?}",
        lines.len(),
        &lines[..lines.len().min(5)]
    );
    // The counts add up to the refusals, less those after the last line.
    let counts: u64 = lines
        .iter()
        .filter_map(|l| {
            let (head, _) = l.split_once(" connection(s) closed since the last line")?;
            head.rsplit(' ').next()?.parse::<u64>().ok()
        })
        .sum();
    assert!(counts >= 1 && counts <= refused, "{counts} of {refused}");
}
