//! Validating what a person types: DIDs, `HOST:PORT`, `DID=SCORE`, JSON
//! payloads. Every error is one line that names the bad input and says what
//! is expected, so a person can act on it.

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, ToSocketAddrs};

use anyhow::{Context, Result, anyhow, bail};
use tibet_ping::{BROADCAST, JsonMap};

/// Checks a JIS DID (`jis:home:hub`, see [`tibet_iot_cli::validate::did`]).
pub(crate) fn did(s: &str) -> Result<String> {
    tibet_iot_cli::validate::did(s).map_err(anyhow::Error::msg)?;
    Ok(s.to_owned())
}

/// A DID as the target of a ping: a JIS DID or `broadcast`.
pub(crate) fn target_did(s: &str) -> Result<String> {
    if s == BROADCAST {
        return Ok(s.to_owned());
    }
    did(s)
}

/// Resolves `HOST:PORT` (IPv4, `[IPv6]`, `[IPv6%SCOPE]` with an interface
/// name or index as the scope, e.g. `[fe80::1%eth0]:7150`, or a host name)
/// to one address.
pub(crate) fn host_port(s: &str) -> Result<SocketAddr> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Some(addr) = scoped(s)? {
        return Ok(addr);
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        bail!("invalid address '{s}': expected HOST:PORT (e.g. 127.0.0.1:7150)");
    };
    if host.is_empty() {
        bail!("invalid address '{s}': the host is empty; expected HOST:PORT (e.g. 127.0.0.1:7150)");
    }
    let port: u16 = port.parse().map_err(|_| {
        anyhow!("invalid address '{s}': port '{port}' is not a number from 0 to 65535")
    })?;
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| anyhow!("invalid address '{s}': cannot resolve host '{host}': {e}"))?
        .collect();
    // Prefer an IPv4 address of the host: a node bound to an IPv4 address
    // reaches only those, a dual-stack one either.
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| anyhow!("invalid address '{s}': host '{host}' has no address"))
}

/// `[IPv6%SCOPE]:PORT` (std's parser takes no scope), or `None` when `s`
/// has no scope.
fn scoped(s: &str) -> Result<Option<SocketAddr>> {
    let Some((inside, port)) = s.strip_prefix('[').and_then(|r| r.split_once("]:")) else {
        return Ok(None);
    };
    let Some((ip, scope)) = inside.split_once('%') else {
        return Ok(None);
    };
    let ip: Ipv6Addr = ip
        .parse()
        .map_err(|_| anyhow!("invalid address '{s}': '{ip}' is not an IPv6 address"))?;
    let port: u16 = port.parse().map_err(|_| {
        anyhow!("invalid address '{s}': port '{port}' is not a number from 0 to 65535")
    })?;
    let scope_id = match scope.parse::<u32>() {
        Ok(index) => index,
        Err(_) => tibet_iot::interface_index(scope).map_err(|e| {
            anyhow!("invalid address '{s}': no interface '{scope}' on this machine ({e})")
        })?,
    };
    Ok(Some(SocketAddr::V6(SocketAddrV6::new(
        ip, port, 0, scope_id,
    ))))
}

/// One `DID=SCORE` trust entry; the score must be within 0..=1.
pub(crate) fn trust_entry(s: &str) -> Result<(String, f64)> {
    let Some((d, score)) = s.rsplit_once('=') else {
        bail!("invalid trust entry '{s}': expected DID=SCORE (e.g. jis:home:sensor=0.9)");
    };
    let d = did(d).with_context(|| format!("invalid trust entry '{s}'"))?;
    Ok((
        d,
        score_value(score).with_context(|| format!("invalid trust entry '{s}'"))?,
    ))
}

/// A trust score: a number within 0..=1.
pub(crate) fn score_value(s: &str) -> Result<f64> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| anyhow!("trust score '{s}' is not a number"))?;
    check_score(v).map_err(|e| anyhow!("trust score {e}"))
}

