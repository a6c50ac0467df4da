//! The local control socket of a running `listen`: how an operator reviews
//! GEEL (pending) pings.
//!
//! A Unix stream socket, mode 0600, that only accepts peers running as the
//! socket's owner. The protocol is line-delimited JSON: the client writes one
//! request object per line and reads one response object per line.
//!
//! ```text
//! -> {"op":"list"}
//! <- {"ok":true,"pending":[{"id":"ping_…","source_did":"jis:…","intent":"…","purpose":"…","trust":0.5,"zone":"GEEL","received_at":"…"}]}
//! -> {"op":"approve","id":"ping_…","trust":0.9}
//! <- {"ok":true,"item":{…}}
//! -> {"op":"reject","id":"ping_…"}
//! <- {"ok":false,"error":"no pending ping with id ping_…"}
//! -> {"op":"stats"}
//! <- {"ok":true,"stats":{…}}
//! ```
//!
//! Unknown keys in a request are ignored. A line longer than [`MAX_LINE`] bytes closes the connection; at most
//! [`MAX_CONNECTIONS`] clients are served at once (others are refused).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// Longest request line accepted.
pub(crate) const MAX_LINE: usize = 64 * 1024;
/// Clients served at the same time.
pub(crate) const MAX_CONNECTIONS: usize = 16;

/// One request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub(crate) enum Request {
    /// The pending pings.
    List,
    /// Accept a pending ping; optionally set the sender's trust.
    Approve {
        /// The pending ping's packet id.
        id: String,
        /// New trust score for the sender (0..1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trust: Option<f64>,
    },
    /// Drop a pending ping.
    Reject {
        /// The pending ping's packet id.
        id: String,
    },
    /// The node's counters.
    Stats,
    /// The peer table (for `tibet-iot status`).
    Peers,
}

/// A pending ping as shown to the operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PendingItem {
    /// Packet id; the handle for approve/reject.
    pub(crate) id: String,
    /// Who sent it.
    pub(crate) source_did: String,
    /// What it wants.
    pub(crate) intent: String,
    /// Why.
    pub(crate) purpose: String,
    /// The sender's trust when it arrived.
    pub(crate) trust: f64,
    /// The zone it was put in.
    pub(crate) zone: String,
    /// When it arrived (ISO 8601).
    pub(crate) received_at: String,
}

/// One response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub(crate) struct Response {
    /// Whether the request succeeded.
    pub(crate) ok: bool,
    /// Why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// For `list`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pending: Option<Vec<PendingItem>>,
    /// For `approve` / `reject`: the item acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) item: Option<PendingItem>,
    /// For `stats`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) stats: Option<serde_json::Value>,
    /// For `peers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) peers: Option<Vec<crate::status::PeerItem>>,
}

impl Response {
    /// A failure with a message.
    pub(crate) fn error(msg: impl Into<String>) -> Self {
        Response {
            ok: false,
            error: Some(msg.into()),
            ..Default::default()
        }
    }
}

/// A request waiting for the node's answer.
pub(crate) struct Call {
    /// What was asked.
    pub(crate) request: Request,
    /// Where the answer goes.
    pub(crate) reply: oneshot::Sender<Response>,
}

/// The bound socket; removes its file when dropped.
pub(crate) struct ControlServer {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the control socket at `path` (mode 0600) and returns the calls
/// it receives. A stale socket file (nobody listening) is replaced; a live
/// one is an error.
pub(crate) fn serve(path: &Path) -> Result<(ControlServer, mpsc::Receiver<Call>)> {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!(
                "control socket {} is in use by another process",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale control socket {}", path.display()))?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("cannot bind control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot set permissions of {}", path.display()))?;
    let owner = std::fs::metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?
        .uid();
    let (tx, rx) = mpsc::channel(64);
    let active = Arc::new(AtomicUsize::new(0));
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            match stream.peer_cred() {
                Ok(cred) if cred.uid() == owner || cred.uid() == 0 => {}
                _ => {
                    tracing::warn!("control socket: refused a peer of another user");
                    continue;
                }
            }
            if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                tracing::warn!("control socket: too many clients, refused one");
                continue;
            }
            active.fetch_add(1, Ordering::Relaxed);
            let tx = tx.clone();
            let active = active.clone();
            tokio::spawn(async move {
                if let Err(e) = connection(stream, tx).await {
                    tracing::debug!("control connection ended: {e}");
                }
                active.fetch_sub(1, Ordering::Relaxed);
            });
        }
    });
    Ok((
        ControlServer {
            path: path.to_owned(),
            task,
        },
        rx,
    ))
}

