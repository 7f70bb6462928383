//! Is the child listening yet? (protocol §2.5 with §8.3: IPv4 or IPv6 loopback, a listener
//! owned by the child or one of its descendants.)
//!
//! On Linux the kernel's listener tables (`/proc/net/tcp`, `/proc/net/tcp6`) are matched
//! against the sockets held by the child's process group and descendants, so a listener of
//! an unrelated process on the same port never counts. Elsewhere a loopback connect probe is
//! used.
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// A listener found on the child's port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Listening {
    /// Where the forwarder should connect: `127.0.0.1:port`, or `[::1]:port` for an
    /// IPv6-only listener.
    pub(crate) addr: SocketAddr,
    /// The process that owns the listener, when known.
    pub(crate) pid: Option<u32>,
}

/// Checks once whether the child `pid` (leader of its own process group) or a descendant
/// listens on `port`. Blocking: call from `spawn_blocking`.
pub(crate) fn check(pid: u32, port: u16) -> Option<Listening> {
    #[cfg(target_os = "linux")]
    {
        linux::check(pid, port)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        probe(port)
    }
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
    if v6 {
        let Ok(b) = <[u8; 16]>::try_from(bytes.as_slice()) else {
            return false;
        };
        let ip = Ipv6Addr::from(b);
        ip.is_loopback()
            || ip.is_unspecified()
            || ip
                .to_ipv4_mapped()
                .is_some_and(|v4| v4.is_loopback() || v4.is_unspecified())
    } else {
        let Ok(b) = <[u8; 4]>::try_from(bytes.as_slice()) else {
            return false;
        };
        let ip = Ipv4Addr::from(b);
        ip.is_loopback() || ip.is_unspecified()
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use super::*;
    use std::collections::{HashMap, HashSet};
    use std::fs;

    pub(super) fn check(pid: u32, port: u16) -> Option<Listening> {
        let mut entries = Vec::new();
        for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
            if let Ok(text) = fs::read_to_string(file) {
                entries.extend(parse_tcp_table(&text, v6, port));
            }
        }
        entries.retain(|e| e.loopback_reachable);
        if entries.is_empty() {
            return None;
        }
        let inodes: HashMap<u64, bool> = entries.iter().map(|e| (e.inode, e.v6)).collect();
        let mut v4_owner = None;
        let mut v6_owner = None;
        for member in family(pid) {
            let Ok(dir) = fs::read_dir(format!("/proc/{member}/fd")) else {
                continue;
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
                    Some(false) => v4_owner = v4_owner.or(Some(member)),
                    Some(true) => v6_owner = v6_owner.or(Some(member)),
                    None => {}
                }
            }
        }
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
            let found = super::check(me, port).expect("listening");
            assert_eq!(found.pid, Some(me));
            assert_eq!(found.addr.port(), port);
            assert!(found.addr.is_ipv4());
            // A process that does not exist owns nothing, even though the port is listened on.
            assert_eq!(super::check(0x3fff_fff0, port), None);
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
