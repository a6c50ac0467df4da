//! [`Provider`]: makes tokens for one actor, chains them, seals them and
//! hands them to a [`Store`].

use std::fmt;

use serde_json::{Value, json};
use tibet_ping::{JsonMap, PingPacket, PingResponse, Timestamp};

use crate::cap::{self, MAX_TOKEN_PAYLOAD, MAX_TOKEN_PURPOSE};
use crate::id::{StampText, TokenIdGen};
use crate::ping_token::{FloatText, PingAnswer, PingFacts, Stamp, end_line};
use crate::store::{AppendError, MemoryStore, Query, ReadError, Store};
use crate::token::{HmacKey, Token, TokenState, digest};
use crate::verify::{Verifier, VerifyReport};

/// What to record: the caller's part of a token. The provider adds id,
/// time, default actor, chain parent and hash.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewToken {
    /// The action, e.g. `user_login`.
    pub action: String,
    /// ERIN: content.
    pub erin: Value,
    /// ERAAN: references.
    pub eraan: Vec<String>,
    /// EROMHEEN: context.
    pub eromheen: JsonMap,
    /// ERACHTER: intent.
    pub erachter: String,
    /// Overrides the provider's actor.
    pub actor: Option<String>,
    /// Explicit parent (otherwise auto-chained).
    pub parent_id: Option<String>,
    /// Initial state.
    pub state: TokenState,
}

impl NewToken {
    /// A token for `action` with everything else empty.
    pub fn new(action: impl Into<String>) -> Self {
        NewToken {
            action: action.into(),
            ..NewToken::default()
        }
    }

    /// Sets ERIN.
    pub fn erin(mut self, erin: Value) -> Self {
        self.erin = erin;
        self
    }

    /// Sets ERAAN.
    pub fn eraan<S: Into<String>>(mut self, refs: impl IntoIterator<Item = S>) -> Self {
        self.eraan = refs.into_iter().map(Into::into).collect();
        self
    }

    /// Sets EROMHEEN (a JSON object; anything else becomes `{}`).
    pub fn eromheen(mut self, context: Value) -> Self {
        self.eromheen = match context {
            Value::Object(m) => m,
            _ => JsonMap::new(),
        };
        self
    }

    /// Sets ERACHTER.
    pub fn erachter(mut self, why: impl Into<String>) -> Self {
        self.erachter = why.into();
        self
    }

    /// Sets the actor.
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    /// Sets the parent explicitly.
    pub fn parent(mut self, parent_id: impl Into<String>) -> Self {
        self.parent_id = Some(parent_id.into());
        self
    }

    /// Sets the state.
    pub fn state(mut self, state: TokenState) -> Self {
        self.state = state;
        self
    }
}

/// Why [`Provider::update_state`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpdateStateError {
    /// Looking up the original token failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Recording the state-change token failed.
    #[error(transparent)]
    Append(#[from] AppendError),
}

/// How [`Provider::export`] formats tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// A pretty-printed JSON array.
    Json,
    /// One token per line, as in a token file (no trailing newline).
    Jsonl,
}

type Clock = Box<dyn Fn() -> Timestamp + Send>;
type Callback = Box<dyn FnMut(&Token) + Send>;

/// Creates tokens for one actor: ids, time, chain links, hashes; stores
/// them and calls an optional callback for each.
pub struct Provider {
    actor: String,
    store: Box<dyn Store>,
    on_token: Option<Callback>,
    auto_chain: bool,
    key: Option<HmacKey>,
    clock: Clock,
    ids: TokenIdGen,
    last_id: Option<String>,
    /// The open batch, if any.
    batch: Option<Batch>,
    /// The line buffer of the last batch, kept for the next one.
    spare: Vec<u8>,
    /// The canonical JSON of a token being sealed (reused).
    scratch: Vec<u8>,
    /// The last trust score written, as text.
    floats: FloatText,
    /// The id and time of the last ping token written straight from the
    /// packet.
    stamp: StampText,
}

/// A line buffer larger than this is not kept for the next batch.
const KEEP_BUFFER: usize = 4 << 20;