async fn connection(stream: UnixStream, tx: mpsc::Sender<Call>) -> Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = tokio::io::BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut read)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        if line.len() > MAX_LINE {
            let mut out = serde_json::to_vec(&Response::error("request line too long"))?;
            out.push(b'\n');
            write.write_all(&out).await?;
            bail!("request line too long");
        }
        let response = match serde_json::from_slice::<Request>(&line) {
            Err(e) => Response::error(format!("bad request: {e}")),
            Ok(request) => {
                let (reply, answer) = oneshot::channel();
                if tx.send(Call { request, reply }).await.is_err() {
                    Response::error("node is shutting down")
                } else {
                    answer
                        .await
                        .unwrap_or_else(|_| Response::error("node is shutting down"))
                }
            }
        };
        let mut out = serde_json::to_vec(&response)?;
        out.push(b'\n');
        write.write_all(&out).await?;
    }
}

/// Sends one request to the socket at `path` and reads the answer.
pub(crate) fn call(path: &Path, request: &Request) -> Result<Response> {
    let mut stream = std::os::unix::net::UnixStream::connect(path).with_context(|| {
        format!(
            "cannot connect to control socket {} (is `tibet-iot listen --control` running?)",
            path.display()
        )
    })?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stream
        .write_all(&line)
        .context("cannot write to control socket")?;
    let mut reader = BufReader::new(stream);
    let mut answer = String::new();
    reader
        .read_line(&mut answer)
        .context("cannot read from control socket")?;
    if answer.is_empty() {
        bail!("control socket {} closed without answering", path.display());
    }
    serde_json::from_str(&answer).context("control socket sent a malformed answer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_form() {
        let r: Request =
            serde_json::from_str(r#"{"op":"approve","id":"ping_1","trust":0.9}"#).unwrap();
        assert_eq!(
            r,
            Request::Approve {
                id: "ping_1".into(),
                trust: Some(0.9)
            }
        );
        assert_eq!(
            serde_json::to_string(&Request::List).unwrap(),
            r#"{"op":"list"}"#
        );
        assert!(serde_json::from_str::<Request>(r#"{"op":"explode"}"#).is_err());
    }

    #[tokio::test]
    async fn serves_requests_over_a_private_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let (server, mut calls) = serve(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A second server on the same live socket is refused.
        assert!(serve(&path).is_err());
        tokio::spawn(async move {
            while let Some(call) = calls.recv().await {
                let resp = match call.request {
                    Request::Reject { id } => {
                        Response::error(format!("no pending ping with id {id}"))
                    }
                    _ => Response {
                        ok: true,
                        pending: Some(vec![]),
                        ..Default::default()
                    },
                };
                let _ = call.reply.send(resp);
            }
        });
        let p = path.clone();
        let (list, reject, garbage) = tokio::task::spawn_blocking(move || {
            let list = call(&p, &Request::List).unwrap();
            let reject = call(
                &p,
                &Request::Reject {
                    id: "ping_x".into(),
                },
            )
            .unwrap();
            let mut s = std::os::unix::net::UnixStream::connect(&p).unwrap();
            s.write_all(b"not json\n").unwrap();
            let mut a = String::new();
            BufReader::new(s).read_line(&mut a).unwrap();
            (list, reject, a)
        })
        .await
        .unwrap();
        assert!(list.ok);
        assert_eq!(list.pending, Some(vec![]));
        assert!(!reject.ok);
        assert!(reject.error.unwrap().contains("ping_x"));
        assert!(garbage.contains("bad request"), "{garbage}");
        drop(server);
        assert!(!path.exists());
    }
}
