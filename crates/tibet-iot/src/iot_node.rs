//! [`IoTNode`]: the tokio driver around the [`Engine`].
//!
//! One task owns the sockets and drives the engine: it waits on the
//! transport socket, the discovery socket, the engine's next deadline, a
//! wake-up from API calls and the shutdown signal; then it handles at most a
//! bounded batch of datagrams, always runs the due timers, and flushes what
//! the engine wants sent. API calls lock the engine briefly (as quinn's
//! endpoint handles do), queue their work, and wake the task. Audit records
//! go to the audit worker thread (see `audit_worker.rs`), never to the
//! sink directly.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tibet_ping::{JsonMap, PingResponse, Timestamp};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use tibet_iot_proto::{
    AuditOverload, Engine, Event, MonoTime, NodeStats, Now, PeerRecord, RequestId, SendError,
    SendOptions, TransportConfig, Uplink,
};

use crate::audit_sink::AuditSink;
use crate::audit_worker::{self, AuditWorker, Progress};
use crate::batch::{self};
use crate::direct_send::DirectSend;
use crate::driver_loop::{Groups, drive};
use crate::error::StartError;
use crate::replay_horizon::{HorizonKeeper, StateDir, crash_horizon};
use crate::request_socket::RequestSocket;
use crate::socket;
use crate::state_keeper::{Changes, KeptStore};
use crate::state_store::{Decision, StateStore, StoreError};

/// Datagrams handled per socket per wake-up, so timers and commands run
/// between batches even under a flood (one `recvmmsg` on the transport
/// socket).
pub(crate) const RECV_BATCH: usize = batch::BATCH;
/// Capacity of the event channel; slow subscribers see `Lagged`.
const EVENT_CHANNEL: usize = 4096;

/// What a request ends with: the answer, `None` at the deadline, or why it
/// failed.
pub type Answer = Result<Option<PingResponse>, SendError>;

/// Called once with a request's [`Answer`], on the thread that learns it
/// (the driver's, or the one polling a [`RequestSocket`](crate::RequestSocket)),
/// with the engine locked: it must be short and must not call the node.
pub type Completion = Box<dyn FnOnce(Answer) + Send>;

/// Where a caller waits for its [`Answer`].
pub(crate) enum Waiter {
    /// An awaiting task.
    Channel(oneshot::Sender<Answer>),
    /// A completion to call.
    Call(Completion),
}

impl Waiter {
    fn finish(self, answer: Answer) {
        match self {
            Waiter::Channel(tx) => {
                let _ = tx.send(answer);
            }
            Waiter::Call(done) => done(answer),
        }
    }
}

pub(crate) struct State {
    pub(crate) engine: Engine,
    pub(crate) waiters: HashMap<RequestId, Waiter>,
    pub(crate) running: bool,
    pub(crate) audit: Option<AuditWorker>,
    /// Where uplink frames go (docs/FLEETS.md), while one is open.
    pub(crate) uplink: Option<mpsc::Sender<Uplink>>,
    /// The state directory ([`IoTNode::set_state_dir`]).
    pub(crate) state_dir: Option<PathBuf>,
    /// Trust set while the node was stopped: the configuration's, which a
    /// stored decision overrides only while it is unchanged.
    pub(crate) declared: HashMap<String, f64>,
    /// The driver's socket for requests sent from the caller's thread,
    /// while the driver runs.
    pub(crate) direct: Option<DirectSend>,
}

impl State {
    /// Hands the engine's audit records to the worker (cheap: a queue push).
    pub(crate) fn drain_audit(&mut self, dropped: &AtomicU64) {
        if let Some(worker) = self.audit.as_mut() {
            worker.take_from(&mut self.engine, dropped);
        }
    }

    /// Whether the driver must read nothing now because the audit path is
    /// behind (audit_worker.rs): the worker is congested, or the engine's
    /// queue lacks room for a receive batch's records (two per datagram).
    pub(crate) fn audit_congested(&mut self, now: Instant) -> bool {
        let Some(worker) = self.audit.as_mut() else {
            return false;
        };
        let audit = &self.engine.config().audit;
        let blocking = audit.on_overload == AuditOverload::Block;
        // A queue smaller than a batch's worth is read into when empty (the
        // engine then refuses the answers whose records do not fit).
        let need = (2 * RECV_BATCH + 64).min(audit.capacity.max(1));
        worker.congested(now) || (blocking && self.engine.audit_room() < need)
    }

