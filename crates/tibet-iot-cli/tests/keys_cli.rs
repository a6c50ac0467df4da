//! `keygen` and `pubkey`: key files with mode 0600, never overwritten, read
//! back by us and by OpenSSL; bad key files give one error line and exit 1.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{run, stderr, stdout};

#[track_caller]
fn assert_one_line_error(out: &std::process::Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "stderr {err}");
    assert!(err.contains(needle), "stderr {err:?} lacks {needle:?}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err:?}");
}

#[test]
fn keygen_writes_a_0600_key_and_pubkey_prints_the_same_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.key");
    let p = path.to_str().unwrap();
    let out = run(&["keygen", "--out", p]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let public = stdout(&out).trim().to_owned();
    assert_eq!(public.len(), 44, "{public}");
    assert!(tibet_ping::identity::PublicKey::parse(&public).is_ok());
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let out = run(&["pubkey", p]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), public);
}

#[test]
fn keygen_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.key");
    fs::write(&path, "precious").unwrap();
    let out = run(&["keygen", "--out", path.to_str().unwrap()]);
    assert_one_line_error(&out, "already exists");
    assert_eq!(fs::read_to_string(&path).unwrap(), "precious");
}

#[test]
fn missing_unreadable_and_group_readable_key_files_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.key");
    assert_one_line_error(&run(&["pubkey", missing.to_str().unwrap()]), "missing.key");

    let path = dir.path().join("shared.key");
    assert_eq!(
        run(&["keygen", "--out", path.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let out = run(&["pubkey", path.to_str().unwrap()]);
    assert_one_line_error(&out, "shared.key");
    assert!(
        stderr(&out).contains("readable by group or others"),
        "{}",
        stderr(&out)
    );

    let junk = dir.path().join("junk.key");
    fs::write(&junk, "not a key").unwrap();
    fs::set_permissions(&junk, fs::Permissions::from_mode(0o600)).unwrap();
    assert_one_line_error(&run(&["pubkey", junk.to_str().unwrap()]), "junk.key");

    // A directory cannot be read as a key (works as root too, unlike mode 000).
    let subdir = dir.path().join("dir.key");
    fs::create_dir(&subdir).unwrap();
    fs::set_permissions(&subdir, fs::Permissions::from_mode(0o700)).unwrap();
    assert_one_line_error(&run(&["pubkey", subdir.to_str().unwrap()]), "dir.key");
}

fn openssl() -> Option<()> {
    match Command::new("openssl").arg("version").output() {
        Ok(o) if o.status.success() => Some(()),
        _ => {
            eprintln!("skipping: openssl not found");
            None
        }
    }
}

#[test]
fn openssl_reads_our_key_and_we_read_openssls() {
    if openssl().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours.key");
    let out = run(&["keygen", "--out", ours.to_str().unwrap()]);
    let public = stdout(&out).trim().to_owned();
    // OpenSSL prints the raw public key as DER SPKI: its last 32 bytes.
    let der = Command::new("openssl")
        .args([
            "pkey",
            "-in",
            ours.to_str().unwrap(),
            "-pubout",
            "-outform",
            "DER",
        ])
        .output()
        .unwrap();
    assert!(
        der.status.success(),
        "{}",
        String::from_utf8_lossy(&der.stderr)
    );
    let raw = &der.stdout[der.stdout.len() - 32..];
    let key = tibet_ping::identity::PublicKey::parse(&public).unwrap();
    assert_eq!(raw, key.as_bytes());

    let theirs = dir.path().join("theirs.key");
    let generated = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "ed25519",
            "-out",
            theirs.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(generated.status.success());
    fs::set_permissions(&theirs, fs::Permissions::from_mode(0o600)).unwrap();
    let out = run(&["pubkey", theirs.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim().len(), 44);
}
