//! [`MqttConfig`]: the broker an [`MqttUplink`](crate::MqttUplink) connects
//! to, as whom, and the topics it uses (docs/FLEETS.md).
//!
//! The broker URL is read by `rumqttc`'s own URL support (`TryFrom<Url>` for
//! its `MqttOptions`), after three checks of ours it does not make: the
//! scheme is `mqtt://` or `mqtts://` only (it also takes `tcp://`, `ws://`,
//! ...), the URL has no path (it ignores one, so a typo would pass), and
//! the only option in the query is `client_id` (its other options, such as
//! `keep_alive_secs`, would be overridden by the bridge's own settings).
//! It needs a `client_id`; without one in the URL the node's default is
//! used. An IPv6 host comes out of it bracketed (`[::1]`), which a socket
//! address lookup does not take, so the host is taken from the parsed URL.

use rumqttc::v5::MqttOptions;

use crate::error::MqttConfigError;

/// The default topic prefix.
pub const DEFAULT_PREFIX: &str = "tibet/v1";

/// Where and how the uplink bridge connects. Built from a URL with
/// [`MqttConfig::new`], then adjusted with the `with_*` methods.
///
/// ```
/// use tibet_iot_ops::MqttConfig;
///
/// let c = MqttConfig::new("mqtt://site-a:s3cret@broker.lan", "jis:site-a:hub").unwrap();
/// assert_eq!((c.host(), c.port(), c.tls()), ("broker.lan", 1883, false));
/// assert_eq!(c.client_id(), "tibet-jis-site-a-hub");
/// assert_eq!(c.user(), Some("site-a"));
/// assert!(!format!("{c:?}").contains("s3cret"));
/// let c = MqttConfig::new("mqtts://[::1]:8884?client_id=hub-1", "jis:site-a:hub").unwrap();
/// assert_eq!((c.host(), c.port(), c.tls(), c.client_id()), ("::1", 8884, true, "hub-1"));
/// assert!(MqttConfig::new("tcp://broker.lan", "jis:site-a:hub").is_err());
/// ```
#[derive(Clone)]
pub struct MqttConfig {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: bool,
    pub(crate) client_id: String,
    pub(crate) tls_ca: Option<Vec<u8>>,
    /// The client's certificate chain and private key (PEM), for brokers
    /// that authenticate clients by certificate.
    pub(crate) tls_client: Option<(Vec<u8>, Vec<u8>)>,
    pub(crate) credentials: Option<(String, String)>,
    pub(crate) prefix: String,
    pub(crate) own_did: String,
    pub(crate) events: bool,
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        f.debug_struct("MqttConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("tls", &self.tls)
            .field("user", &self.user())
            .field("prefix", &self.prefix)
            .field("own_did", &self.own_did)
            .field("events", &self.events)
            .finish()
    }
}

impl MqttConfig {
    /// The broker at `url` (`mqtt://[USER:PASSWORD@]HOST[:PORT]`, port 1883,
    /// or `mqtts://`, port 8883 and TLS; `?client_id=ID` optional) for the
    /// node `own_did`, with the default prefix and client id
    /// (`tibet-` and the DID with `:` as `-`). Characters of the user or
    /// password outside a URL's user part are written `%XX`.
    pub fn new(url: &str, own_did: &str) -> Result<Self, MqttConfigError> {
        let broker = parse_url(url)?;
        if !topic_safe(own_did) {
            return Err(MqttConfigError::Did(own_did.to_owned()));
        }
        Ok(MqttConfig {
            host: broker.host,
            port: broker.port,
            tls: broker.tls,
            client_id: broker
                .client_id
                .unwrap_or_else(|| format!("tibet-{}", own_did.replace(':', "-"))),
            tls_ca: None,
            tls_client: None,
            credentials: broker.credentials,
            prefix: DEFAULT_PREFIX.to_owned(),
            own_did: own_did.to_owned(),
            events: false,
        })
    }

