//! [`NsChild`]: the running test binary re-executed inside a network
//! namespace as one of its own `#[ignore]`d helper tests, and driven line
//! by line: commands on its stdin, answers on its stdout after a marker.

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::netns::{ChildGuard, Netns};

/// A helper test of this binary running inside a namespace; killed (and
/// reaped) on drop.
#[derive(Debug)]
pub struct NsChild {
    _child: ChildGuard,
    stdin: ChildStdin,
    answers: mpsc::Receiver<String>,
}

impl NsChild {
    /// Runs the test `helper` of this binary (`--exact --ignored`) inside
    /// `ns` with `env` added. Its answers are the text after `marker` on
    /// each stdout line (libtest may print `test NAME ... ` before it).
    ///
    /// # Panics
    /// If the process cannot be started.
    pub fn spawn(ns: &Netns, helper: &str, marker: &'static str, env: &[(&str, &str)]) -> NsChild {
        let exe = std::env::current_exe().expect("the test binary");
        let mut child = ns
            .command(exe)
            .args([
                helper,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the helper in its namespace");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(at) = line.find(marker)
                    && tx.send(line[at + marker.len()..].to_owned()).is_err()
                {
                    break;
                }
            }
        });
        NsChild {
            _child: ChildGuard(child),
            stdin,
            answers,
        }
    }

    /// Sends one command line.
    ///
    /// # Panics
    /// If the helper's stdin is closed.
    pub fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("write to the helper");
        self.stdin.flush().expect("flush to the helper");
    }

    /// The next answer within `wait`, split into words.
    ///
    /// # Panics
    /// If none comes (`what` says what was awaited).
    pub fn next(&mut self, what: &str, wait: Duration) -> Vec<String> {
        let line = self
            .answers
            .recv_timeout(wait)
            .unwrap_or_else(|e| panic!("no {what:?} from the helper: {e}"));
        line.split_whitespace().map(str::to_owned).collect()
    }

    /// The first answer within `wait` (each) whose first word is `word`;
    /// the answers before it are skipped.
    ///
    /// # Panics
    /// If none comes.
    pub fn expect(&mut self, word: &str, wait: Duration) -> Vec<String> {
        loop {
            let words = self.next(word, wait);
            if words.first().map(String::as_str) == Some(word) {
                return words;
            }
        }
    }

    /// Sends `line` and returns the answer starting with `word` (30 s).
    pub fn cmd(&mut self, line: &str, word: &str) -> Vec<String> {
        self.send(line);
        self.expect(word, Duration::from_secs(30))
    }
}
