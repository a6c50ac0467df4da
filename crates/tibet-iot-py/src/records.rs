//! The plain records handed to Python (`tibet_iot._types`: `Vouch`,
//! `PendingPing`) and the `AirlockRule` read from it, shared by `IoTNode`
//! and `PingNode`.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use tibet_ping::{AirlockRule, Glob, RulePattern, VouchOptions};

use crate::config::check_did;
use crate::convert::serialize_to_py;
use crate::packet::{PyPingPacket, ping_type_arg, zone_arg};
use crate::pytypes::{ErrorKind, error, record};

/// A `tibet_iot.Vouch` from the engine's vouch.
pub(crate) fn vouch_record<'py>(
    py: Python<'py>,
    vouch: &tibet_ping::Vouch,
) -> PyResult<Bound<'py, PyAny>> {
    let d = serialize_to_py(py, vouch)?;
    let d = d.downcast_into::<PyDict>()?;
    d.del_item("computed_trust")?;
    record(py, "Vouch", &d)
}

/// A `tibet_iot.PendingPing` from the engine's.
pub(crate) fn pending_record<'py>(
    py: Python<'py>,
    p: tibet_ping::PendingPing,
) -> PyResult<Bound<'py, PyAny>> {
    let kw = PyDict::new(py);
    kw.set_item("sender_trust", p.sender_trust)?;
    kw.set_item("reason", &p.reason)?;
    kw.set_item("rule", &p.rule)?;
    kw.set_item("queued_at", p.queued_at.to_iso())?;
    kw.set_item("packet", PyPingPacket { inner: p.packet })?;
    record(py, "PendingPing", &kw)
}

/// An `AirlockRule` (the reference's attributes: rule_id, name, pattern,
/// zone, priority; `decision` follows from the zone).
pub(crate) fn rule_arg(rule: &Bound<'_, PyAny>) -> PyResult<AirlockRule> {
    let rule_id: String = rule.getattr("rule_id")?.extract()?;
    let name: String = rule.getattr("name")?.extract()?;
    let zone = zone_arg(&rule.getattr("zone")?)?;
    let priority: i32 = match rule.getattr("priority") {
        Ok(p) if !p.is_none() => p.extract()?,
        _ => tibet_ping::DEFAULT_RULE_PRIORITY,
    };
    let pattern_obj = rule.getattr("pattern")?;
    let pattern_dict = pattern_obj.downcast::<PyDict>().map_err(|_| {
        error(
            ErrorKind::Config,
            format!("rule {rule_id}: pattern must be a dict"),
        )
    })?;
    let mut pattern = RulePattern::default();
    for (k, v) in pattern_dict.iter() {
        let key: String = k.extract()?;
        match key.as_str() {
            "source_did" => pattern.source_did = Some(Glob::new(v.extract::<String>()?)),
            "intent" => pattern.intent = Some(Glob::new(v.extract::<String>()?)),
            "pod_id" => pattern.pod_id = Some(v.extract()?),
            "ping_type" => pattern.ping_type = Some(ping_type_arg(&v)?),
            "min_trust" => {
                let text = v.str()?.to_string();
                let m: f64 = text.trim().parse().map_err(|_| {
                    error(
                        ErrorKind::Config,
                        format!("rule {rule_id}: min_trust {text:?} is not a number"),
                    )
                })?;
                pattern.min_trust = Some(m);
            }
            other => {
                return Err(error(
                    ErrorKind::Config,
                    format!(
                        "rule {rule_id}: unknown pattern key {other:?} (source_did, intent, pod_id, ping_type, min_trust)"
                    ),
                ));
            }
        }
    }
    Ok(AirlockRule::new(rule_id, name, pattern, zone).with_priority(priority))
}

/// The reference's `vouch(...)` arguments, checked: the DIDs and the
/// options.
pub(crate) fn vouch_options(
    vouched_dids: &[String],
    vouch_factor: f64,
    my_trust: f64,
    pod_id: Option<String>,
    reason: String,
) -> PyResult<VouchOptions> {
    for d in vouched_dids {
        check_did(d)?;
    }
    Ok(VouchOptions {
        vouch_factor,
        my_trust,
        pod_id,
        reason,
        expires_at: None,
    })
}