    /// Connects as `client_id`.
    pub fn with_client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = client_id.into();
        self
    }

    /// Logs in as `user` with `password` (replacing any from the URL).
    pub fn with_credentials(
        mut self,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// Uses TLS also for an `mqtt://` URL (an `mqtts://` URL always does).
    pub fn with_tls(mut self, tls: bool) -> Self {
        self.tls |= tls;
        self
    }

    /// Trusts the CA certificate `pem` (PEM) for the broker's TLS
    /// certificate; TLS needs one.
    pub fn with_ca_pem(mut self, pem: Vec<u8>) -> Self {
        self.tls_ca = Some(pem);
        self
    }

    /// Presents the client certificate chain `cert_pem` with its private
    /// key `key_pem` (PEM) to a broker that authenticates clients by
    /// certificate; needs TLS.
    pub fn with_client_auth(mut self, cert_pem: Vec<u8>, key_pem: Vec<u8>) -> Self {
        self.tls_client = Some((cert_pem, key_pem));
        self
    }

    /// Puts the topics under `prefix` (a trailing `/` is dropped).
    pub fn with_topic_prefix(mut self, prefix: &str) -> Result<Self, MqttConfigError> {
        let prefix = prefix.trim_end_matches('/');
        if prefix.is_empty() || prefix.contains(['+', '#', '\0']) {
            return Err(MqttConfigError::Prefix(prefix.to_owned()));
        }
        self.prefix = prefix.to_owned();
        Ok(self)
    }

    /// Also publishes each decided ping to `PREFIX/events/<own DID>`
    /// (see [`MqttUplink::publish_event`](crate::MqttUplink::publish_event)).
    pub fn with_events(mut self, events: bool) -> Self {
        self.events = events;
        self
    }

    /// Whether the bridge can start with this: TLS needs a CA certificate,
    /// a client certificate needs TLS.
    pub fn check(&self) -> Result<(), MqttConfigError> {
        if self.tls && self.tls_ca.is_none() {
            return Err(MqttConfigError::TlsWithoutCa);
        }
        if self.tls_client.is_some() && self.tls_ca.is_none() {
            return Err(MqttConfigError::ClientAuthWithoutTls);
        }
        Ok(())
    }

    /// Whether it presents a client certificate.
    pub fn client_auth(&self) -> bool {
        self.tls_client.is_some()
    }

    /// The broker's host name or address (an IPv6 address without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The broker's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the connection uses TLS.
    pub fn tls(&self) -> bool {
        self.tls
    }

    /// The MQTT client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The user name, when the bridge logs in.
    pub fn user(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.0.as_str())
    }

    /// The topic prefix, without a trailing `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The node's DID: its topics are `PREFIX/ping/<DID>` and
    /// `PREFIX/response/<DID>`.
    pub fn own_did(&self) -> &str {
        &self.own_did
    }

    /// Whether decided pings are published to the events topic.
    pub fn events(&self) -> bool {
        self.events
    }

    pub(crate) fn topic(&self, kind: crate::mqtt::Kind, did: &str) -> String {
        format!("{}/{}/{did}", self.prefix, kind.word())
    }
}

/// What the URL says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Broker {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: bool,
    pub(crate) credentials: Option<(String, String)>,
    pub(crate) client_id: Option<String>,
}

/// Reads a broker URL (module docs).
pub(crate) fn parse_url(url: &str) -> Result<Broker, MqttConfigError> {
    let bad = |reason: &str| MqttConfigError::Url {
        url: without_password(url),
        reason: reason.to_owned(),
    };
    let tls = if url.starts_with("mqtt://") {
        false
    } else if url.starts_with("mqtts://") {
        true
    } else {
        return Err(bad("the scheme must be mqtt:// or mqtts://"));
    };
    let mut parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.path(), "" | "/") || parsed.fragment().is_some() {
        return Err(bad("a broker URL has no path"));
    }
    let host = match parsed.host() {
        Some(url::Host::Ipv6(a)) => a.to_string(),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    if parsed.port() == Some(0) {
        return Err(bad("port 0"));
    }
    let mut client_id = None;
    for (key, value) in parsed.query_pairs() {
        if key != "client_id" {
            return Err(bad(&format!("unknown option '{key}'")));
        }
        client_id = Some(value.into_owned());
    }
    if client_id.is_none() {
        // rumqttc needs one; the caller's default replaces it.
        parsed.query_pairs_mut().append_pair("client_id", "tibet");
    }
    let options = MqttOptions::try_from(parsed).map_err(|e| bad(&e.to_string()))?;
    let credentials = options
        .credentials()
        .map(|(user, pass)| (percent_decoded(&user), percent_decoded(&pass)));
    Ok(Broker {
        host,
        port: options.broker_address().1,
        tls,
        credentials,
        client_id,
    })
}

