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
//! [`MAX_CONNECTIONS`] clients are served at once (others get one JSON error
//! line and are closed), and a client that sends nothing for
//! [`IDLE_TIMEOUT`] is closed, so idle clients cannot lock the operator out.
//!
//! `serve` only ever replaces a stale socket (a socket file nobody listens
//! on); a regular file, a directory, a symlink or a live socket at the path
//! is an error and is left untouched.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// Longest request line accepted.
pub(crate) const MAX_LINE: usize = 64 * 1024;
/// Clients served at the same time.
pub(crate) const MAX_CONNECTIONS: usize = 16;
/// A connection that sends no complete request for this long is closed.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

mod protocol;

pub(crate) use protocol::{PeerItem, PendingItem, PinItem, Request, Response, parse_request};

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
/// one, or anything that is not a socket, is an error.
pub(crate) fn serve(path: &Path) -> Result<(ControlServer, mpsc::Receiver<Call>)> {
    serve_with(path, IDLE_TIMEOUT)
}

/// Removes a stale socket at `path`; refuses anything else that is there.
fn clear_path(path: &Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot stat control socket {}", path.display()));
        }
    };
    let kind = meta.file_type();
    if !kind.is_socket() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_symlink() {
            "a symbolic link"
        } else if kind.is_file() {
            "a regular file"
        } else {
            "not a socket"
        };
        bail!(
            "refusing to replace {} with the control socket: it is {what}",
            path.display()
        );
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        bail!(
            "control socket {} is in use by another process",
            path.display()
        );
    }
    std::fs::remove_file(path)
        .with_context(|| format!("cannot remove stale control socket {}", path.display()))
}

/// [`serve`] with a chosen idle timeout.
fn serve_with(path: &Path, idle: Duration) -> Result<(ControlServer, mpsc::Receiver<Call>)> {
    clear_path(path)?;
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
                tokio::spawn(refuse(stream));
                continue;
            }
            active.fetch_add(1, Ordering::Relaxed);
            let tx = tx.clone();
            let active = active.clone();
            tokio::spawn(async move {
                if let Err(e) = connection(stream, tx, idle).await {
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

/// Tells a client over the connection limit why it is closed, without
/// waiting on it for long.
async fn refuse(mut stream: UnixStream) {
    let mut out = serde_json::to_vec(&Response::error(format!(
        "too many control clients (at most {MAX_CONNECTIONS}); try again"
    )))
    .unwrap_or_default();
    out.push(b'\n');
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&out)).await;
}

async fn connection(stream: UnixStream, tx: mpsc::Sender<Call>, idle: Duration) -> Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = tokio::io::BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut limited = (&mut read).take(MAX_LINE as u64 + 1);
        let read_line = limited.read_until(b'\n', &mut line);
        let Ok(n) = tokio::time::timeout(idle, read_line).await else {
            let mut out = serde_json::to_vec(&Response::error("idle timeout"))?;
            out.push(b'\n');
            let _ = tokio::time::timeout(Duration::from_secs(1), write.write_all(&out)).await;
            bail!("idle for {idle:?}");
        };
        let n = n?;
        if n == 0 {
            return Ok(());
        }
        if line.len() > MAX_LINE {
            let mut out = serde_json::to_vec(&Response::error("request line too long"))?;
            out.push(b'\n');
            write.write_all(&out).await?;
            bail!("request line too long");
        }
        let response = match parse_request(&line) {
            Err(message) => Response::error(message),
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

/// An operator command (`pending`, `pins`): what to do, and how to reach the
/// running listener that does it.
#[derive(clap::Args, Debug)]
pub(crate) struct OperatorArgs<A: clap::Subcommand> {
    #[command(subcommand)]
    pub(crate) action: A,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// The options every operator command (`pending`, `pins`) takes to reach a
/// running listener.
#[derive(clap::Args, Debug)]
pub(crate) struct ClientArgs {
    /// The listener's control socket (`listen --control SOCKET`).
    #[arg(long, global = true, value_name = "SOCKET")]
    control: Option<PathBuf>,
    /// Print the answer as JSON.
    #[arg(long, global = true)]
    json: bool,
}

impl ClientArgs {
    /// Asks the listener: see [`ask`].
    pub(crate) fn ask(
        &self,
        request: &Request,
    ) -> Result<std::result::Result<Response, std::process::ExitCode>> {
        ask(self.control.as_deref(), request, self.json)
    }
}

/// An operator command's request (`pending`, `pins`) to a listener's
/// control socket: the answer to print, or, with `--json`, the exit status
/// once the answer was printed as it came. A missing socket or a refused
/// request is one error line.
fn ask(
    socket: Option<&Path>,
    request: &Request,
    json: bool,
) -> Result<std::result::Result<Response, std::process::ExitCode>> {
    let Some(socket) = socket else {
        bail!("--control SOCKET is required (the socket given to `tibet-iot listen --control`)");
    };
    let response = call(socket, request)?;
    if json {
        println!("{}", serde_json::to_string(&response)?);
        return Ok(Err(if response.ok {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        }));
    }
    if !response.ok {
        bail!(
            "{}",
            response.error.unwrap_or_else(|| "request failed".into())
        );
    }
    Ok(Ok(response))
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
                from: None,
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
                    Request::Reject { id, .. } => {
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
                    from: None,
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

    /// Answers every call with an empty list, until the server goes.
    fn answer_lists(mut calls: mpsc::Receiver<Call>) {
        tokio::spawn(async move {
            while let Some(call) = calls.recv().await {
                let _ = call.reply.send(Response {
                    ok: true,
                    pending: Some(vec![]),
                    ..Default::default()
                });
            }
        });
    }

    #[tokio::test]
    async fn idle_clients_are_closed_and_a_refused_client_is_told_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let (_server, calls) = serve_with(&path, Duration::from_millis(300)).unwrap();
        answer_lists(calls);
        let mut idle = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            idle.push(UnixStream::connect(&path).await.unwrap());
        }
        // Give the server time to count them (an accepted connection is
        // counted when its task starts, so poll until one is refused).
        let refused = loop {
            let mut s = UnixStream::connect(&path).await.unwrap();
            let mut buf = String::new();
            tokio::io::BufReader::new(&mut s)
                .read_line(&mut buf)
                .await
                .unwrap();
            if !buf.is_empty() {
                break buf;
            }
        };
        let refused: Response = serde_json::from_str(&refused).unwrap();
        assert!(!refused.ok);
        assert!(refused.error.unwrap().contains("too many control clients"));
        // The idle ones are told and closed after the idle timeout...
        for s in &mut idle {
            let mut buf = String::new();
            tokio::io::BufReader::new(s)
                .read_line(&mut buf)
                .await
                .unwrap();
            assert!(buf.contains("idle timeout"), "{buf}");
        }
        // ... and the operator gets in again.
        let p = path.clone();
        let list = tokio::task::spawn_blocking(move || call(&p, &Request::List))
            .await
            .unwrap()
            .unwrap();
        assert!(list.ok);
    }
}