/// An open batch: tokens made, chained and sealed, not stored yet.
struct Batch {
    /// Their file lines, each ending in a newline.
    text: Vec<u8>,
    /// How many.
    count: usize,
    /// The tokens themselves, kept only for an `on_token` callback.
    tokens: Vec<Token>,
    /// The chain's last id before the batch (restored when the batch
    /// cannot be stored).
    before: Option<String>,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("actor", &self.actor)
            .field("auto_chain", &self.auto_chain)
            .field("hmac", &self.key.is_some())
            .field("last_id", &self.last_id)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// A provider for `actor` with a [`MemoryStore`], auto-chaining, no
    /// HMAC key, the system clock and a random id generator.
    pub fn new(actor: impl Into<String>) -> Self {
        Provider {
            actor: actor.into(),
            store: Box::new(MemoryStore::new()),
            on_token: None,
            auto_chain: true,
            key: None,
            clock: Box::new(Timestamp::now),
            ids: TokenIdGen::random(),
            last_id: None,
            batch: None,
            spare: Vec::new(),
            scratch: Vec::new(),
            floats: FloatText::default(),
            stamp: StampText::default(),
        }
    }

    /// Stores tokens in `store`, continuing the chain from its last token.
    pub fn with_store(mut self, store: impl Store + 'static) -> Self {
        self.last_id = store.last_id();
        self.store = Box::new(store);
        self
    }

    /// Seals tokens with HMAC-SHA256 under `key`.
    pub fn with_hmac_key(mut self, key: HmacKey) -> Self {
        self.key = Some(key).filter(|k| !k.as_bytes().is_empty());
        self
    }