/// `%XX` sequences of a URL's user part as the bytes they stand for (the
/// URL keeps them encoded).
fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `url` with the password of its user part left out, for messages.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((user, host)) => {
            let user = user.split_once(':').map_or(user, |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

/// Whether `did` can be one level of a topic (no `/`, `+`, `#`, NUL, not empty).
pub(crate) fn topic_safe(did: &str) -> bool {
    !did.is_empty() && !did.contains(['/', '+', '#', '\0']) && did.len() <= 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(host: &str, port: u16, tls: bool) -> Broker {
        Broker {
            host: host.into(),
            port,
            tls,
            credentials: None,
            client_id: None,
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtt://broker.lan").unwrap(),
            broker("broker.lan", 1883, false)
        );
        assert_eq!(
            parse_url("mqtts://10.0.0.2:9999/").unwrap(),
            broker("10.0.0.2", 9999, true)
        );
        assert_eq!(
            parse_url("mqtts://broker.lan").unwrap(),
            broker("broker.lan", 8883, true)
        );
        assert_eq!(
            parse_url("mqtt://[::1]:1884").unwrap(),
            broker("::1", 1884, false)
        );
        let b = parse_url("mqtt://site-a:p%40ss:w@h:2000?client_id=hub-1").unwrap();
        assert_eq!(b.credentials, Some(("site-a".into(), "p@ss:w".into())));
        assert_eq!(b.client_id.as_deref(), Some("hub-1"));
        assert_eq!((b.host.as_str(), b.port), ("h", 2000));
        let b = parse_url("mqtt://u@h").unwrap();
        assert_eq!(b.credentials, Some(("u".into(), String::new())));
        for bad in [
            "http://x",
            "tcp://broker",
            "mqtt://",
            "mqtt://h:port",
            "mqtt://h:0",
            "mqtt://h/x",
            "mqtt://h?keep_alive_secs=5",
            "broker:1883",
        ] {
            let e = parse_url(bad).unwrap_err();
            assert!(e.to_string().starts_with("bad MQTT URL"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_bad_url_is_shown_without_its_password() {
        let e = parse_url("mqtt://site-a:s3cret@h:port").unwrap_err();
        let text = e.to_string();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("mqtt://site-a:***@h:port"), "{text}");
    }

    #[test]
    fn dids_with_wildcards_never_become_topics() {
        assert!(topic_safe("jis:site-b:lock"));
        for bad in ["", "a/b", "a+", "#", "a\0"] {
            assert!(!topic_safe(bad), "{bad:?}");
        }
        assert!(matches!(
            MqttConfig::new("mqtt://h", "jis:a/b"),
            Err(MqttConfigError::Did(_))
        ));
    }

    #[test]
    fn prefix_tls_and_topics() {
        let c = MqttConfig::new("mqtt://h", "jis:site-a:hub").unwrap();
        assert_eq!(
            c.topic(crate::mqtt::Kind::Ping, "jis:b:lock"),
            "tibet/v1/ping/jis:b:lock"
        );
        let c = c.with_topic_prefix("acme/fleet/").unwrap();
        assert_eq!(c.prefix(), "acme/fleet");
        assert!(c.clone().with_topic_prefix("a/+").is_err());
        assert!(c.clone().with_topic_prefix("/").is_err());
        c.check().unwrap();
        let tls = c.with_tls(true);
        assert!(matches!(tls.check(), Err(MqttConfigError::TlsWithoutCa)));
        tls.with_ca_pem(b"pem".to_vec()).check().unwrap();
        let bare = MqttConfig::new("mqtt://broker.lan", "jis:site-a:hub").unwrap();
        let auth = bare.with_client_auth(b"cert".to_vec(), b"key".to_vec());
        assert!(matches!(
            auth.check(),
            Err(MqttConfigError::ClientAuthWithoutTls)
        ));
        auth.with_ca_pem(b"pem".to_vec()).check().unwrap();
    }
}
