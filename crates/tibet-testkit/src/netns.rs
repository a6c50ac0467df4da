//! Network namespaces for multi-host tests: RAII guards that create
//! namespaces, veth links and a bridge, and always delete them again (on
//! drop, so also when a test panics).
//!
//! Rules kept here: names are unique per process (`tib<pid>n<k>`),
//! addresses are only assigned inside namespaces this module created and
//! must be in 10.0.0.0/8 or, for IPv6, in the unique-local `fd00::/8`, and
//! nothing is configured in the host namespace. IPv6 addresses are added
//! without duplicate address detection (`nodad`), and a namespace made for
//! IPv6 ([`Netns::new_v6`]) skips it for its link-local addresses too, so
//! addresses are usable at once rather than after a second or two.
//! Creating namespaces needs root: [`netns_available`] says whether tests
//! may run (as non-root they skip with a printed reason; as root a failure
//! to set up is a test failure).

use std::ffi::OsStr;
use std::io;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Whether this process may create namespaces; prints why not when it may
/// not. Root (effective uid 0) and the `ip` tool are required.
pub fn netns_available() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse::<u32>().ok());
    if euid != Some(0) {
        eprintln!("skipping network-namespace test: needs root (euid {euid:?})");
        return false;
    }
    if Command::new("ip").arg("-V").output().is_err() {
        // Root without iproute2 is a broken CI image, not a reason to skip.
        panic!("running as root but the `ip` tool (iproute2) is missing");
    }
    true
}

fn run(cmd: &mut Command) -> io::Result<Output> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

fn ip(args: &[&str]) -> io::Result<Output> {
    run(Command::new("ip").args(args))
}

fn check_cidr(cidr: &str) -> io::Result<()> {
    if cidr.contains(':') {
        return check_cidr6(cidr);
    }
    if !cidr.starts_with("10.") || !cidr.contains('/') {
        return Err(io::Error::other(format!(
            "test addresses must be 10.x.y.z/len, got {cidr}"
        )));
    }
    Ok(())
}

fn check_cidr6(cidr: &str) -> io::Result<()> {
    let ok = cidr.split_once('/').is_some_and(|(a, _)| {
        a.parse::<std::net::Ipv6Addr>()
            .is_ok_and(|ip| ip.octets()[0] == 0xfd)
    });
    if !ok {
        return Err(io::Error::other(format!(
            "test IPv6 addresses must be fdxx::/len, got {cidr}"
        )));
    }
    Ok(())
}

