//! systemd integration of `listen` (`Type=notify`, see
//! `packaging/tibet-iot.service` and docs/OPERATIONS.md): `READY=1` once the
//! sockets are bound, `STOPPING=1` on shutdown, and `WATCHDOG=1` at half the
//! `WATCHDOG_USEC` interval while the node loop keeps running.
//!
//! Without `NOTIFY_SOCKET` every call is a no-op; a failed notification is
//! logged and never stops the node.

use std::time::Duration;

use sd_notify::NotifyState;

/// The watchdog interval asked for by the service manager, if any:
/// `WATCHDOG_USEC` when `WATCHDOG_PID` is unset or names this process.
pub(crate) fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.trim().parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Sends `state` to the service manager; whether it was sent (nothing is
/// without `NOTIFY_SOCKET`).
fn send(state: &[NotifyState<'_>]) -> bool {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return false;
    }
    match sd_notify::notify(false, state) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("systemd notification failed: {e}");
            false
        }
    }
}

/// Tells the service manager the node is up; `status` becomes the unit's
/// status line.
pub(crate) fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells the service manager the node is shutting down.
pub(crate) fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Keeps the watchdog fed.
pub(crate) fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_socket_means_no_op() {
        // NOTIFY_SOCKET is not set under cargo test (the notifications
        // themselves are tested against a socket in tests/ops.rs).
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            assert!(!send(&[NotifyState::Ready, NotifyState::Status("x")]));
            assert!(!send(&[NotifyState::Stopping]));
            assert!(!send(&[NotifyState::Watchdog]));
        }
    }
}