    /// Reads time from `clock` instead of the system clock.
    pub fn with_clock(mut self, clock: impl Fn() -> Timestamp + Send + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// Uses `ids` to make token ids (a fixed key makes ids deterministic).
    pub fn with_id_gen(mut self, ids: TokenIdGen) -> Self {
        self.ids = ids;
        self
    }

    /// Turns automatic chaining (parent = previous token) on or off.
    pub fn with_auto_chain(mut self, on: bool) -> Self {
        self.auto_chain = on;
        self
    }

    /// Calls `callback` with every token created.
    pub fn on_token(mut self, callback: impl FnMut(&Token) + Send + 'static) -> Self {
        self.on_token = Some(Box::new(callback));
        self
    }

    /// The default actor.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The HMAC key, if any.
    pub fn hmac_key(&self) -> Option<&HmacKey> {
        self.key.as_ref()
    }

    /// The id of the last token created (or found in the store).
    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// Creates, seals and stores a token at the clock's current time.
    pub fn create(&mut self, new: NewToken) -> Result<Token, AppendError> {
        let now = (self.clock)();
        self.create_at(new, now)
    }

    /// Creates, seals and stores a token stamped `now`.
    pub fn create_at(&mut self, new: NewToken, now: Timestamp) -> Result<Token, AppendError> {
        let token = self.seal_next(new, now);
        if self.batch.is_some() {
            let copy = self.on_token.is_some().then(|| token.clone());
            self.hold(&token, copy);
            return Ok(token);
        }
        self.store_one(token)
    }

    /// Adds `token` (sealed, next in the chain) to the open batch; `keep`
    /// is the token itself when a callback wants it at commit.
    fn hold(&mut self, token: &Token, keep: Option<Token>) {
        if let Some(b) = &mut self.batch {
            token.write_json_line(&mut b.text);
            b.text.push(b'\n');
            b.count += 1;
            b.tokens.extend(keep);
            self.last_id = Some(token.token_id.clone());
        }
    }

    /// Creates a token like [`Provider::create`] without handing it back:
    /// in an open batch it is only held (no copy made), else stored.
    pub fn add(&mut self, new: NewToken) -> Result<(), AppendError> {
        let token = self.seal_next(new, (self.clock)());
        if self.batch.is_some() {
            self.hold(&token, None);
            if let (Some(b), Some(_)) = (&mut self.batch, &self.on_token) {
                b.tokens.push(token);
            }
            return Ok(());
        }
        self.store_one(token)?;
        Ok(())
    }

    /// Records an answered ping as [`Provider::add`] of
    /// [`packet_token`]`(packet, answer)` would, with EROMHEEN
    /// `authenticated` when given and `parent_id` as the parent when
    /// given. In an open batch (and without an `on_token` callback) the
    /// token is written straight from the packet: its canonical JSON and
    /// its line, with no intermediate token (the same bytes).
    pub fn add_ping(
        &mut self,
        packet: &PingPacket,
        answer: Option<PingAnswer>,
        authenticated: Option<bool>,
        parent_id: Option<&str>,
    ) -> Result<(), AppendError> {
        if self.batch.is_none() || self.on_token.is_some() {
            let mut new = ping_new_token(packet, answer, authenticated);
            new.parent_id = parent_id.map(str::to_owned);
            return self.add(new);
        }
        let facts = PingFacts::new(packet, answer, authenticated, &mut self.floats);
        let now = (self.clock)();
        self.stamp.set(now, self.ids.next_suffix());
        let parent_id = parent_id.or(self.last_id.as_deref().filter(|_| self.auto_chain));
        let stamp = Stamp {
            token_id: &self.stamp.token_id,
            timestamp: &self.stamp.timestamp,
            parent_id,
        };
        if let Some(b) = &mut self.batch {
            self.scratch.clear();
            facts.write(&mut b.text, &mut self.scratch, &stamp);
            end_line(&mut b.text, &digest(&self.scratch, self.key.as_ref()));
            b.count += 1;
        }
        match &mut self.last_id {
            Some(last) => {
                last.clear();
                last.push_str(&self.stamp.token_id);
            }
            None => self.last_id = Some(self.stamp.token_id.clone()),
        }
        Ok(())
    }

    /// Stores `token`, which then becomes the chain's last.
    fn store_one(&mut self, token: Token) -> Result<Token, AppendError> {
        self.store.append(&token)?;
        self.last_id = Some(token.token_id.clone());
        if let Some(cb) = &mut self.on_token {
            cb(&token);
        }
        Ok(token)
    }

    /// The next token: id, time, actor, chain link, seal.
    fn seal_next(&mut self, new: NewToken, now: Timestamp) -> Token {
        let parent_id = new
            .parent_id
            .or_else(|| self.last_id.clone().filter(|_| self.auto_chain));
        let mut token = Token {
            token_id: self.ids.next_id(now),
            action: new.action,
            timestamp: crate::id::iso_timestamp(now),
            actor: new.actor.unwrap_or_else(|| self.actor.clone()),
            erin: new.erin,
            eraan: new.eraan,
            eromheen: new.eromheen,
            erachter: new.erachter,
            parent_id,
            state: new.state,
            content_hash: String::new(),
            signature: String::new(),
        };
        token.seal(self.key.as_ref());
        token
    }

    /// Opens a batch: the tokens created until [`Provider::commit_batch`]
    /// are made, chained and sealed as usual but stored together, with one
    /// [`Store::append_batch`] (one `write` for a file). Opening a batch
    /// while one is open keeps the open one.
    pub fn begin_batch(&mut self) {
        if self.batch.is_none() {
            let mut text = std::mem::take(&mut self.spare);
            text.clear();
            self.batch = Some(Batch {
                text,
                count: 0,
                tokens: Vec::new(),
                before: self.last_id.clone(),
            });
        }
    }

    /// Tokens created in the open batch, not stored yet.
    pub fn batch_len(&self) -> usize {
        self.batch.as_ref().map_or(0, |b| b.count)
    }

    /// Stores the open batch and closes it; returns how many tokens it
    /// held. When the store refuses them, none of them counts as created:
    /// the chain continues from the token before the batch.
    pub fn commit_batch(&mut self) -> Result<usize, AppendError> {
        let Some(mut b) = self.batch.take() else {
            return Ok(0);
        };
        let result = match (&self.last_id, b.count) {
            (Some(last), 1..) => self.store.append_lines(&b.text, last),
            _ => Ok(()),
        };
        if b.text.capacity() <= KEEP_BUFFER {
            b.text.clear();
            self.spare = std::mem::take(&mut b.text);
        }
        if let Err(e) = result {
            self.last_id = b.before;
            return Err(e);
        }
        if let Some(cb) = &mut self.on_token {
            b.tokens.iter().for_each(cb);
        }
        Ok(b.count)
    }

    /// Records a ping (and the answer to it): action `ping.<ping_type>`,
    /// actor the source DID; see [`packet_token`].
    pub fn from_packet(
        &mut self,
        packet: &PingPacket,
        response: Option<&PingResponse>,
    ) -> Result<Token, AppendError> {
        self.create(packet_token(packet, response))
    }

    /// Records a heartbeat from `source_did`.
    pub fn record_heartbeat(
        &mut self,
        source_did: &str,
        status: Option<&str>,
    ) -> Result<Token, AppendError> {
        self.create(heartbeat_token(source_did, status))
    }

    /// Records a state change of `token_id` as a new `state_change` token
    /// whose parent is that token; `None` when the token is unknown.
    pub fn update_state(
        &mut self,
        token_id: &str,
        new_state: TokenState,
        reason: &str,
    ) -> Result<Option<Token>, UpdateStateError> {
        let Some(original) = self.store.get(token_id)? else {
            return Ok(None);
        };
        let why = if reason.is_empty() {
            format!("State change: {} -> {}", original.state, new_state)
        } else {
            reason.to_owned()
        };
        let token = self.create(
            NewToken::new("state_change")
                .erin(json!({"token_id": token_id, "old_state": original.state.as_str(), "new_state": new_state.as_str()}))
                .eraan([token_id])
                .erachter(why)
                .parent(token_id),
        )?;
        Ok(Some(token))
    }

    /// Makes every stored token durable now (see [`Durability`](crate::Durability)).
    pub fn flush(&mut self) -> Result<(), AppendError> {
        self.store.flush()
    }

    /// The token with this id.
    pub fn get(&self, token_id: &str) -> Result<Option<Token>, ReadError> {
        self.store.get(token_id)
    }

    /// The last `query.limit` matching tokens, oldest first.
    pub fn find(&self, query: &Query) -> Result<Vec<Token>, ReadError> {
        self.store.find(query)
    }

    /// Every token in the store, as JSON or JSONL.
    pub fn export(&self, format: ExportFormat) -> Result<String, ReadError> {
        let tokens = self.store.all()?;
        Ok(match format {
            ExportFormat::Json => serde_json::to_string_pretty(&tokens).unwrap_or_default(),
            ExportFormat::Jsonl => tokens
                .iter()
                .map(Token::to_json_line)
                .collect::<Vec<_>>()
                .join("\n"),
        })
    }

    /// Verifies every stored token with this provider's key.
    pub fn verify_all(&self) -> Result<VerifyReport, ReadError> {
        let mut v = Verifier::new(self.key.clone());
        let mut line = 0;
        let scan = self.store.scan(&mut |t| {
            line += 1;
            v.token(line, &t);
            std::ops::ControlFlow::Continue(())
        })?;
        let mut report = v.finish();
        report.bad_line_count = scan.bad_line_count;
        report.bad_lines = scan.bad_lines;
        Ok(report)
    }
}

/// The token content for a heartbeat from `source_did`: action
/// `heartbeat`; ERIN `source` and `status` (when given and not empty);
/// ERAAN `[source]`; ERACHTER `Heartbeat from SOURCE`; actor the source.
pub(crate) fn heartbeat_token(source_did: &str, status: Option<&str>) -> NewToken {
    let mut erin = JsonMap::new();
    erin.insert("source".into(), json!(source_did));
    if let Some(s) = status.filter(|s| !s.is_empty()) {
        erin.insert("status".into(), json!(s));
    }
    NewToken::new("heartbeat")
        .erin(Value::Object(erin))
        .eraan([source_did])
        .erachter(format!("Heartbeat from {source_did}"))
        .actor(source_did)
}

/// The token content for a ping and its optional response (the reference's
/// `Provider.from_packet` facts): action `ping.<ping_type>`; ERIN `intent`,
/// `purpose` (at most [`MAX_TOKEN_PURPOSE`] bytes), `payload` (kept when its
/// JSON is at most [`MAX_TOKEN_PAYLOAD`] bytes, else `{}`), and for a capped
/// value `purpose_bytes`/`purpose_sha256` or `payload_bytes`/`payload_sha256`
/// (length and hex SHA-256 of the full value); ERAAN `[source, target]`; EROMHEEN `routing_mode`,
/// `hop_count`, `packet_id` (to find the token of a pending ping),
/// `pod_id` (when set) and, from the response, `decision`,
/// `trust_score` and `zone` (the real airlock zone; the reference writes
/// `unknown` there); ERACHTER the purpose (or `Ping from A to B`); actor
/// the source DID.
pub fn packet_token(packet: &PingPacket, response: Option<&PingResponse>) -> NewToken {
    ping_new_token(packet, response.map(PingAnswer::from), None)
}

/// [`packet_token`] from the answer's facts, with EROMHEEN
/// `authenticated` last when given.
pub(crate) fn ping_new_token(
    packet: &PingPacket,
    answer: Option<PingAnswer>,
    authenticated: Option<bool>,
) -> NewToken {
    let mut eromheen = JsonMap::new();
    eromheen.insert("routing_mode".into(), json!(packet.routing_mode.as_str()));
    eromheen.insert("hop_count".into(), json!(packet.hop_count));
    eromheen.insert("packet_id".into(), json!(packet.packet_id));
    if let Some(pod) = packet.pod_id.as_deref().filter(|p| !p.is_empty()) {
        eromheen.insert("pod_id".into(), json!(pod));
    }
    if let Some(r) = answer {
        eromheen.insert("decision".into(), json!(r.decision.as_str()));
        eromheen.insert("trust_score".into(), json!(r.trust_score));
        eromheen.insert("zone".into(), json!(r.zone.as_str()));
    }
    if let Some(a) = authenticated {
        eromheen.insert("authenticated".into(), json!(a));
    }
    let mut erin = JsonMap::new();
    erin.insert("intent".into(), json!(packet.intent));
    let purpose = cap::put_text(&mut erin, "purpose", &packet.purpose, MAX_TOKEN_PURPOSE);
    cap::put_payload(&mut erin, "payload", &packet.payload, MAX_TOKEN_PAYLOAD);
    let erachter = if packet.purpose.is_empty() {
        format!("Ping from {} to {}", packet.source_did, packet.target_did)
    } else {
        purpose.to_owned()
    };
    NewToken {
        action: ["ping.", packet.ping_type.as_str()].concat(),
        erin: Value::Object(erin),
        eraan: vec![packet.source_did.clone(), packet.target_did.clone()],
        eromheen,
        erachter,
        actor: Some(packet.source_did.clone()),
        parent_id: None,
        state: TokenState::Created,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::store::ScanReport;
    use std::sync::{Arc, Mutex};

    use tibet_ping::{AirlockZone, PingDecision, PingType, Priority, RoutingMode};

    use super::*;

    pub(crate) fn fixed_provider(actor: &str) -> Provider {
        let t0 = Timestamp::parse("2026-11-26T11:00:33.762558+00:00").unwrap();
        let tick = Arc::new(Mutex::new(t0));
        Provider::new(actor)
            .with_id_gen(TokenIdGen::new(42))
            .with_clock(move || {
                let mut t = tick.lock().unwrap();
                let now = *t;
                *t = now + std::time::Duration::from_micros(1);
                now
            })
    }

    pub(crate) fn packet() -> PingPacket {
        PingPacket {
            packet_id: "ping_0011223344556677".into(),
            source_did: "jis:home:sensor".into(),
            target_did: "jis:home:hub".into(),
            ping_type: PingType::Intent,
            priority: Priority::Normal,
            routing_mode: RoutingMode::Mesh,
            intent: "temperature.read".into(),
            purpose: "Thermostat check".into(),
            payload: json!({"celsius": 21.5}).as_object().unwrap().clone(),
            pod_id: Some("pod-1".into()),
            station_id: None,
            hop_count: 2,
            max_hops: 5,
            nonce: "00".repeat(16),
            timestamp: "2026-11-26T11:00:33+00:00".into(),
            tibet_token_id: None,
            vouched_by: None,
            vouch_signature: None,
            signature: String::new(),
        }
    }

    pub(crate) fn response() -> PingResponse {
        PingResponse {
            response_id: "resp_0011223344556677".into(),
            in_response_to: "ping_0011223344556677".into(),
            responder_did: "jis:home:hub".into(),
            decision: PingDecision::Pending,
            payload: JsonMap::new(),
            capabilities: vec![],
            trust_score: 0.5,
            fira_breakdown: JsonMap::new(),
            tibet_token_id: None,
            timestamp: String::new(),
            rtt_ms: None,
            airlock_zone: AirlockZone::Geel,
            applied_rule: None,
            signature: String::new(),
        }
    }

    /// A store that refuses appends while `broken` is set.
    struct Flaky {
        inner: MemoryStore,
        broken: Arc<Mutex<bool>>,
        batches: Arc<Mutex<Vec<usize>>>,
    }

    impl Store for Flaky {
        fn append(&mut self, t: &Token) -> Result<(), AppendError> {
            self.append_batch(std::slice::from_ref(t))
        }
        fn append_batch(&mut self, tokens: &[Token]) -> Result<(), AppendError> {
            if *self.broken.lock().unwrap() {
                return Err(AppendError::Io {
                    path: "flaky".into(),
                    source: std::io::Error::other("disk full"),
                });
            }
            self.batches.lock().unwrap().push(tokens.len());
            tokens.iter().try_for_each(|t| self.inner.append(t))
        }
        fn scan(
            &self,
            f: &mut dyn FnMut(Token) -> std::ops::ControlFlow<()>,
        ) -> Result<ScanReport, ReadError> {
            self.inner.scan(f)
        }
        fn last_id(&self) -> Option<String> {
            self.inner.last_id()
        }
    }

    #[test]
    fn a_batch_is_stored_at_once_and_a_refused_batch_leaves_the_chain_intact() {
        let broken = Arc::new(Mutex::new(false));
        let batches = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::new(Mutex::new(0));
        let counter = seen.clone();
        let mut p = fixed_provider("jis:hub")
            .with_store(Flaky {
                inner: MemoryStore::new(),
                broken: broken.clone(),
                batches: batches.clone(),
            })
            .on_token(move |_| *counter.lock().unwrap() += 1);
        let first = p.create(NewToken::new("a")).unwrap();
        p.begin_batch();
        let b = p.create(NewToken::new("b")).unwrap();
        let c = p.create(NewToken::new("c")).unwrap();
        assert_eq!(p.batch_len(), 2);
        assert_eq!(*seen.lock().unwrap(), 1, "held, not stored yet");
        assert_eq!(p.commit_batch().unwrap(), 2);
        assert_eq!(*batches.lock().unwrap(), [1, 2], "one append for the batch");
        assert_eq!(*seen.lock().unwrap(), 3);
        assert_eq!(b.parent_id.as_deref(), Some(first.token_id.as_str()));
        assert_eq!(c.parent_id.as_deref(), Some(b.token_id.as_str()));
        // A batch the store refuses: the chain goes on from `c`.
        *broken.lock().unwrap() = true;
        p.begin_batch();
        p.create(NewToken::new("lost")).unwrap();
        assert!(p.commit_batch().is_err());
        assert_eq!(p.last_id(), Some(c.token_id.as_str()));
        *broken.lock().unwrap() = false;
        let d = p.create(NewToken::new("d")).unwrap();
        assert_eq!(d.parent_id.as_deref(), Some(c.token_id.as_str()));
        let report = p.verify_all().unwrap();
        assert!(report.is_intact() && report.valid == 4, "{report:?}");
    }

    #[test]
    fn create_chains_seals_and_calls_back() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let mut p = fixed_provider("jis:home:hub")
            .on_token(move |t| seen2.lock().unwrap().push(t.token_id.clone()));
        let a = p
            .create(NewToken::new("boot").erin(json!({"v": 1})))
            .unwrap();
        let b = p
            .create(NewToken::new("login").actor("jis:user:alice"))
            .unwrap();
        let c = p.create(NewToken::new("side").parent("elsewhere")).unwrap();
        assert_eq!(a.parent_id, None);
        assert_eq!(b.parent_id.as_deref(), Some(a.token_id.as_str()));
        assert_eq!(c.parent_id.as_deref(), Some("elsewhere"));
        assert_eq!(a.actor, "jis:home:hub");
        assert_eq!(b.actor, "jis:user:alice");
        assert_eq!(a.timestamp, "2026-11-26T11:00:33.762558+00:00");
        assert!(a.token_id.starts_with("tibet_20261126110033762558_"));
        assert_eq!(
            *seen.lock().unwrap(),
            vec![a.token_id.clone(), b.token_id.clone(), c.token_id.clone()]
        );
        assert!(p.verify_all().unwrap().hashes_ok());
        let mut unchained = fixed_provider("x").with_auto_chain(false);
        unchained.create(NewToken::new("a")).unwrap();
        assert_eq!(
            unchained.create(NewToken::new("b")).unwrap().parent_id,
            None
        );
    }

    #[test]
    fn hmac_key_seals_with_hmac() {
        let key = HmacKey::new(b"k".to_vec());
        let mut p = fixed_provider("x").with_hmac_key(key.clone());
        let t = p.create(NewToken::new("a")).unwrap();
        assert!(t.verify(Some(&key)));
        assert!(!t.verify(None));
        assert!(p.verify_all().unwrap().hashes_ok());
    }

    #[test]
    fn from_packet_maps_fields_and_real_zone() {
        let mut p = fixed_provider("jis:home:hub");
        let t = p.from_packet(&packet(), Some(&response())).unwrap();
        assert_eq!(t.action, "ping.intent");
        assert_eq!(t.actor, "jis:home:sensor");
        assert_eq!(
            t.erin,
            json!({"intent": "temperature.read", "purpose": "Thermostat check", "payload": {"celsius": 21.5}})
        );
        assert_eq!(t.eraan, ["jis:home:sensor", "jis:home:hub"]);
        assert_eq!(
            Value::Object(t.eromheen.clone()),
            json!({"routing_mode": "mesh", "hop_count": 2, "packet_id": "ping_0011223344556677", "pod_id": "pod-1", "decision": "pending", "trust_score": 0.5, "zone": "GEEL"})
        );
        assert_eq!(t.erachter, "Thermostat check");
        let mut bare = packet();
        bare.purpose.clear();
        bare.pod_id = None;
        let t = p.from_packet(&bare, None).unwrap();
        assert_eq!(t.erachter, "Ping from jis:home:sensor to jis:home:hub");
        assert_eq!(
            Value::Object(t.eromheen),
            json!({"routing_mode": "mesh", "hop_count": 2, "packet_id": "ping_0011223344556677"})
        );
    }

    #[test]
    fn heartbeat_state_change_find_export() {
        let mut p = fixed_provider("jis:home:hub");
        let hb = p.record_heartbeat("jis:s:1", Some("ok")).unwrap();
        assert_eq!(hb.erin, json!({"source": "jis:s:1", "status": "ok"}));
        assert_eq!(hb.erachter, "Heartbeat from jis:s:1");
        let sc = p
            .update_state(&hb.token_id, TokenState::Resolved, "")
            .unwrap()
            .unwrap();
        assert_eq!(sc.parent_id.as_deref(), Some(hb.token_id.as_str()));
        assert_eq!(sc.erachter, "State change: created -> resolved");
        assert_eq!(sc.erin["new_state"], "resolved");
        assert!(
            p.update_state("nope", TokenState::Resolved, "")
                .unwrap()
                .is_none()
        );
        p.record_heartbeat("jis:s:2", None).unwrap();
        let q = Query {
            action: Some("heartbeat".into()),
            limit: 1,
            ..Query::default()
        };
        let found = p.find(&q).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].actor, "jis:s:2");
        let jsonl = p.export(ExportFormat::Jsonl).unwrap();
        assert_eq!(jsonl.lines().count(), 3);
        let json: Vec<Token> =
            serde_json::from_str(&p.export(ExportFormat::Json).unwrap()).unwrap();
        assert_eq!(json.len(), 3);
        assert!(json.iter().all(|t| t.verify(None)));
        assert_eq!(p.get(&hb.token_id).unwrap().unwrap(), hb);
    }
}
