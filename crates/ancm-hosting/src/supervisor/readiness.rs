//! Is the child listening yet? (protocol §2.5 with §8.3: IPv4 or IPv6 loopback, a listener
//! owned by the child or one of its descendants; or its Unix-domain socket, §8.42.)
//!
//! On Linux the kernel's listening sockets (TCP over netlink `sock_diag`, else
//! `/proc/net/tcp` and `/proc/net/tcp6`; `/proc/net/unix`) are matched against the sockets
//! held by the child's process group and descendants, so a
//! listener of an unrelated process on the same port or path never counts. Elsewhere a
//! connect probe is used.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

/// A listener found on the child's port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Listening {
    /// Where the forwarder should connect: `127.0.0.1:port`, or `[::1]:port` for an
    /// IPv6-only listener.
    pub(crate) addr: SocketAddr,
    /// The process that owns the listener, when known.
    pub(crate) pid: Option<u32>,
}

/// How much of the kernel's TCP tables a [`check`] reads on Linux.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tables {
    /// Only their leading listener entries: the kernel lists every listening socket before
    /// the connections, so this costs the listeners, not the (maybe many thousand)
    /// connections of a busy gateway.
    Listeners,
    /// All of them, in case a kernel ever lists them in another order.
    Whole,
}

/// Checks once whether the child `pid` (leader of its own process group) or a descendant
/// listens on `port`. Blocking: call from `spawn_blocking`.
pub(crate) fn check(pid: u32, port: u16, tables: Tables) -> Option<Listening> {
    #[cfg(target_os = "linux")]
    {
        linux::check(pid, port, tables)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (pid, tables);
        probe(port)
    }
}

/// Checks once whether the child `pid` or a descendant listens on the Unix-domain socket
/// `path`: `Some` with the listening process when known (Linux), `None` while nothing
/// listens. Blocking: call from `spawn_blocking`.
pub(crate) fn check_unix(pid: u32, path: &Path) -> Option<Option<u32>> {
    #[cfg(target_os = "linux")]
    {
        linux::check_unix(pid, path).map(Some)
    }
    #[cfg(all(unix, not(target_os = "linux")))]
    {
        let _ = pid;
        std::os::unix::net::UnixStream::connect(path)
            .is_ok()
            .then_some(None)
    }
    #[cfg(not(unix))]
    {
        let _ = (pid, path);
        None
    }
}

/// The inodes of the listening stream sockets bound to `path` in a `/proc/net/unix` table.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn parse_unix_table(text: &str, path: &Path) -> Vec<u64> {
    // Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 is __SO_ACCEPTCON (a
    // listener), Type 0001 SOCK_STREAM.
    let Some(path) = path.to_str() else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (flags, kind, inode) = (fields.get(3)?, fields.get(4)?, fields.get(6)?);
            let listening = *flags == "00010000" && *kind == "0001";
            (listening && fields.get(7..)?.join(" ") == path)
                .then(|| inode.parse().ok())
                .flatten()
        })
        .collect()
}

/// Connect probe: IPv4 loopback first, then IPv6.
#[cfg_attr(target_os = "linux", allow(dead_code))]
pub(crate) fn probe(port: u16) -> Option<Listening> {
    let timeout = std::time::Duration::from_millis(200);
    for ip in [
        std::net::IpAddr::V4(Ipv4Addr::LOCALHOST),
        std::net::IpAddr::V6(Ipv6Addr::LOCALHOST),
    ] {
        let addr = SocketAddr::new(ip, port);
        if std::net::TcpStream::connect_timeout(&addr, timeout).is_ok() {
            return Some(Listening { addr, pid: None });
        }
    }
    None
}

/// One LISTEN entry of `/proc/net/tcp{,6}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListenEntry {
    pub(crate) v6: bool,
    pub(crate) inode: u64,
    /// Bound to a loopback or the unspecified address (reachable via loopback).
    pub(crate) loopback_reachable: bool,
}

/// Parses a `/proc/net/tcp` or `/proc/net/tcp6` table, keeping LISTEN sockets on `port`.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn parse_tcp_table(text: &str, v6: bool, port: u16) -> Vec<ListenEntry> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let mut fields = line.split_whitespace();
        let (Some(_sl), Some(local), Some(_remote), Some(state)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        // 0A = TCP_LISTEN.
        if state != "0A" {
            continue;
        }
        let Some((addr_hex, port_hex)) = local.split_once(':') else {
            continue;
        };
        if u16::from_str_radix(port_hex, 16).ok() != Some(port) {
            continue;
        }
        // Fields after state: tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode.
        let Some(inode) = fields.nth(5).and_then(|i| i.parse::<u64>().ok()) else {
            continue;
        };
        out.push(ListenEntry {
            v6,
            inode,
            loopback_reachable: hex_addr_loopback_reachable(addr_hex, v6),
        });
    }
    out
}

