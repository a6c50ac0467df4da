//! Helpers shared by the CLI integration tests: run the built binary, and
//! keep `listen` processes alive until the test ends (killed on drop).

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The `tibet-iot` binary built for these tests. Each command gets a state
/// home of its own (node keys, replay horizons, locks) under the target
/// directory, so tests never share state; a test that restarts a node
/// passes `--state DIR` itself.
pub fn bin() -> Command {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let home = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("state-homes")
        .join(format!("{}-{n}", std::process::id()));
    let mut c = Command::new(env!("CARGO_BIN_EXE_tibet-iot"));
    c.env_remove("RUST_LOG")
        .env_remove("STATE_DIRECTORY")
        .env("XDG_STATE_HOME", home);
    c
}

/// Runs the binary with `args` and waits for it.
pub fn run(args: &[&str]) -> Output {
    bin()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run tibet-iot")
}

/// Runs `send TARGET ADDR INTENT --my-did MY_DID` followed by `extra`.
pub fn send(target: &str, addr: &str, intent: &str, my_did: &str, extra: &[&str]) -> Output {
    let mut args = vec!["send", target, addr, intent, "--my-did", my_did];
    args.extend(extra);
    run(&args)
}

/// Asserts the exit status is `code`, showing stdout and stderr if not.
#[track_caller]
pub fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}{}",
        stdout(out),
        stderr(out)
    );
}

/// Asserts stdout starts with `prefix`, showing it if not.
#[track_caller]
pub fn assert_stdout_starts(out: &Output, prefix: &str) {
    let text = stdout(out);
    assert!(text.starts_with(prefix), "{text:?} lacks prefix {prefix:?}");
}

/// stdout parsed as one JSON value.
pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(stdout(out).trim()).expect("one JSON value on stdout")
}

/// Flags binding 127.0.0.1 (ephemeral port) with discovery by multicast on
/// loopback only, on the private `discovery_port`.
pub fn multicast_loopback(discovery_port: &str) -> Vec<&str> {
    vec![
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--multicast-if",
        "127.0.0.1",
        "--discovery-port",
        discovery_port,
    ]
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The flags of a listener named `did` on 127.0.0.1 (ephemeral port, no
/// discovery) that trusts each `DID=SCORE` in `trust`, then `extra`.
pub fn loopback_args<'a>(did: &'a str, trust: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "--did",
        did,
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--no-discovery",
    ];
    for t in trust {
        args.extend(["--trust", t]);
    }
    args.extend(extra);
    args
}

/// A running `tibet-iot listen`; killed when dropped.
pub struct Listener {
    child: Child,
    /// The bound address from the "listening on ADDR as DID" line.
    pub addr: SocketAddr,
    /// The DID from that line.
    pub did: String,
    /// Further stdout lines.
    pub lines: mpsc::Receiver<String>,
}

impl Listener {
    /// Starts `listen` with `args` and waits (up to 20 s) for its
    /// "listening on" line.
    pub fn start(args: &[&str]) -> Listener {
        Listener::start_with(args, &[], None)
    }

