//! A request socket: the caller reads its answers itself (the driver never
//! sees them), a peer that learnt its address is answered from it, and
//! failures, timeouts, cancellation and stop still end every request: over
//! real sockets on 127.0.0.1, the descriptor watched by a tokio reactor as
//! an event loop would watch it.

use std::sync::mpsc;
use std::thread::ThreadId;
use std::time::Duration;

use std::os::fd::AsFd;
use tibet_iot::{
    Answer, Completion, IoTNode, RequestSocket, SendError, SendOptions, TransportConfig,
};

use tibet_ping::PingDecision;
use tokio::io::Interest;

async fn pair() -> (IoTNode, IoTNode) {
    let hub = IoTNode::new("jis:home:hub", TransportConfig::loopback());
    let sensor = IoTNode::new("jis:home:sensor", TransportConfig::loopback());
    sensor.set_trust("jis:home:hub", 0.9);
    hub.start().await.unwrap();
    sensor.start().await.unwrap();
    (hub, sensor)
}

/// A completion that reports the answer and the thread it ran on.
fn completion() -> (Completion, mpsc::Receiver<(Answer, ThreadId)>) {
    let (tx, rx) = mpsc::channel();
    let done: Completion = Box::new(move |a| {
        let _ = tx.send((a, std::thread::current().id()));
    });
    (done, rx)
}

/// A request socket and a reactor's watch on its descriptor (a duplicate).
struct Watched {
    sock: RequestSocket,
    fd: tokio::net::UdpSocket,
}

impl Watched {
    fn new(sock: RequestSocket) -> Self {
        let dup = std::net::UdpSocket::from(sock.as_fd().try_clone_to_owned().unwrap());
        let fd = tokio::net::UdpSocket::from_std(dup).unwrap();
        Watched { sock, fd }
    }

    /// Waits until the descriptor is readable (or has an error), then polls.
    async fn poll_when_readable(&mut self) {
        // One interest at a time: tokio waits for nothing on a combined one.
        let interest = tokio::select! {
            r = self.fd.ready(Interest::READABLE) => r.map(|_| Interest::READABLE),
            r = self.fd.ready(Interest::ERROR) => r.map(|_| Interest::ERROR),
        }
        .unwrap();
        let sock = &mut self.sock;
        let _ = self.fd.try_io(interest, || {
            sock.poll();
            Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
        });
    }

    /// Polls whenever readable until `rx` has the answer.
    async fn poll_until(&mut self, rx: &mpsc::Receiver<(Answer, ThreadId)>) -> (Answer, ThreadId) {
        loop {
            if let Ok(got) = rx.try_recv() {
                return got;
            }
            self.poll_when_readable().await;
        }
    }
}

fn ping(
    sock: &RequestSocket,
    target: &str,
    to: std::net::SocketAddr,
    options: SendOptions,
) -> mpsc::Receiver<(Answer, ThreadId)> {
    let (done, rx) = completion();
    sock.send_ping(target, to, "temperature.read", "now", options, done)
        .unwrap();
    rx
}

