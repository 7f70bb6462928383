//! Which `X-Forwarded-*` headers to apply and which peers to trust.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::BitOr;

use ipnet::{IpNet, Ipv4Net};

/// A set of `X-Forwarded-*` header kinds.
///
/// ```
/// use iis_integration::XForwarded;
/// let kinds = XForwarded::FOR | XForwarded::PROTO;
/// assert!(kinds.contains(XForwarded::FOR) && !kinds.contains(XForwarded::HOST));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct XForwarded(u8);

impl XForwarded {
    /// None of them.
    pub const NONE: XForwarded = XForwarded(0);
    /// `X-Forwarded-For`: the client endpoint.
    pub const FOR: XForwarded = XForwarded(1);
    /// `X-Forwarded-Proto`: the scheme.
    pub const PROTO: XForwarded = XForwarded(2);
    /// `X-Forwarded-Host`: the Host header.
    pub const HOST: XForwarded = XForwarded(4);
    /// `X-Forwarded-Prefix`: the path base.
    pub const PREFIX: XForwarded = XForwarded(8);
    /// All four.
    pub const ALL: XForwarded = XForwarded(15);

    /// Whether every kind in `other` is in `self`.
    pub fn contains(self, other: XForwarded) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for XForwarded {
    type Output = XForwarded;

    fn bitor(self, rhs: XForwarded) -> XForwarded {
        XForwarded(self.0 | rhs.0)
    }
}

/// Options of [`ForwardedHeadersLayer`](super::ForwardedHeadersLayer), with ASP.NET Core's
/// defaults: forward limit 1, known proxy `::1`, known network `127.0.0.0/8`, any host,
/// no symmetry requirement.
///
/// ```
/// use iis_integration::{ForwardedHeadersOptions, XForwarded};
/// let options = ForwardedHeadersOptions::new(XForwarded::FOR | XForwarded::PROTO)
///     .forward_limit(Some(2))
///     .known_networks(["10.0.0.0/8".parse().unwrap()])
///     .require_header_symmetry(true);
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
pub struct ForwardedHeadersOptions {
    pub(crate) headers: XForwarded,
    pub(crate) forward_limit: Option<usize>,
    pub(crate) known_proxies: Vec<IpAddr>,
    pub(crate) known_networks: Vec<IpNet>,
    pub(crate) allowed_hosts: AllowedHosts,
    pub(crate) require_header_symmetry: bool,
}

impl ForwardedHeadersOptions {
    /// Apply `headers`, with the defaults for everything else.
    pub fn new(headers: XForwarded) -> Self {
        Self {
            headers,
            forward_limit: Some(1),
            known_proxies: vec![IpAddr::V6(Ipv6Addr::LOCALHOST)],
            known_networks: vec![IpNet::V4(
                Ipv4Net::new(Ipv4Addr::new(127, 0, 0, 0), 8)
                    .unwrap_or_else(|_| unreachable!("8 is a valid IPv4 prefix length")),
            )],
            allowed_hosts: AllowedHosts::Any,
            require_header_symmetry: false,
        }
    }

    /// What ANCM's backend applies: `X-Forwarded-For` and `X-Forwarded-Proto`.
    pub fn iis() -> Self {
        Self::new(XForwarded::FOR | XForwarded::PROTO)
    }

    /// What the backend of a front that trusts the proxies in `networks` applies (the `ancm`
    /// gateway's `--trusted-proxy`, protocol §8.40): [`iis`](Self::iis) with `networks` added
    /// to the known networks and no forward limit. The walk from the right takes the front's
    /// entry, then one entry per trusted proxy in a row, and stops after the first address
    /// that is none of them: the client. A client that is not a trusted proxy gets no further
    /// than its own entry, whatever it sent before it.
    ///
    /// ```
    /// use iis_integration::{ClientAddr, ForwardedHeadersLayer, ForwardedHeadersOptions, PeerAddr};
    /// use tower::{Layer, ServiceExt, service_fn};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let options = ForwardedHeadersOptions::iis_behind_proxies(["10.0.0.0/8".parse().unwrap()]);
    /// let app = service_fn(|req: http::Request<()>| async move {
    ///     let client = req.extensions().get::<ClientAddr>().unwrap().0;
    ///     Ok::<_, std::convert::Infallible>(http::Response::new(client.to_string()))
    /// });
    /// let svc = ForwardedHeadersLayer::new(options).layer(app);
    /// let client = |xff: &'static str| {
    ///     let mut req = http::Request::get("/").header("x-forwarded-for", xff).body(()).unwrap();
    ///     req.extensions_mut().insert(PeerAddr("127.0.0.1:60000".parse().unwrap()));
    ///     svc.clone().oneshot(req)
    /// };
    /// // Through the proxy 10.0.0.5: the client it saw.
    /// let seen = client("203.0.113.7:51000, 10.0.0.5:40000").await.unwrap();
    /// assert_eq!(seen.body(), "203.0.113.7:51000");
    /// // Straight to the front, claiming to be someone else: itself.
    /// let seen = client("6.6.6.6, 198.51.100.1:50000").await.unwrap();
    /// assert_eq!(seen.body(), "198.51.100.1:50000");
    /// # });
    /// ```
    pub fn iis_behind_proxies(networks: impl IntoIterator<Item = IpNet>) -> Self {
        let mut options = Self::iis().forward_limit(None);
        options.known_networks.extend(networks);
        options
    }