    /// Like [`Listener::start`], with extra environment variables `env`,
    /// and stderr written to `stderr_file` when given (else shown in the
    /// test's output). Global flags (`-v`, `--log-format`) may lead `args`.
    pub fn start_with(
        args: &[&str],
        env: &[(&str, &str)],
        stderr_file: Option<&std::path::Path>,
    ) -> Listener {
        let mut cmd = bin();
        cmd.arg("listen")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        match stderr_file {
            Some(path) => cmd.stderr(std::fs::File::create(path).expect("stderr file")),
            None => cmd.stderr(Stdio::piped()),
        };
        let mut child = cmd.spawn().expect("spawn listen");
        let (tx, rx) = mpsc::channel();
        pump(child.stdout.take().expect("stdout"), tx);
        if let Some(stderr) = child.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("[listen stderr] {line}");
                }
            });
        }
        let (addr, did) = loop {
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(line) => {
                    if let Some(found) = listening(&line) {
                        break found;
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    panic!(
                        "listen did not report its address: {e}; status {:?}",
                        child.try_wait()
                    );
                }
            }
        };
        Listener {
            child,
            addr,
            did,
            lines: rx,
        }
    }

    /// Starts a listener named `did` on 127.0.0.1 (ephemeral port, no
    /// discovery) that trusts each `DID=SCORE` in `trust`; `extra` flags
    /// follow.
    pub fn loopback_hub(did: &str, trust: &[&str], extra: &[&str]) -> Listener {
        Listener::start(&loopback_args(did, trust, extra))
    }

    /// Starts `listen --config` on a copy of `examples/hub.toml` with `HOME`
    /// at `home`, kept on loopback (the example binds every interface for a
    /// LAN) with an ephemeral port and a free discovery port.
    pub fn hub_example(
        cfg: &std::path::Path,
        home: &std::path::Path,
        stderr_file: Option<&std::path::Path>,
    ) -> Listener {
        let disc = free_udp_port().to_string();
        Listener::start_with(
            &[
                "--config",
                cfg.to_str().unwrap(),
                "--bind",
                "127.0.0.1",
                "--multicast-if",
                "127.0.0.1",
                "--port",
                "0",
                "--discovery-port",
                &disc,
            ],
            &[("HOME", home.to_str().unwrap())],
            stderr_file,
        )
    }

    /// Runs `send` to this listener (its DID at its loopback address):
    /// `INTENT --my-did MY_DID` followed by `extra`.
    pub fn send(&self, intent: &str, my_did: &str, extra: &[&str]) -> Output {
        send(&self.did, &self.loopback(), intent, my_did, extra)
    }

    /// `127.0.0.1:PORT` of this listener.
    pub fn loopback(&self) -> String {
        format!("127.0.0.1:{}", self.addr.port())
    }

    /// Waits (up to 10 s) for a stdout line containing `needle`.
    pub fn wait_for_line(&self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(10)) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line containing {needle:?}: {e}"),
            }
        }
    }

    /// Waits (up to 10 s) for the next stdout line.
    pub fn next_line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .expect("a stdout line")
    }

    /// Sends SIGTERM, asserts a clean exit, and returns the stdout lines
    /// not read yet (all of them: the pipe closes when the process ends).
    pub fn terminate_and_collect(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let status = self.child.wait().expect("wait listen");
        assert!(status.success(), "{status:?}");
        let mut lines = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            lines.push(line);
        }
        lines
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(self) -> std::process::ExitStatus {
        self.signal("-TERM")
    }

    /// Sends `sig` (e.g. `-INT`) and waits for the exit status.
    pub fn signal(mut self, sig: &str) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill");
        self.child.wait().expect("wait listen")
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address and DID of a "listening on ADDR as DID" line, or of its
/// JSON form (`{"event": "listening", "addr": ..., "did": ...}`).
fn listening(line: &str) -> Option<(SocketAddr, String)> {
    if let Some(rest) = line.strip_prefix("listening on ") {
        let (addr, did) = rest.split_once(" as ").expect("ADDR as DID");
        return Some((addr.parse().expect("listening address"), did.to_owned()));
    }
    let v = serde_json::from_str::<serde_json::Value>(line).ok()?;
    if v["event"] != "listening" {
        return None;
    }
    let addr = v["addr"].as_str().expect("addr");
    let did = v["did"].as_str().expect("did");
    Some((addr.parse().expect("listening address"), did.to_owned()))
}

fn pump(out: ChildStdout, tx: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
}

// Not every test binary uses it.
#[allow(unused_imports)]
pub use tibet_testkit::free_udp_port;

/// A protocol core speaking as `did` (unsigned), for tests that craft
/// datagrams by hand.
pub fn crafter(did: &str, seed: u64) -> tibet_ping::PingNode {
    use rand::SeedableRng;
    tibet_ping::PingNode::new(
        did,
        tibet_ping::PingNodeConfig::default(),
        Box::new(rand::rngs::StdRng::seed_from_u64(seed)),
    )
}

/// A fresh ping from `node` to `target` asking `intent`, encoded as JSON.
pub fn ping_bytes(node: &mut tibet_ping::PingNode, target: &str, intent: &str) -> Vec<u8> {
    let p = node.ping(
        tibet_ping::Timestamp::now(),
        target,
        intent,
        "test",
        tibet_ping::PingOptions::default(),
    );
    tibet_ping::PacketCodec::json().encode_packet(&p).unwrap()
}

/// The packet id of an encoded ping.
pub fn packet_id(datagram: &[u8]) -> String {
    match tibet_ping::PacketCodec::json().decode(datagram) {
        Ok(tibet_ping::Frame::Packet(p)) => p.packet_id,
        other => panic!("not a ping: {other:?}"),
    }
}

/// The packet id an encoded answer answers.
pub fn response_to(datagram: &[u8]) -> String {
    match tibet_ping::PacketCodec::json().decode(datagram) {
        Ok(tibet_ping::Frame::Response(r)) => r.in_response_to,
        other => panic!("not an answer: {other:?}"),
    }
}

/// Runs `discover` as `did`, signing its beacon with the key file `key`,
/// over multicast on loopback on `discovery_port` (a device that announces
/// itself with its key), for `timeout` seconds.
pub fn announce_with_key(
    did: &str,
    key: &std::path::Path,
    discovery_port: &str,
    timeout: &str,
) -> Output {
    run(&[
        "discover",
        "--timeout",
        timeout,
        "--did",
        did,
        "--key",
        key.to_str().unwrap(),
        "--multicast-if",
        "127.0.0.1",
        "--discovery-port",
        discovery_port,
    ])
}

/// A copy of `examples/hub.toml` in `dir`.
pub fn hub_toml_copy(dir: &std::path::Path) -> std::path::PathBuf {
    let cfg = dir.join("hub.toml");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/hub.toml"),
        &cfg,
    )
    .unwrap();
    cfg
}
