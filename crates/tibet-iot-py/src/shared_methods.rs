//! [`pymethods_with_shared!`]: the `#[pymethods]` block of a class with
//! methods whose Python signature other classes share: `send_ping` and
//! `send_heartbeat` (`_native.Node` and `_native.RequestSocket`) and
//! `vouch` (`_native.Node` and `PingNode`). The signature, its defaults
//! and the parsing of the arguments are written once here; each class
//! writes only what it does with the parsed arguments.
//!
//! A macro that writes the whole block (the class's own methods as they
//! are, then the shared ones), for the reason `fields.rs` gives: one
//! `#[pymethods]` block per class, and no macro expanded inside it.

/// Writes `#[pymethods] impl Class { .. }`: the methods inside the `impl`
/// braces as they are, then each shared method listed after them, with its
/// doc comment:
///
/// - `send_ping(&self, bridge, target, addr, intent, purpose, options) { .. }`:
///   `Node.send_ping`'s signature (`bridge, target, addr, intent, purpose,
///   ping_type, priority, routing_mode, payload=None, timeout=None,
///   pod_id=None, station_id=None, max_hops=None`); the body sees `target`,
///   `intent` and `purpose` as `&str`, `addr` as a `SocketAddr` and
///   `options` as the `SendOptions`, and returns the outcome id
///   (`PyResult<u64>`).
/// - `send_heartbeat(&self, bridge, target, addr, status) { .. }`:
///   `Node.send_heartbeat`'s signature (`bridge, target, addr,
///   status=None`); the body sees `target` as `&str`, `addr` as a
///   `SocketAddr` and `status` as an `Option<JsonMap>` (`None` for `None`),
///   and returns the outcome id.
/// - `vouch(&self or &mut self, py, vouched_dids, options) { .. }`: the
///   reference's `vouch(vouched_dids, vouch_factor=0.7, my_trust=0.9,
///   pod_id=None, reason="")`; the body sees the DIDs (checked) and the
///   `VouchOptions` and gives the core's `Result<Vouch, E>`; the method
///   returns the `Vouch` record or raises `VouchError`.
///
/// The argument names are the Python keyword names, as written above.
macro_rules! pymethods_with_shared {
    (impl $class:ident { $($own:tt)* } $($shared:tt)*) => {
        $crate::shared_methods::pymethods_with_shared!(@add $class [$($own)*] $($shared)*);
    };
    (
        @add $class:ident [$($methods:tt)*]
        $(#[$doc:meta])*
        send_ping(
            &$this:ident, $bridge:ident, $target:ident, $addr:ident, $intent:ident, $purpose:ident,
            $options:ident $(,)?
        ) $body:block
        $($rest:tt)*
    ) => {
        $crate::shared_methods::pymethods_with_shared!(@add $class [
            $($methods)*

            $(#[$doc])*
            #[pyo3(signature = ($bridge, $target, $addr, $intent, $purpose, ping_type, priority,
                routing_mode, payload=None, timeout=None, pod_id=None, station_id=None, max_hops=None))]
            #[allow(clippy::too_many_arguments)]
            fn send_ping<'py>(
                &$this,
                $bridge: &$crate::bridge::Bridge,
                $target: &str,
                $addr: &::pyo3::Bound<'py, ::pyo3::PyAny>,
                $intent: &str,
                $purpose: &str,
                ping_type: &::pyo3::Bound<'py, ::pyo3::PyAny>,
                priority: &::pyo3::Bound<'py, ::pyo3::PyAny>,
                routing_mode: &::pyo3::Bound<'py, ::pyo3::PyAny>,
                payload: Option<&::pyo3::Bound<'py, ::pyo3::PyAny>>,
                timeout: Option<f64>,
                pod_id: Option<String>,
                station_id: Option<String>,
                max_hops: Option<u32>,
            ) -> ::pyo3::PyResult<u64> {
                let $addr = $crate::config::addr_arg($addr)?;
                let (ping_type, priority, routing_mode, payload) =
                    $crate::packet::ping_args(ping_type, priority, routing_mode, payload)?;
                let $options = ::tibet_iot::SendOptions {
                    ping: ::tibet_ping::PingOptions {
                        ping_type, priority, routing_mode, payload, pod_id, station_id, max_hops,
                    },
                    timeout: timeout.map(|t| $crate::config::seconds("timeout", t)).transpose()?,
                    retransmit: None,
                };
                $body
            }
        ] $($rest)*);
    };
    (
        @add $class:ident [$($methods:tt)*]
        $(#[$doc:meta])*
        send_heartbeat(&$this:ident, $bridge:ident, $target:ident, $addr:ident, $status:ident $(,)?)
            $body:block
        $($rest:tt)*
    ) => {
        $crate::shared_methods::pymethods_with_shared!(@add $class [
            $($methods)*

            $(#[$doc])*
            #[pyo3(signature = ($bridge, $target, $addr, $status=None))]
            fn send_heartbeat<'py>(
                &$this,
                $bridge: &$crate::bridge::Bridge,
                $target: &str,
                $addr: &::pyo3::Bound<'py, ::pyo3::PyAny>,
                $status: Option<&::pyo3::Bound<'py, ::pyo3::PyAny>>,
            ) -> ::pyo3::PyResult<u64> {
                let $addr = $crate::config::addr_arg($addr)?;
                let $status = $status
                    .filter(|s| !s.is_none())
                    .map($crate::convert::map_from_py)
                    .transpose()?;
                $body
            }
        ] $($rest)*);
    };
    (
        @add $class:ident [$($methods:tt)*]
        $(#[$doc:meta])*
        vouch(&$($receiver:ident)+, $py:ident, $dids:ident, $options:ident $(,)?) $body:block
        $($rest:tt)*
    ) => {
        $crate::shared_methods::pymethods_with_shared!(@add $class [
            $($methods)*

            $(#[$doc])*
            #[pyo3(signature = ($dids, vouch_factor=0.7, my_trust=0.9, pod_id=None, reason=String::new()))]
            fn vouch<'py>(
                &$($receiver)+,
                $py: ::pyo3::Python<'py>,
                $dids: Vec<String>,
                vouch_factor: f64,
                my_trust: f64,
                pod_id: Option<String>,
                reason: String,
            ) -> ::pyo3::PyResult<::pyo3::Bound<'py, ::pyo3::PyAny>> {
                let $options =
                    $crate::records::vouch_options(&$dids, vouch_factor, my_trust, pod_id, reason)?;
                let vouch = $body.map_err(|e| {
                    $crate::pytypes::error($crate::pytypes::ErrorKind::Vouch, e.to_string())
                })?;
                $crate::records::vouch_record($py, &vouch)
            }
        ] $($rest)*);
    };
    (@add $class:ident [$($methods:tt)*]) => {
        #[::pyo3::pymethods]
        impl $class {
            $($methods)*
        }
    };
}

pub(crate) use pymethods_with_shared;