    /// Hands the engine's events out: answers, timeouts and failures of
    /// requests to their waiters, everything to the subscribers.
    pub(crate) fn dispatch_events(&mut self, events: &broadcast::Sender<Event>) {
        while let Some(ev) = self.engine.poll_event() {
            match ev {
                Event::RequestAnswered { id, response } => {
                    let waiter = self.waiters.remove(&id);
                    if events.receiver_count() > 0 {
                        let _ = events.send(Event::RequestAnswered {
                            id,
                            response: response.clone(),
                        });
                    }
                    if let Some(w) = waiter {
                        w.finish(Ok(Some(*response)));
                    }
                }
                Event::RequestTimedOut { id } => {
                    if let Some(w) = self.waiters.remove(&id) {
                        w.finish(Ok(None));
                    }
                    let _ = events.send(ev);
                }
                Event::RequestFailed { id, error } => {
                    if let Some(w) = self.waiters.remove(&id) {
                        w.finish(Err(error.clone()));
                    }
                    let _ = events.send(Event::RequestFailed { id, error });
                }
                other => {
                    let _ = events.send(other);
                }
            }
        }
    }

    /// Hands the engine's uplink frames to the uplink's channel; what does
    /// not fit (the uplink is behind) is dropped and counted.
    pub(crate) fn drain_uplink(&mut self, dropped: &AtomicU64) {
        while let Some(u) = self.engine.poll_uplink() {
            let sent = self
                .uplink
                .as_ref()
                .is_some_and(|tx| tx.try_send(u).is_ok());
            if !sent {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

pub(crate) struct Shared {
    pub(crate) state: Mutex<State>,
    pub(crate) wake: Notify,
    pub(crate) send_errors: AtomicU64,
    pub(crate) sent_segmented: AtomicU64,
    pub(crate) send_queue_dropped: AtomicU64,
    pub(crate) send_queue_bytes_dropped: AtomicU64,
    pub(crate) sent_direct: AtomicU64,
    pub(crate) audit_dropped: AtomicU64,
    pub(crate) audit_progress: Arc<Progress>,
    pub(crate) audit_backpressure: AtomicU64,
    pub(crate) uplink_dropped: AtomicU64,
    /// The state store, while running with a state directory. Taken
    /// before the engine's lock by the commands that write it, so the
    /// store records decisions in the order the engine made them; the
    /// driver task never takes it.
    pub(crate) store: Mutex<Option<KeptStore>>,
    /// Decisions the store could not record.
    pub(crate) store_failures: AtomicU64,
    /// Origin of the engine's monotonic clock.
    pub(crate) origin: Instant,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent-enough counters;
        // keep serving rather than poisoning every later call.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Both clocks, now: monotonic since `origin` for timers, wall-clock for
    /// packets and replay windows.
    pub(crate) fn now(&self) -> Now {
        Now::new(
            MonoTime::from_duration(self.origin.elapsed()),
            Timestamp::now(),
        )
    }

    pub(crate) fn store(&self) -> MutexGuard<'_, Option<KeptStore>> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs an engine command that may make a decision, then records what
    /// `record` makes of its result in the state store (if the node runs
    /// with one) before returning: a decision returned is on disk.
    pub(crate) fn decision<R>(
        &self,
        f: impl FnOnce(&mut Engine) -> R,
        record: impl FnOnce(&R, &State) -> Vec<Decision>,
    ) -> R {
        let mut store = self.store();
        let mut st = self.lock();
        let r = f(&mut st.engine);
        st.drain_audit(&self.audit_dropped);
        let Some(kept) = store.as_mut() else {
            return r;
        };
        let changes = kept.changes(&st.engine, self.now());
        let decisions = record(&r, &st);
        // Written with the engine unlocked: the driver task never waits
        // for the disk.
        drop(st);
        if let Err(e) = kept.write(changes, decisions) {
            self.store_failures.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "a decision could not be written to the state store");
        }
        r
    }

    /// Brings the state store's copies of what changed on the receive path
    /// (reviews waiting, pins learnt on first use) up to date; the keeper
    /// thread calls it every second, and a clean stop once more.
    /// With `horizon`, the replay horizon is written in the same
    /// transaction.
    pub(crate) fn keep_state(&self, horizon: Option<Timestamp>) -> Result<(), StoreError> {
        let mut store = self.store();
        let Some(kept) = store.as_mut() else {
            return Ok(());
        };
        let changes = kept.changes(&self.lock().engine, self.now());
        let horizon = horizon.map(Decision::Horizon).into_iter().collect();
        kept.write(changes, horizon).inspect_err(|_| {
            self.store_failures.fetch_add(1, Ordering::Relaxed);
        })
    }

    /// Runs an engine command and passes on its audit records.
    pub(crate) fn command<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> R {
        let mut st = self.lock();
        let r = f(&mut st.engine);
        st.drain_audit(&self.audit_dropped);
        r
    }
}

struct Running {
    /// The state directory, while running with one.
    state: Option<RunState>,
    local_addr: SocketAddr,
    discovery_addr: Option<SocketAddr>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// A running node's state directory. Dropped without a stop (a crash),
/// the thread ends before the lock goes: fields drop in this order.
struct RunState {
    /// The thread that keeps the replay horizon ahead of the clock and
    /// the store's copies current.
    keeper: HorizonKeeper,
    /// Locked while the node runs.
    dir: StateDir,
    /// The horizon this run started with.
    started_with: Option<Timestamp>,
}

/// A state directory opened for a start: locked, its store open.
struct OpenedState {
    dir: StateDir,
    store: StateStore,
    /// The horizon of the file nodes before the store kept.
    legacy_horizon: Option<Timestamp>,
}

/// An IoT node: a [`PingNode`](tibet_ping::PingNode) on a UDP socket, with
/// discovery, peer tracking and mesh relay.
pub struct IoTNode {
    did: String,
    pub(crate) shared: Arc<Shared>,
    events: broadcast::Sender<Event>,
    running: Mutex<Option<Running>>,
}

impl std::fmt::Debug for IoTNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IoTNode")
            .field("did", &self.did)
            .finish_non_exhaustive()
    }
}

impl IoTNode {
    /// A stopped node for `did` with `config`; randomness from the OS.
    pub fn new(did: impl Into<String>, config: TransportConfig) -> Self {
        Self::with_seed(did, config, rand::random())
    }

    /// A stopped node whose ids, nonces and jitter come from `seed`.
    pub fn with_seed(did: impl Into<String>, config: TransportConfig, seed: u64) -> Self {
        let did = did.into();
        let mut engine = Engine::new(did.clone(), config, seed);
        let origin = Instant::now();
        engine.set_processing_clock(Box::new(move || origin.elapsed()));
        let (events, _) = broadcast::channel(EVENT_CHANNEL);
        IoTNode {
            did,
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    engine,
                    waiters: HashMap::new(),
                    running: false,
                    audit: None,
                    uplink: None,
                    state_dir: None,
                    declared: HashMap::new(),
                    direct: None,
                }),
                wake: Notify::new(),
                send_errors: AtomicU64::new(0),
                sent_segmented: AtomicU64::new(0),
                send_queue_dropped: AtomicU64::new(0),
                send_queue_bytes_dropped: AtomicU64::new(0),
                sent_direct: AtomicU64::new(0),
                audit_dropped: AtomicU64::new(0),
                audit_progress: Arc::new(Progress::default()),
                audit_backpressure: AtomicU64::new(0),
                uplink_dropped: AtomicU64::new(0),
                store: Mutex::new(None),
                store_failures: AtomicU64::new(0),
                origin,
            }),
            events,
            running: Mutex::new(None),
        }
    }

    /// This node's DID.
    pub fn did(&self) -> &str {
        &self.did
    }

    fn running(&self) -> MutexGuard<'_, Option<Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Binds the sockets and starts the driver task; returns the bound
    /// transport address (port 0 in the config picks a free port). A
    /// discovery socket that cannot be set up (no multicast route, port
    /// taken) is a logged warning, not an error.
    pub async fn start(&self) -> Result<SocketAddr, StartError> {
        let mut running = self.running();
        if running.is_some() {
            return Err(StartError::AlreadyRunning);
        }
        // tokio's from_std panics outside a runtime with I/O: refuse instead.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StartError::NoRuntime);
        }
        let config = self.shared.lock().engine.config().clone();
        let bind = config.bind_addr();
        let std_sock = socket::transport_socket(&config)
            .map_err(|source| StartError::Bind { addr: bind, source })?;
        let sock = UdpSocket::from_std(std_sock)
            .map(Arc::new)
            .map_err(|source| StartError::Bind { addr: bind, source })?;
        let local_addr = sock
            .local_addr()
            .map_err(|source| StartError::Bind { addr: bind, source })?;
        let disc = if config.discovery_enabled {
            match socket::discovery_socket(&config)
                .and_then(|(s, families)| Ok((UdpSocket::from_std(s)?, families)))
            {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, group = %config.multicast_group, port = config.discovery_port,
                        "discovery unavailable; continuing without multicast listener");
                    None
                }
            }
        } else {
            None
        };
        let discovery_addr = disc.as_ref().and_then(|(d, _)| d.local_addr().ok());
        let disc_port = discovery_addr.map_or(config.discovery_port, |a| a.port());
        let opened = self.open_state()?;
        let mut started_with = None;
        let mut state_dir = None;
        // In place before the node counts as running, so no decision made
        // from then on goes unrecorded (the store's lock before the
        // engine's, as in `Shared::decision`).
        let mut store_slot = self.shared.store();
        {
            let mut st = self.shared.lock();
            if let Some(OpenedState {
                dir,
                store,
                legacy_horizon,
            }) = opened
            {
                let st = &mut *st;
                let now = self.shared.now();
                crate::state_restore::restore(&store, &mut st.engine, &st.declared, now)?;
                started_with = store.horizon()?.max(legacy_horizon);
                let mut kept = KeptStore::new(store, &st.engine);
                // On disk before the first packet is read: a crash from
                // here on is covered.
                let skew = st.engine.ping_node().future_skew();
                kept.write(
                    Changes::default(),
                    vec![Decision::Horizon(crash_horizon(skew))],
                )?;
                dir.forget_legacy_horizon()?;
                *store_slot = Some(kept);
                state_dir = Some((dir, skew));
            }
            // The engine sends each beacon to the IPv4 group; the driver
            // sends it to the groups of the families discovery joined.
            let mut dest = config.multicast_addr();
            dest.set_port(disc_port);
            st.engine.set_local(local_addr.port(), dest);
            // Nothing an earlier run could have accepted is accepted again:
            // the horizon it left, or, knowing of none, this start less a
            // second (a peer that heard of us may have stamped its packet
            // on a clock read an instant before we read ours).
            let now = self.shared.now();
            let horizon = started_with.unwrap_or(now.wall - std::time::Duration::from_secs(1));
            st.engine.set_replay_horizon(horizon);
            st.engine.start(now);
            st.running = true;
            // Callers send on it from the first request on (direct_send.rs).
            st.direct = Some(DirectSend::new(sock.clone()));
        }

        let (tx, rx) = oneshot::channel();
        let groups = Groups {
            v4: config.multicast_addr(),
            v6: config.multicast_addr_v6(),
            families: disc.as_ref().map(|(_, f)| *f),
        }
        .on_port(disc_port);
        let task = tokio::spawn(drive(
            self.shared.clone(),
            sock,
            disc.map(|(d, _)| d),
            groups,
            self.events.clone(),
            rx,
        ));
        drop(store_slot);
        let state = match state_dir {
            Some((dir, skew)) => {
                let shared = self.shared.clone();
                let tick = move |horizon| {
                    if let Err(e) = shared.keep_state(Some(horizon)) {
                        // Tried every second while the disk refuses: said
                        // once a minute.
                        if shared.store_failures.load(Ordering::Relaxed) % 60 == 1 {
                            tracing::error!(error = %e,
                                "could not write the replay horizon and the state store's copies");
                        }
                    }
                };
                Some(RunState {
                    keeper: HorizonKeeper::start(skew, Box::new(tick))?,
                    dir,
                    started_with,
                })
            }
            None => None,
        };
        tracing::info!(did = %self.did, %local_addr, "node started");
        *running = Some(Running {
            state,
            local_addr,
            discovery_addr,
            shutdown: tx,
            task,
        });
        Ok(local_addr)
    }

    /// Keeps this node's state in `dir` (created with mode 0700 at start):
    /// the replay horizon, so a packet accepted before a restart (clean or
    /// SIGKILL) is never accepted after it, and a lock, so two nodes never
    /// share it (docs/SECURITY.md). Without one, the node refuses packets
    /// sent more than a second before it started. Takes effect at the next [`IoTNode::start`].
    pub fn set_state_dir(&self, dir: Option<PathBuf>) {
        self.shared.lock().state_dir = dir;
    }

    /// Opens and locks the state directory and opens its store.
    fn open_state(&self) -> Result<Option<OpenedState>, StartError> {
        let Some(path) = self.shared.lock().state_dir.clone() else {
            return Ok(None);
        };
        let (dir, legacy_horizon) = StateDir::open(&path)?;
        let store = StateStore::open(&path)?;
        Ok(Some(OpenedState {
            dir,
            store,
            legacy_horizon,
        }))
    }

    /// Stops the node: the driver task ends, the sockets close, outstanding
    /// requests end with [`SendError::Stopped`], and the audit records so far
    /// are stored and flushed. Idempotent.
    pub async fn stop(&self) {
        let Some(run) = self.running().take() else {
            return;
        };
        let _ = run.shutdown.send(());
        let _ = run.task.await;
        if let Some(RunState {
            dir,
            keeper,
            started_with,
        }) = run.state
        {
            // A clean stop: no packet this run accepted was sent after the
            // latest it accepted, so that is the next run's horizon (or the
            // one this run started with, if it accepted nothing). Written
            // with the store's last copies, after the keeper's last write.
            let latest = self.shared.lock().engine.latest_accepted();
            let horizon = latest.max(started_with).unwrap_or_else(Timestamp::now);
            let shared = self.shared.clone();
            let written = tokio::task::spawn_blocking(move || {
                keeper.stop();
                shared.keep_state(Some(horizon))
            })
            .await;
            if let Ok(Err(e)) = written {
                tracing::warn!(error = %e, "could not write the replay horizon and the state store's copies at stop");
            }
            self.shared.store().take();
            // The directory's lock goes last.
            drop(dir);
        }
        {
            let mut st = self.shared.lock();
            st.running = false;
            for (_, w) in st.waiters.drain() {
                w.finish(Err(SendError::Stopped));
            }
            st.engine.cancel_all_requests();
            // The drops of the unfinished interval are recorded too.
            let now = self.shared.now();
            st.engine.flush_drops(now);
        }
        self.flush_audit().await;
        tracing::info!(did = %self.did, "node stopped");
    }

    /// Waits until every audit record of what happened so far has been
    /// handed to the sink and the sink has flushed.
    pub async fn flush_audit(&self) {
        // Rounds, because the thread takes a bounded backlog at a time; a
        // few suffice for the engine's whole queue (a running node under a
        // flood may queue more meanwhile: bounded, not chased forever).
        for _ in 0..8 {
            let (tx, more) = {
                let mut st = self.shared.lock();
                st.drain_audit(&self.shared.audit_dropped);
                let tx = st.audit.as_ref().and_then(AuditWorker::sender);
                (tx, st.engine.audit_queued() > 0)
            };
            let Some(tx) = tx else { return };
            audit_worker::flush(tx).await;
            if !more {
                return;
            }
        }
    }

    /// Whether the node is running.
    pub fn is_running(&self) -> bool {
        self.running().is_some()
    }

    /// The bound transport address, while running.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.running().as_ref().map(|r| r.local_addr)
    }

    /// The bound discovery address, while running with discovery.
    pub fn discovery_addr(&self) -> Option<SocketAddr> {
        self.running().as_ref().and_then(|r| r.discovery_addr)
    }

    /// A stream of the node's events (from now on).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    async fn request(
        &self,
        make: impl FnOnce(&mut Engine, Now) -> Result<RequestId, SendError>,
    ) -> Result<Option<PingResponse>, SendError> {
        let (rx, wake) = {
            let mut guard = self.shared.lock();
            let st = &mut *guard;
            if !st.running {
                return Err(SendError::NotRunning);
            }
            let id = make(&mut st.engine, self.shared.now())?;
            st.drain_audit(&self.shared.audit_dropped);
            let (tx, rx) = oneshot::channel();
            st.waiters.insert(id, Waiter::Channel(tx));
            // The datagram leaves from this thread (direct_send.rs).
            let (wake, sent) = st
                .direct
                .as_mut()
                .map_or((true, 0), |d| d.send(&mut st.engine));
            self.shared.sent_direct.fetch_add(sent, Ordering::Relaxed);
            (rx, wake)
        };
        if wake {
            self.shared.wake.notify_one();
        }
        rx.await.map_err(|_| SendError::Stopped)?
    }

    /// Pings `target` at `addr` and waits for its answer: `Ok(None)` when
    /// none came in time (a ROOD silent drop looks exactly like this);
    /// [`SendError::Unreachable`] as soon as `addr` answers "port
    /// unreachable" (nothing listens there); [`SendError::AnswerRefused`]
    /// when the only answers failed the identity check (a pinned key that
    /// did not sign them).
    pub async fn send_ping(
        &self,
        target: &str,
        addr: SocketAddr,
        intent: &str,
        purpose: &str,
        options: SendOptions,
    ) -> Result<Option<PingResponse>, SendError> {
        self.request(|e, now| e.send_ping(now, target, addr, intent, purpose, options))
            .await
    }

    /// Sends a heartbeat to `target` at `addr` and waits for its answer.
    pub async fn send_heartbeat(
        &self,
        target: &str,
        addr: SocketAddr,
        status: Option<JsonMap>,
    ) -> Result<Option<PingResponse>, SendError> {
        self.request(|e, now| e.send_heartbeat(now, target, addr, status))
            .await
    }

    /// Sends our discover packet by unicast to `addr`.
    pub fn announce_to(&self, addr: SocketAddr) -> Result<(), SendError> {
        let mut st = self.shared.lock();
        if !st.running {
            return Err(SendError::NotRunning);
        }
        st.engine.announce_to(self.shared.now(), addr)?;
        drop(st);
        self.shared.wake.notify_one();
        Ok(())
    }

    /// A socket of the caller's own for requests whose answers the caller
    /// reads itself, with [`RequestSocket::poll`] when it is readable (see
    /// request_socket.rs): bound like the transport socket, on a free port.
    /// Its requests need the node running.
    pub fn request_socket(&self) -> io::Result<RequestSocket> {
        let mut config = self.shared.lock().engine.config().clone();
        config.bind_port = 0;
        let sock = socket::transport_socket(&config)?;
        RequestSocket::new(self.shared.clone(), self.events.clone(), sock)
    }

    /// Runs `f` on the engine, for what this type does not wrap (reading
    /// tables, tests). State changes belong in the named methods below,
    /// which are audited; records `f` causes are passed on all the same.
    pub fn with_engine<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> R {
        let r = self.shared.command(f);
        self.shared.wake.notify_one();
        r
    }

    /// Runs an engine command that may make a decision and records it in
    /// the state store (see `Shared::decision`).
    pub(crate) fn decision<R>(
        &self,
        f: impl FnOnce(&mut Engine) -> R,
        record: impl FnOnce(&R, &State) -> Vec<Decision>,
    ) -> R {
        let r = self.shared.decision(f, record);
        self.shared.wake.notify_one();
        r
    }

    /// Records a peer by hand.
    pub fn add_peer(&self, did: &str, addr: SocketAddr) {
        let now = self.shared.now();
        self.shared.command(|e| e.add_peer(now, did, addr));
    }

    /// Both clocks as this node reads them: the monotonic time its peer
    /// records and timers use, and the wall clock.
    pub fn clock(&self) -> Now {
        self.shared.now()
    }

    /// The learned mesh route to `did`: next hop and hop count.
    pub fn route_to(&self, did: &str) -> Option<(SocketAddr, u32)> {
        let now = self.shared.now();
        self.with_engine(|e| e.route_to(now.mono, did).map(|r| (r.next_hop, r.hops)))
    }

    /// Live peers.
    pub fn peers(&self) -> Vec<PeerRecord> {
        let now = self.shared.now();
        self.shared
            .lock()
            .engine
            .peers()
            .alive(now.mono)
            .cloned()
            .collect()
    }

    /// Installs (or removes) the audit sink. Its records are stored by a
    /// dedicated thread; a sink being replaced first stores and flushes what
    /// it was given.
    pub fn set_audit(&self, sink: Option<Box<dyn AuditSink>>) {
        let overload = self.shared.lock().engine.config().audit.on_overload;
        let worker = sink.and_then(|sink| {
            match AuditWorker::spawn(sink, self.shared.audit_progress.clone(), overload) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the audit thread; auditing off");
                    None
                }
            }
        });
        let old = {
            let mut st = self.shared.lock();
            st.drain_audit(&self.shared.audit_dropped);
            st.engine.set_audit_enabled(worker.is_some());
            std::mem::replace(&mut st.audit, worker)
        };
        // Joins the old worker outside the lock.
        drop(old);
    }

    /// Opens the uplink (docs/FLEETS.md): mesh pings the LAN cannot route,
    /// and answers to frames from the uplink, come out of the returned
    /// channel (at most `capacity` waiting; beyond, dropped and counted as
    /// `driver.uplink_dropped`), and [`UPLINK_ADDR`](tibet_iot_proto::UPLINK_ADDR)
    /// becomes a destination for [`IoTNode::send_ping`]. Opening again
    /// replaces the channel.
    pub fn open_uplink(&self, capacity: usize) -> mpsc::Receiver<Uplink> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let mut st = self.shared.lock();
        st.engine.set_uplink_enabled(true);
        st.uplink = Some(tx);
        rx
    }

    /// Closes the uplink; frames from it are refused from now on.
    pub fn close_uplink(&self) {
        let mut st = self.shared.lock();
        st.engine.set_uplink_enabled(false);
        st.uplink = None;
    }

    /// A frame arrived over the uplink: handled like a datagram (decode,
    /// airlock, replay check, trust) from
    /// [`UPLINK_ADDR`](tibet_iot_proto::UPLINK_ADDR). Locks the engine
    /// briefly, like every API call; the driver task sends what follows.
    pub fn handle_uplink_frame(&self, frame: &[u8]) {
        let now = self.shared.now();
        {
            let mut st = self.shared.lock();
            if !st.running {
                return;
            }
            st.engine.handle_uplink_frame(now, frame);
            st.drain_uplink(&self.shared.uplink_dropped);
            st.drain_audit(&self.shared.audit_dropped);
        }
        self.shared.wake.notify_one();
    }

    /// Counters of the engine, its tables and the driver.
    pub fn stats(&self) -> NodeStats {
        let mut s = self.shared.lock().engine.stats(self.shared.now());
        let d = &mut s.driver;
        d.send_errors = self.shared.send_errors.load(Ordering::Relaxed);
        d.sent_segmented = self.shared.sent_segmented.load(Ordering::Relaxed);
        d.sent_direct = self.shared.sent_direct.load(Ordering::Relaxed);
        d.send_queue_dropped = self.shared.send_queue_dropped.load(Ordering::Relaxed);
        d.send_queue_bytes_dropped = self.shared.send_queue_bytes_dropped.load(Ordering::Relaxed);
        d.audit_dropped = self.shared.audit_dropped.load(Ordering::Relaxed);
        let p = &self.shared.audit_progress;
        d.audit_failures = p.failures.load(Ordering::Relaxed);
        d.audit_written = p.written.load(Ordering::Relaxed);
        d.audit_backpressure = self.shared.audit_backpressure.load(Ordering::Relaxed);
        d.uplink_dropped = self.shared.uplink_dropped.load(Ordering::Relaxed);
        s
    }
}

impl Drop for IoTNode {
    fn drop(&mut self) {
        if let Some(run) = self.running().take() {
            run.task.abort();
        }
    }
}