    /// How many entries, from the right, to apply at most; `None` for no limit. A value above
    /// 1 trusts as many proxies in a row, so set known proxies/networks to match.
    pub fn forward_limit(mut self, limit: Option<usize>) -> Self {
        self.forward_limit = limit;
        self
    }

    /// Replace the known proxy addresses.
    pub fn known_proxies(mut self, proxies: impl IntoIterator<Item = IpAddr>) -> Self {
        self.known_proxies = proxies.into_iter().collect();
        self
    }

    /// Replace the known proxy networks.
    pub fn known_networks(mut self, networks: impl IntoIterator<Item = IpNet>) -> Self {
        self.known_networks = networks.into_iter().collect();
        self
    }

    /// Trust every peer: clear the known proxies and networks. Anyone who can connect can
    /// then set the client address, scheme, host and prefix.
    pub fn trust_all_peers(self) -> Self {
        self.known_proxies([]).known_networks([])
    }

    /// The hosts `X-Forwarded-Host` may name (ignoring case and port): `example.com`, or
    /// `*.example.com` for subdomains only. Empty, `*`, `[::]` or `0.0.0.0` allow any.
    pub fn allowed_hosts<T: AsRef<str>>(mut self, hosts: impl IntoIterator<Item = T>) -> Self {
        let mut patterns = Vec::new();
        for host in hosts {
            let host = host.as_ref().trim();
            if matches!(host, "*" | "[::]" | "0.0.0.0") {
                self.allowed_hosts = AllowedHosts::Any;
                return self;
            }
            if !host.is_empty() {
                patterns.push(host.to_ascii_lowercase().into_boxed_str());
            }
        }
        self.allowed_hosts = if patterns.is_empty() {
            AllowedHosts::Any
        } else {
            AllowedHosts::Only(patterns)
        };
        self
    }

    /// Whether every enabled header must have the same number of entries (and none may be
    /// missing or invalid); otherwise nothing is applied.
    pub fn require_header_symmetry(mut self, require: bool) -> Self {
        self.require_header_symmetry = require;
        self
    }

    pub(crate) fn checks_known_peers(&self) -> bool {
        !self.known_proxies.is_empty() || !self.known_networks.is_empty()
    }

    /// Whether `ip` is a known proxy; IPv4-mapped IPv6 addresses are also checked as IPv4.
    pub(crate) fn is_known(&self, ip: IpAddr) -> bool {
        let known = |ip: IpAddr| {
            self.known_proxies.contains(&ip) || self.known_networks.iter().any(|n| n.contains(&ip))
        };
        known(ip)
            || match ip {
                IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some_and(|v4| known(IpAddr::V4(v4))),
                IpAddr::V4(_) => false,
            }
    }
}

impl Default for ForwardedHeadersOptions {
    /// [`ForwardedHeadersOptions::iis`].
    fn default() -> Self {
        Self::iis()
    }
}

#[derive(Clone, Debug)]
pub(crate) enum AllowedHosts {
    Any,
    Only(Vec<Box<str>>),
}

impl AllowedHosts {
    /// Whether a syntactically valid `host[:port]` is allowed.
    pub(crate) fn allows(&self, host: &str) -> bool {
        let AllowedHosts::Only(patterns) = self else {
            return true;
        };
        let name = strip_port(host);
        patterns.iter().any(|pattern| {
            let pattern = strip_port(pattern);
            match pattern.strip_prefix("*.") {
                // Subdomains only: `a.example.com`, not `example.com`.
                Some(suffix) => {
                    name.len() > suffix.len() + 1
                        && name.as_bytes()[name.len() - suffix.len() - 1] == b'.'
                        && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                }
                None => name.eq_ignore_ascii_case(pattern),
            }
        })
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_peers_include_ipv4_mapped() {
        let o = ForwardedHeadersOptions::iis();
        assert!(o.is_known("127.0.0.1".parse().unwrap()));
        assert!(o.is_known("127.9.8.7".parse().unwrap()));
        assert!(o.is_known("::1".parse().unwrap()));
        assert!(o.is_known("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!o.is_known("10.0.0.1".parse().unwrap()));
        assert!(!o.is_known("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!o.is_known("::2".parse().unwrap()));
        assert!(!o.clone().trust_all_peers().checks_known_peers());
    }

    #[test]
    fn allowed_hosts() {
        let o = ForwardedHeadersOptions::iis().allowed_hosts(["Example.com", "*.example.org"]);
        let allows = |h| o.allowed_hosts.allows(h);
        assert!(allows("example.com") && allows("EXAMPLE.com:8080"));
        assert!(!allows("www.example.com"));
        assert!(allows("a.example.org") && allows("a.b.example.org:1"));
        assert!(!allows("example.org") && !allows("badexample.org"));
        let any = ForwardedHeadersOptions::iis().allowed_hosts(["x", "*"]);
        assert!(any.allowed_hosts.allows("anything"));
        let v6 = ForwardedHeadersOptions::iis().allowed_hosts(["[::1]"]);
        assert!(v6.allowed_hosts.allows("[::1]:80") && !v6.allowed_hosts.allows("[::2]"));
    }
}
