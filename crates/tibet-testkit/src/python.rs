//! Locating and running the Python reference peer.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The interpreter of the reference venv, or `None` (with a printed reason)
/// when interop tests may be skipped. Panics when `TIBET_REQUIRE_INTEROP` is
/// set and the interpreter is missing, so CI cannot skip silently.
pub fn python() -> Option<PathBuf> {
    let required = std::env::var_os("TIBET_REQUIRE_INTEROP").is_some();
    let candidate = std::env::var_os("TIBET_PY").map(PathBuf::from).or_else(|| {
        // Fall back to the venv that scripts/pyref.sh makes in the workspace.
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/pyref/bin/python");
        root.exists().then_some(root)
    });
    match candidate {
        Some(p) if p.exists() => Some(p),
        other => {
            let why = format!(
                "Python reference peer not found ({other:?}); run `bash scripts/pyref.sh` or `bash scripts/test.sh`"
            );
            assert!(!required, "{why}");
            eprintln!("skipping interop test: {why}");
            None
        }
    }
}

/// What a Python run printed.
#[derive(Debug)]
pub struct PyOutput {
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error, as text.
    pub stderr: String,
}

/// Runs `script` with the reference interpreter, feeding `stdin`, and panics
/// with the script's stderr if it exits non-zero.
pub fn run_python(py: &PathBuf, script: &str, args: &[&str], stdin: &[u8]) -> PyOutput {
    let mut child = Command::new(py)
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python");
    // Feed stdin from its own thread: a script that prints more than a pipe
    // buffer before it has read all its input would otherwise deadlock.
    let mut pipe = child.stdin.take().expect("stdin");
    let input = stdin.to_vec();
    let feeder = std::thread::spawn(move || pipe.write_all(&input));
    let out = child.wait_with_output().expect("wait python");
    // A script may exit without reading all its input; its status says more.
    let _ = feeder.join().expect("stdin feeder thread");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "python failed ({}):\n{stderr}",
        out.status
    );
    PyOutput {
        stdout: out.stdout,
        stderr,
    }
}