/// Whether a hex address from `/proc/net/tcp*` is loopback or unspecified. The kernel prints
/// each 32-bit word in host byte order.
fn hex_addr_loopback_reachable(hex: &str, v6: bool) -> bool {
    let words: Option<Vec<u32>> = (0..hex.len() / 8)
        .map(|i| {
            hex.get(i * 8..i * 8 + 8)
                .and_then(|w| u32::from_str_radix(w, 16).ok())
        })
        .collect();
    let Some(words) = words else { return false };
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    let ip = if v6 {
        <[u8; 16]>::try_from(bytes.as_slice()).map(|b| IpAddr::V6(Ipv6Addr::from(b)))
    } else {
        <[u8; 4]>::try_from(bytes.as_slice()).map(|b| IpAddr::V4(Ipv4Addr::from(b)))
    };
    ip.is_ok_and(loopback_reachable)
}

/// Whether a listener bound to `ip` takes connections to a loopback address: `ip` is
/// loopback or unspecified (also as an IPv4-mapped IPv6 address).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn loopback_reachable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_unspecified(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_loopback() || v4.is_unspecified())
        }
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use std::collections::{HashMap, HashSet};
    use std::fs;

    pub(super) fn check(pid: u32, port: u16, tables: Tables) -> Option<Listening> {
        // The kernel's listener table over netlink; `/proc` where that is refused.
        let mut entries = match crate::supervisor::sock_diag::listeners(port) {
            Some(entries) => entries,
            None => proc_listeners(port, tables),
        };
        entries.retain(|e| e.loopback_reachable);
        if entries.is_empty() {
            return None;
        }
        let inodes: HashMap<u64, bool> = entries.iter().map(|e| (e.inode, e.v6)).collect();
        let (v4_owner, v6_owner) = owners(pid, &inodes);
        // A dual-stack `::` listener also takes IPv4; prefer IPv4 when it surely works.
        if let Some(owner) = v4_owner {
            return Some(Listening {
                addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                pid: Some(owner),
            });
        }
        v6_owner.map(|owner| Listening {
            addr: SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
            pid: Some(owner),
        })
    }

    /// The LISTEN entries on `port` of `/proc/net/tcp` and `/proc/net/tcp6`.
    fn proc_listeners(port: u16, tables: Tables) -> Vec<ListenEntry> {
        let mut entries = Vec::new();
        for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
            let text = match tables {
                Tables::Whole => fs::read_to_string(file).ok(),
                Tables::Listeners => leading_listeners(file),
            };
            if let Some(text) = text {
                entries.extend(parse_tcp_table(&text, v6, port));
            }
        }
        entries
    }

    /// The header and the leading LISTEN lines of a `/proc/net/tcp*` table; the kernel makes
    /// the rest only as far as it is read.
    fn leading_listeners(file: &str) -> Option<String> {
        use std::io::BufRead as _;
        let mut lines = std::io::BufReader::new(fs::File::open(file).ok()?).lines();
        let mut text = lines.next()?.ok()?;
        for line in lines {
            let Ok(line) = line else { break };
            if line.split_whitespace().nth(3) != Some("0A") {
                break;
            }
            text.push('\n');
            text.push_str(&line);
        }
        Some(text)
    }

    /// The member of the child's family that listens on the Unix-domain socket `path`.
    pub(super) fn check_unix(pid: u32, path: &Path) -> Option<u32> {
        // A stat first: the table lists every Unix socket of the host.
        if !path.exists() {
            return None;
        }
        let text = fs::read_to_string("/proc/net/unix").ok()?;
        let inodes: HashMap<u64, bool> = parse_unix_table(&text, path)
            .into_iter()
            .map(|inode| (inode, false))
            .collect();
        if inodes.is_empty() {
            return None;
        }
        owners(pid, &inodes).0
    }

    /// The first members of the child's family holding one of `inodes`: (one whose inode is
    /// marked `false`, one whose inode is marked `true`).
    fn owners(pid: u32, inodes: &HashMap<u64, bool>) -> (Option<u32>, Option<u32>) {
        // The child itself holds the listener in the common case: its own descriptors first,
        // the whole process table (milliseconds on a busy host) only when they hold no
        // `false` one, the kind callers prefer.
        let (unmarked, marked) = holds(pid, inodes);
        if unmarked {
            return (Some(pid), marked.then_some(pid));
        }
        let mut v4_owner = None;
        let mut v6_owner = None;
        for member in family(pid) {
            let (unmarked, marked) = holds(member, inodes);
            if unmarked {
                v4_owner = v4_owner.or(Some(member));
            }
            if marked {
                v6_owner = v6_owner.or(Some(member));
            }
        }
        (v4_owner, v6_owner)
    }

    /// Whether process `member` holds one of `inodes` marked `false`, and one marked `true`.
    fn holds(member: u32, inodes: &HashMap<u64, bool>) -> (bool, bool) {
        let (mut unmarked, mut marked) = (false, false);
        let Ok(dir) = fs::read_dir(format!("/proc/{member}/fd")) else {
            return (false, false);
        };
        for fd in dir.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok())
            else {
                continue;
            };
            match inodes.get(&inode) {
                Some(false) => unmarked = true,
                Some(true) => marked = true,
                None => {}
            }
        }
        (unmarked, marked)
    }

    /// The child, the members of its process group, and all their descendants.
    fn family(pid: u32) -> Vec<u32> {
        let mut parents: HashMap<u32, (u32, u32)> = HashMap::new();
        if let Ok(dir) = fs::read_dir("/proc") {
            for e in dir.flatten() {
                let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                    continue;
                };
                if let Some(stat) = read_stat(p) {
                    parents.insert(p, stat);
                }
            }
        }
        let mut members: HashSet<u32> = HashSet::from([pid]);
        members.extend(
            parents
                .iter()
                .filter(|(_, (_, pgrp))| *pgrp == pid)
                .map(|(p, _)| *p),
        );
        // Descendants that left the group (setsid/setpgid) still count: walk ppid chains.
        let mut changed = true;
        while changed {
            changed = false;
            for (p, (ppid, _)) in &parents {
                if !members.contains(p) && members.contains(ppid) {
                    members.insert(*p);
                    changed = true;
                }
            }
        }
        let mut v: Vec<u32> = members.into_iter().collect();
        v.sort_unstable();
        v
    }

    /// (ppid, pgrp) from `/proc/PID/stat`; the command name may contain spaces and ')'.
    fn read_stat(pid: u32) -> Option<(u32, u32)> {
        let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        parse_stat(&text)
    }

    pub(super) fn parse_stat(text: &str) -> Option<(u32, u32)> {
        let rest = &text[text.rfind(')')? + 1..];
        let mut f = rest.split_whitespace();
        let _state = f.next()?;
        let ppid = f.next()?.parse().ok()?;
        let pgrp = f.next()?.parse().ok()?;
        Some((ppid, pgrp))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn stat_with_odd_name() {
            assert_eq!(
                super::parse_stat("42 (a b) c) S 7 42 42 0 -1"),
                Some((7, 42))
            );
            assert_eq!(super::parse_stat("garbage"), None);
        }

        #[test]
        fn finds_own_listener_and_ignores_others() {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let port = l.local_addr().expect("addr").port();
            let me = std::process::id();
            // This test process is in the group of whoever started it, but it is `me`.
            let found = super::check(me, port, super::Tables::Listeners).expect("listening");
            assert_eq!(super::check(me, port, super::Tables::Whole), Some(found));
            assert_eq!(found.pid, Some(me));
            assert_eq!(found.addr.port(), port);
            assert!(found.addr.is_ipv4());
            // A process that does not exist owns nothing, even though the port is listened on.
            assert_eq!(
                super::check(0x3fff_fff0, port, super::Tables::Listeners),
                None
            );
        }

        #[test]
        fn finds_own_unix_listener_and_ignores_others() {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("backend.sock");
            let me = std::process::id();
            assert_eq!(super::check_unix(me, &path), None);
            let _listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
            assert_eq!(super::check_unix(me, &path), Some(me));
            assert_eq!(super::check_unix(0x3fff_fff0, &path), None);
            assert_eq!(super::check_unix(me, &dir.path().join("other.sock")), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:3039 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 111 1 0000000000000000 100 0 0 10 0
   1: 0100007F:3039 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 222 1 0000000000000000 20 4 30 10 -1
   2: 0A00000A:3039 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 333 1 0000000000000000 100 0 0 10 0
   3: 00000000:303A 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 444 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn tcp_table_parsing() {
        let e = parse_tcp_table(TABLE, false, 12345);
        assert_eq!(e.len(), 2);
        assert_eq!(
            e[0],
            ListenEntry {
                v6: false,
                inode: 111,
                loopback_reachable: cfg!(target_endian = "little")
            }
        );
        assert_eq!(e[1].inode, 333);
        assert!(!e[1].loopback_reachable);
        let e = parse_tcp_table(TABLE, false, 12346);
        assert_eq!(e.len(), 1);
        assert!(e[0].loopback_reachable);
        assert!(parse_tcp_table("header\ngarbage line\n", false, 1).is_empty());
    }

    #[test]
    fn unix_table_parsing() {
        let table = "Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 111 /tmp/ancm-1-a.sock
0000000000000000: 00000003 00000000 00000000 0001 03 222 /tmp/ancm-1-a.sock
0000000000000000: 00000002 00000000 00010000 0002 01 333 /tmp/ancm-1-a.sock
0000000000000000: 00000002 00000000 00010000 0001 01 444 /tmp/ancm-1-b.sock
0000000000000000: 00000002 00000000 00010000 0001 01 555
";
        let path = std::path::Path::new("/tmp/ancm-1-a.sock");
        // The listening stream socket only: not a connected one, not a datagram socket.
        assert_eq!(parse_unix_table(table, path), [111]);
        assert_eq!(
            parse_unix_table(table, std::path::Path::new("/tmp/ancm-1-b.sock")),
            [444]
        );
        assert!(parse_unix_table("header\ngarbage\n", path).is_empty());
    }

    #[test]
    fn v6_loopback() {
        // ::1 as printed on a little-endian host.
        assert_eq!(
            hex_addr_loopback_reachable("00000000000000000000000001000000", true),
            cfg!(target_endian = "little")
        );
        assert!(hex_addr_loopback_reachable(
            "00000000000000000000000000000000",
            true
        ));
        assert!(!hex_addr_loopback_reachable("zz", true));
    }
}
