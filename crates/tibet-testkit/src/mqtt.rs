//! A real Mosquitto broker on a free loopback port, for the tests of the
//! MQTT bridge and of the fleets the CLI joins through one: plain, or
//! speaking TLS with a fresh test CA and admitting only clients with a
//! certificate of it ([`Broker::launch_tls`], [`TlsFiles`]).

use std::path::{Path, PathBuf};

/// A mosquitto on a free loopback port with a temp config; killed on drop.
pub struct Broker {
    child: std::process::Child,
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// Lines added to the listener's configuration (TLS).
    tls_conf: String,
}

impl Broker {
    /// Starts one, or says why not and returns `None` (mosquitto is
    /// installed by the test command when it runs as root, as in CI).
    pub fn launch() -> Option<Broker> {
        Broker::launch_with(|_| String::new())
    }

    /// Starts one whose listener speaks TLS with a certificate of a fresh
    /// CA (made by `openssl` in its directory, with a client certificate
    /// of the same CA: [`TlsFiles`]) and admits only clients that present
    /// a certificate of that CA.
    pub fn launch_tls() -> Option<(Broker, TlsFiles)> {
        if std::process::Command::new("openssl")
            .arg("version")
            .output()
            .is_err()
        {
            eprintln!("openssl not installed (apt-get install openssl): test skipped");
            return None;
        }
        let mut files = None;
        let broker = Broker::launch_with(|dir| {
            let f = TlsFiles::make(dir);
            let conf = format!(
                "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
                f.ca.display(),
                f.server_cert.display(),
                f.server_key.display()
            );
            files = Some(f);
            conf
        })?;
        Some((broker, files.expect("made")))
    }

    fn launch_with(tls: impl FnOnce(&Path) -> String) -> Option<Broker> {
        let Some(bin) = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
        else {
            eprintln!("mosquitto not installed (apt-get install mosquitto): test skipped");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let tls_conf = tls(dir.path());
        let child = Broker::spawn(&bin, dir.path(), port, &tls_conf);
        Some(Broker {
            child,
            bin,
            dir,
            port,
            tls_conf,
        })
    }

    fn spawn(bin: &Path, dir: &Path, port: u16, tls_conf: &str) -> std::process::Child {
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\n{tls_conf}allow_anonymous true\npersistence false\n"
            ),
        )
        .unwrap();
        std::process::Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills it and starts it again on the same port.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Broker::spawn(&self.bin, self.dir.path(), self.port, &self.tls_conf);
    }
}

/// PEM files of a test CA, of the broker's certificate for 127.0.0.1 and of
/// a client's certificate, all signed by that CA, with their keys (EC P-256).
pub struct TlsFiles {
    /// The test CA's certificate.
    pub ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    /// A client certificate of that CA (`/CN=jis:site-a:hub`).
    pub client_cert: PathBuf,
    /// Its private key (mode 644 like every file here: the broker, which
    /// drops root's privileges, reads the others).
    pub client_key: PathBuf,
}

impl TlsFiles {
    fn make(dir: &Path) -> TlsFiles {
        let openssl = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let ca_out = ["-keyout", "ca.key", "-out", "ca.pem"];
        openssl(
            &[
                &["req", "-x509", "-days", "1", "-subj", "/CN=tibet test CA"][..],
                &ec,
                &ca_out,
            ]
            .concat(),
        );
        let sign = |name: &str, cn: &str, ext: &str| {
            std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
            openssl(
                &[
                    &["req", "-subj", cn][..],
                    &ec,
                    &[
                        "-keyout",
                        &format!("{name}.key"),
                        "-out",
                        &format!("{name}.csr"),
                    ],
                ]
                .concat(),
            );
            openssl(&[
                "x509",
                "-req",
                "-days",
                "1",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-extfile",
                &format!("{name}.ext"),
            ]);
        };
        sign(
            "server",
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        sign(
            "client",
            "/CN=jis:site-a:hub",
            "extendedKeyUsage=clientAuth\n",
        );
        // Started as root (CI), mosquitto drops to its own user before it
        // reads the files: a throwaway CA's keys may be read by anyone.
        use std::os::unix::fs::PermissionsExt;
        let readable = |p: &Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        readable(dir, 0o755);
        for entry in std::fs::read_dir(dir).unwrap() {
            readable(&entry.unwrap().path(), 0o644);
        }
        TlsFiles {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