/// A network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace with a unique name (`tag` is for humans) and
    /// brings its loopback up.
    pub fn new(tag: &str) -> io::Result<Netns> {
        let k = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(8)
            .collect();
        let name = format!("tib{}n{k}{tag}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Like [`Netns::new`], for IPv6 tests: duplicate address detection
    /// off for every interface made in it from now on (link-local addresses
    /// usable at once).
    pub fn new_v6(tag: &str) -> io::Result<Netns> {
        let ns = Netns::new(tag)?;
        for key in ["all", "default"] {
            run(ns
                .command("sysctl")
                .args(["-qw", &format!("net.ipv6.conf.{key}.accept_dad=0")]))?;
        }
        Ok(ns)
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n <ns> <args>`.
    pub fn ip(&self, args: &[&str]) -> io::Result<Output> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Assigns `cidr` (10.x, or fdxx:: for IPv6, added `nodad`) to `dev`
    /// and brings it up.
    pub fn addr(&self, dev: &str, cidr: &str) -> io::Result<()> {
        check_cidr(cidr)?;
        if cidr.contains(':') {
            self.ip(&["-6", "addr", "add", cidr, "dev", dev, "nodad"])?;
        } else {
            self.ip(&["addr", "add", cidr, "dev", dev])?;
        }
        self.ip(&["link", "set", dev, "up"])?;
        Ok(())
    }

    /// Routes multicast (224.0.0.0/4) out of `dev`, so beacons have a way out.
    pub fn multicast_route(&self, dev: &str) -> io::Result<()> {
        self.ip(&["route", "add", "224.0.0.0/4", "dev", dev])?;
        Ok(())
    }

    /// Adds a route to `cidr` via `gateway`.
    pub fn route_via(&self, cidr: &str, gateway: &str) -> io::Result<()> {
        self.ip(&["route", "add", cidr, "via", gateway])?;
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace destroys its veth ends and bridge.
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("warning: could not delete namespace {}: {e}", self.name);
        }
    }
}

/// Connects `a` and `b` with a veth pair: `a_if` in `a` with `a_cidr`,
/// `b_if` in `b` with `b_cidr`, both up.
pub fn veth(
    a: &Netns,
    a_if: &str,
    a_cidr: &str,
    b: &Netns,
    b_if: &str,
    b_cidr: &str,
) -> io::Result<()> {
    check_cidr(a_cidr)?;
    check_cidr(b_cidr)?;
    a.ip(&[
        "link",
        "add",
        a_if,
        "type",
        "veth",
        "peer",
        "name",
        b_if,
        "netns",
        b.name(),
    ])?;
    a.addr(a_if, a_cidr)?;
    b.addr(b_if, b_cidr)?;
    Ok(())
}

/// A switch: a namespace holding a Linux bridge (`br0`, IGMP snooping off so
/// multicast floods) that hosts are plugged into.
#[derive(Debug)]
pub struct Switch {
    ns: Netns,
    ports: u32,
}

impl Switch {
    /// Creates the switch namespace and its bridge.
    pub fn new() -> io::Result<Switch> {
        let ns = Netns::new("sw")?;
        ns.ip(&[
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        ns.ip(&["link", "set", "br0", "up"])?;
        Ok(Switch { ns, ports: 0 })
    }

    /// Plugs `host` in: a veth `host_if` inside `host` with `cidr`, its peer
    /// a port of the bridge.
    pub fn plug(&mut self, host: &Netns, host_if: &str, cidr: &str) -> io::Result<()> {
        check_cidr(cidr)?;
        let port = format!("p{}", self.ports);
        self.ports += 1;
        host.ip(&[
            "link",
            "add",
            host_if,
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            self.ns.name(),
        ])?;
        self.ns.ip(&["link", "set", &port, "master", "br0"])?;
        self.ns.ip(&["link", "set", &port, "up"])?;
        host.addr(host_if, cidr)?;
        Ok(())
    }

    /// The switch's namespace.
    pub fn netns(&self) -> &Netns {
        &self.ns
    }
}

/// A child process killed (and reaped) on drop.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_addresses_outside_ten_slash_eight() {
        assert!(check_cidr("10.1.2.3/24").is_ok());
        assert!(check_cidr("192.168.1.2/24").is_err());
        assert!(check_cidr("10.1.2.3").is_err());
    }

    #[test]
    fn rejects_ipv6_addresses_outside_unique_local() {
        assert!(check_cidr("fd00:77::1/64").is_ok());
        assert!(check_cidr("2001:db8::1/64").is_err());
        assert!(check_cidr("fe80::1/64").is_err());
        assert!(check_cidr("fd00:77::1").is_err());
    }

    #[test]
    fn a_panicking_test_still_deletes_its_namespaces() {
        if !netns_available() {
            return;
        }
        let name = std::sync::Mutex::new(String::new());
        let result = std::panic::catch_unwind(|| {
            let mut sw = Switch::new().expect("switch");
            let h = Netns::new("p").expect("host");
            sw.plug(&h, "eth0", "10.232.0.1/24").expect("plug");
            *name.lock().unwrap() = h.name().to_owned();
            panic!("test failure while the lab is up");
        });
        assert!(result.is_err());
        let name = name.into_inner().unwrap();
        let list = ip(&["netns", "list"]).expect("list");
        assert!(
            !String::from_utf8_lossy(&list.stdout).contains(&name),
            "{name} deleted while unwinding"
        );
    }

    #[test]
    fn namespaces_are_created_linked_and_deleted() {
        if !netns_available() {
            return;
        }
        let name;
        {
            let a = Netns::new("a").expect("create a");
            let b = Netns::new("b").expect("create b");
            name = a.name().to_owned();
            veth(&a, "eth0", "10.231.0.1/24", &b, "eth0", "10.231.0.2/24").expect("veth");
            let shown = b.ip(&["-4", "addr", "show", "eth0"]).expect("show");
            let shown = String::from_utf8_lossy(&shown.stdout);
            assert!(
                shown.contains("10.231.0.2/24") && shown.contains("UP"),
                "{shown}"
            );
            let list = ip(&["netns", "list"]).expect("list");
            assert!(String::from_utf8_lossy(&list.stdout).contains(&name));
        }
        let list = ip(&["netns", "list"]).expect("list");
        assert!(
            !String::from_utf8_lossy(&list.stdout).contains(&name),
            "namespace {name} deleted on drop"
        );
    }
}