#[tokio::test(flavor = "current_thread")]
async fn answers_are_read_and_completed_on_the_polling_thread() {
    let (hub, sensor) = pair().await;
    let to = sensor.local_addr().unwrap();
    let mut sock = Watched::new(hub.request_socket().unwrap());
    let from = sock.sock.local_addr().unwrap();
    assert_ne!(from, hub.local_addr().unwrap());
    let before = hub.stats().engine.datagrams_in;
    for _ in 0..20 {
        let rx = ping(&sock.sock, "jis:home:sensor", to, SendOptions::default());
        let (answer, thread) = sock.poll_until(&rx).await;
        let answer = answer.unwrap().expect("answered");
        assert_eq!(answer.decision, PingDecision::Accept);
        assert_eq!(answer.responder_did, "jis:home:sensor");
        assert_eq!(thread, std::thread::current().id(), "completed by the poll");
    }
    let stats = hub.stats();
    assert_eq!(
        stats.engine.datagrams_in - before,
        20,
        "the engine saw each answer once"
    );
    assert_eq!(stats.engine.responses_matched, 20);
    assert_eq!(stats.pending_requests, 0);
    // The answer proved the sensor's address, as through the driver.
    let peer = hub
        .peers()
        .into_iter()
        .find(|p| p.did == "jis:home:sensor")
        .unwrap();
    assert!(peer.proven);
    assert_eq!(peer.address, to);
    // The sensor saw the requests come from the request socket.
    let seen = sensor
        .peers()
        .into_iter()
        .find(|p| p.did == "jis:home:hub")
        .unwrap();
    assert_eq!(seen.address, from);
    hub.stop().await;
    sensor.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_peer_that_learnt_the_request_sockets_address_is_answered_from_it() {
    let (hub, sensor) = pair().await;
    hub.set_trust("jis:home:sensor", 0.9);
    let mut sock = Watched::new(hub.request_socket().unwrap());
    let from = sock.sock.local_addr().unwrap();
    // The sensor pings the address the hub's requests come from; the
    // caller's polls are the only reader there.
    let asked = sensor.send_ping(
        "jis:home:hub",
        from,
        "status",
        "check",
        SendOptions::default(),
    );
    let polled = async {
        loop {
            sock.poll_when_readable().await;
        }
    };
    let answer = tokio::select! {
        a = asked => a.unwrap().expect("answered from the address it asked"),
        () = polled => unreachable!(),
    };
    assert_eq!(answer.decision, PingDecision::Accept);
    assert_eq!(answer.responder_did, "jis:home:hub");
    assert_eq!(sensor.stats().engine.responses_foreign, 0);
    hub.stop().await;
    sensor.stop().await;
}

// The driver on a thread of its own: a timeout completes there.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_closed_port_fails_fast_and_a_silent_one_times_out() {
    let (hub, sensor) = pair().await;
    let mut sock = Watched::new(hub.request_socket().unwrap());
    let closed = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let rx = ping(&sock.sock, "jis:home:x", closed, SendOptions::default());
    let (answer, thread) = sock.poll_until(&rx).await;
    assert!(
        matches!(answer, Err(SendError::Unreachable { .. })),
        "{answer:?}"
    );
    assert_eq!(thread, std::thread::current().id());

    // No answer: the driver ends it at its deadline, without a poll.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let options = SendOptions {
        timeout: Some(Duration::from_millis(100)),
        ..SendOptions::default()
    };
    let rx = ping(
        &sock.sock,
        "jis:home:x",
        silent.local_addr().unwrap(),
        options,
    );
    let (answer, thread) = tokio::task::spawn_blocking(move || rx.recv().unwrap())
        .await
        .unwrap();
    assert!(matches!(answer, Ok(None)), "{answer:?}");
    assert_ne!(thread, std::thread::current().id());
    hub.stop().await;
    sensor.stop().await;
}

#[tokio::test(flavor = "current_thread")]
async fn cancel_forgets_and_stop_ends_what_is_left() {
    let (hub, sensor) = pair().await;
    let sock = hub.request_socket().unwrap();
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = silent.local_addr().unwrap();
    let (done, cancelled) = completion();
    let id = sock
        .send_ping("jis:home:x", to, "a", "b", SendOptions::default(), done)
        .unwrap();
    let waiting = ping(&sock, "jis:home:x", to, SendOptions::default());
    assert_eq!(hub.stats().pending_requests, 2);
    sock.cancel(id);
    assert_eq!(hub.stats().pending_requests, 1);
    hub.stop().await;
    let (answer, _) = waiting.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(matches!(answer, Err(SendError::Stopped)), "{answer:?}");
    // The cancelled one's completion was dropped uncalled.
    assert!(matches!(
        cancelled.try_recv(),
        Err(mpsc::TryRecvError::Disconnected)
    ));
    // A stopped node refuses new requests, and its socket reads and drops.
    let (done, _rx) = completion();
    let refused = sock.send_ping("jis:home:x", to, "a", "b", SendOptions::default(), done);
    assert!(matches!(refused, Err(SendError::NotRunning)));
    sensor.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spinning_sees_the_answer_arrive_and_gives_up_at_its_budget() {
    let (hub, sensor) = pair().await;
    let to = sensor.local_addr().unwrap();
    let mut sock = hub.request_socket().unwrap();
    // Nothing was sent: the spin ends at its budget, with nothing to poll.
    let started = std::time::Instant::now();
    let budget = Duration::from_millis(5);
    assert!(!tokio::task::block_in_place(
        || sock.spin_until_readable(budget)
    ));
    assert!(started.elapsed() >= budget);
    // A ping: the spin returns once the answer waits on the socket (the
    // sensor's driver answers on another worker), and one poll completes it.
    let rx = ping(&sock, "jis:home:sensor", to, SendOptions::default());
    assert!(tokio::task::block_in_place(
        || sock.spin_until_readable(Duration::from_secs(5))
    ));
    assert_eq!(sock.poll(), 1, "the answer, read by the poll");
    let (answer, _) = rx.try_recv().expect("completed by that poll");
    assert_eq!(
        answer.unwrap().expect("answered").responder_did,
        "jis:home:sensor"
    );
}