/// Checks that a score is a finite number within 0..=1.
pub(crate) use tibet_iot_cli::validate::score as check_score;

/// A `--payload` argument: a JSON object.
pub(crate) fn payload(s: &str) -> Result<JsonMap> {
    let value: serde_json::Value = serde_json::from_str(s).map_err(|e| {
        anyhow!("invalid JSON payload: {e} (expected an object like '{{\"unit\":\"C\"}}')")
    })?;
    match value {
        serde_json::Value::Object(map) => Ok(map),
        other => bail!(
            "invalid JSON payload: expected an object like '{{\"unit\":\"C\"}}', got {}",
            kind(&other)
        ),
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A duration in seconds, positive and finite (`--timeout 2.5`).
pub(crate) fn seconds(s: &str) -> Result<std::time::Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if v.is_finite() && v > 0.0 && v < 1e9 {
        Ok(std::time::Duration::from_secs_f64(v))
    } else {
        Err(format!("'{s}' must be a positive number of seconds"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dids() {
        assert!(did("jis:home:hub").is_ok());
        assert!(did("jis:x").is_ok());
        for bad in [
            "home:hub",
            "jis:",
            "jis:home:",
            "jis::hub",
            "jis:a b",
            "broadcast",
        ] {
            let e = did(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
        assert_eq!(target_did("broadcast").unwrap(), "broadcast");
        assert!(target_did("jis:a").is_ok());
    }

    #[test]
    fn addresses() {
        assert_eq!(host_port("127.0.0.1:7150").unwrap().port(), 7150);
        assert!(host_port("[::1]:9").unwrap().is_ipv6());
        let local = host_port("localhost:7150").unwrap();
        assert_eq!(local.port(), 7150);
        assert!(local.ip().is_loopback() && local.is_ipv4(), "{local}");
        let e = host_port("127.0.0.1").unwrap_err().to_string();
        assert!(e.contains("expected HOST:PORT"), "{e}");
        let e = host_port("127.0.0.1:99999").unwrap_err().to_string();
        assert!(e.contains("99999"), "{e}");
        assert!(host_port(":7150").is_err());
        let scoped = host_port("[fe80::1%lo]:7150").unwrap();
        assert_eq!(
            scoped.to_string(),
            "[fe80::1%1]:7150",
            "the name as its index"
        );
        assert_eq!(
            host_port("[fe80::1%3]:9").unwrap().to_string(),
            "[fe80::1%3]:9"
        );
        let e = host_port("[fe80::1%nosuchif9]:7150")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no interface 'nosuchif9'"), "{e}");
        let e = host_port("[fe80::zz%lo]:7150").unwrap_err().to_string();
        assert!(e.contains("not an IPv6 address"), "{e}");
    }

    #[test]
    fn trust_entries() {
        assert_eq!(trust_entry("jis:a:b=0.9").unwrap(), ("jis:a:b".into(), 0.9));
        assert!(trust_entry("jis:a:b").is_err());
        let e = format!("{:#}", trust_entry("jis:a:b=1.5").unwrap_err());
        assert!(e.contains("outside 0..1"), "{e}");
        let e = format!("{:#}", trust_entry("nope=0.5").unwrap_err());
        assert!(e.contains("jis:"), "{e}");
    }

    #[test]
    fn payloads() {
        assert_eq!(payload(r#"{"a":1}"#).unwrap()["a"], 1);
        assert!(
            payload("{")
                .unwrap_err()
                .to_string()
                .contains("invalid JSON payload")
        );
        assert!(payload("[1]").unwrap_err().to_string().contains("an array"));
    }

    #[test]
    fn secs() {
        assert_eq!(seconds("1.5").unwrap().as_millis(), 1500);
        assert!(seconds("0").is_err());
        assert!(seconds("x").is_err());
        assert!(seconds("-1").is_err());
    }
}
