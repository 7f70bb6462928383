//! The forwarded-headers algorithm of ASP.NET Core's `ForwardedHeadersMiddleware`.
//!
//! Over 500 lines with its unit tests, which take each rule of the walk in turn; the code is
//! one algorithm, read top to bottom: what an entry comes to, the walk, the rewrite.
use std::io::Write as _;
use std::net::SocketAddr;
use std::ops::ControlFlow;

use ancm_protocol::forwarded::{is_valid_host, parse_for};
use ancm_protocol::headers::{
    X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PREFIX, X_FORWARDED_PROTO, X_ORIGINAL_FOR,
    X_ORIGINAL_HOST, X_ORIGINAL_PREFIX, X_ORIGINAL_PROTO,
};
use http::header::HOST;
use http::uri::Authority;
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, Uri};

use super::list::{self, Entries};
use super::options::{ForwardedHeadersOptions, XForwarded};
use crate::extensions::{ClientAddr, PathBase, Scheme, peer_addr};
use crate::step::Step;

#[derive(Debug)]
pub(crate) struct ForwardedStep {
    options: ForwardedHeadersOptions,
}

/// The `X-Forwarded-*` headers, in the order a step of the walk reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    For,
    Proto,
    Host,
    Prefix,
}

/// Their names, indexed by [`Kind`].
static NAMES: [HeaderName; 4] = [
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    X_FORWARDED_PREFIX,
];

impl Kind {
    const ALL: [Kind; 4] = [Kind::For, Kind::Proto, Kind::Host, Kind::Prefix];

    fn flag(self) -> XForwarded {
        match self {
            Kind::For => XForwarded::FOR,
            Kind::Proto => XForwarded::PROTO,
            Kind::Host => XForwarded::HOST,
            Kind::Prefix => XForwarded::PREFIX,
        }
    }

    fn name(self) -> &'static HeaderName {
        &NAMES[self as usize]
    }

    /// Whether the nearest proxy appends to this header (ANCM does to For and Proto), so
    /// that its entry is the text after the last comma (protocol §8.24).
    fn is_appended(self) -> bool {
        matches!(self, Kind::For | Kind::Proto)
    }

    /// What this header's entry of one step (`None`: it has no more) comes to.
    fn read(self, item: Option<&str>, options: &ForwardedHeadersOptions) -> Entry {
        let value = match self {
            Kind::For => match item {
                None => None,
                Some(item) => match parse_for(item) {
                    Some((ip, port)) => Some(Value::For(SocketAddr::new(ip, port))),
                    // Not logged: the value is the client's, or a proxy's gone wrong.
                    None => return Entry::Stop,
                },
            },
            Kind::Proto => item.and_then(Scheme::parse).map(Value::Proto),
            Kind::Host => item
                .filter(|h| is_valid_host(h) && options.allowed_hosts.allows(h))
                .and_then(|h| HeaderValue::from_str(h).ok())
                .map(Value::Host),
            Kind::Prefix => item
                .filter(|p| p.starts_with('/'))
                .map(|p| Value::Prefix(decode_prefix(p))),
        };
        value.map_or(Entry::Rejected, Entry::Accepted)
    }
}

/// What one entry comes to.
enum Entry {
    Accepted(Value),
    /// Missing or invalid: ignored, unless symmetry is required (then nothing is applied).
    Rejected,
    /// An `X-Forwarded-For` entry that does not parse: the walk ends before it, or, for the
    /// entry the socket peer appended, the request is refused.
    Stop,
}

/// An accepted entry: the request's new client endpoint, scheme, `Host` or path base.
enum Value {
    For(SocketAddr),
    Proto(Scheme),
    Host(HeaderValue),
    Prefix(String),
}

/// One enabled header during the walk.
struct Walk<'a> {
    kind: Kind,
    /// The entries not taken yet; the walk takes them from the right.
    items: Entries<'a>,
    /// The entry the current step took. A step that stops the walk leaves its entries in the
    /// header; one that completes consumes them.
    taken: Option<&'a str>,
    /// The last entry accepted.
    accepted: Option<Value>,
}

impl Walk<'_> {
    /// The header's rewrite once the walk applied something: For whenever there is an
    /// endpoint (the walk starts at the peer), the others when an entry was accepted.
    fn finish(self, peer: Option<SocketAddr>) -> Option<Rewrite> {
        let value = match (self.accepted, self.kind) {
            (Some(value), _) => value,
            // As ASP.NET Core: with For enabled the endpoint is (re)set from the walk, which
            // starts at the peer, even when only another header applied.
            (None, Kind::For) => Value::For(peer?),
            (None, _) => return None,
        };
        let kept = self
            .items
            .chain(self.taken)
            .filter_map(|item| HeaderValue::from_str(item).ok())
            .collect();
        Some(Rewrite { value, kept })
    }
}

/// The request is refused: the `X-Forwarded-For` entry the trusted socket peer appended is
/// not an IP endpoint (protocol §8.24).
#[derive(Debug, PartialEq, Eq)]
struct UnparsableAppendedFor;

/// A header to rewrite, owned, so the request can change once the walk is over.
struct Rewrite {
    value: Value,
    /// The entries the walk did not consume: the header's new lines (none: it is removed).
    kept: Vec<HeaderValue>,
}

impl ForwardedStep {
    pub(crate) fn new(options: ForwardedHeadersOptions) -> Self {
        Self { options }
    }

    /// Walk the entries from the right (protocol §4.5 steps 1–3): the headers to rewrite, by
    /// [`Kind`]; none when nothing is to be applied. Refused when the first step's
    /// `X-Forwarded-For` entry, the one the trusted socket peer appended, does not parse.
    fn accept(
        &self,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
    ) -> Result<[Option<Rewrite>; 4], UnparsableAppendedFor> {
        let o = &self.options;
        let found = crate::headers::find(headers, NAMES.each_ref());
        // The text of a header whose lines must be joined into one list (rare).
        let mut joined: [String; 4] = Default::default();
        let mut walks: [Option<Walk<'_>>; 4] = Default::default();
        for ((kind, lines), joined) in Kind::ALL.into_iter().zip(found).zip(&mut joined) {
            if o.headers.contains(kind.flag()) {
                walks[kind as usize] = Some(Walk {
                    kind,
                    items: list::read(headers, kind.name(), lines, joined, kind.is_appended()),
                    taken: None,
                    accepted: None,
                });
            }
        }
        let symmetry = o.require_header_symmetry;
        if symmetry {
            let lens = walks
                .each_ref()
                .map(|walk| walk.as_ref().map_or(0, |walk| walk.items.clone().count()));
            let mut counts = walks.iter().zip(lens).filter(|(walk, _)| walk.is_some());
            if let Some((_, first)) = counts.next()
                && counts.any(|(_, len)| len != first)
            {
                tracing::warn!(
                    ?lens,
                    "forwarded headers have different entry counts; none applied"
                );
                return Ok(Default::default());
            }
        }
        let check_known = o.checks_known_peers();
        let mut current_ip = peer.map(|p| p.ip());
        let mut applied = false;
        'walk: for step in 0..o.forward_limit.unwrap_or(usize::MAX) {
            // Each step takes the next entry from the right of every enabled header first:
            // when all are used up the walk is over (so nothing has to count the entries
            // beforehand), and when it stops early the step's entries are left in place.
            let mut taken_any = false;
            for walk in walks.iter_mut().flatten() {
                walk.taken = walk.items.next_back();
                taken_any |= walk.taken.is_some();
            }
            if !taken_any {
                break;
            }
            if check_known && !current_ip.is_some_and(|ip| o.is_known(ip)) {
                // Stop at the first unknown peer; what earlier entries set still applies.
                tracing::debug!(peer = ?current_ip, "forwarded headers: unknown proxy");
                break;
            }
            for walk in walks.iter_mut().flatten() {
                match walk.kind.read(walk.taken, o) {
                    Entry::Accepted(value) => {
                        if let Value::For(endpoint) = value {
                            current_ip = Some(endpoint.ip());
                        }
                        walk.accepted = Some(value);
                        applied = true;
                    }
                    // The socket peer is trusted and For is enabled: what it appended must be
                    // an endpoint, or the app would see the peer (loopback) as the client.
                    Entry::Stop if step == 0 => return Err(UnparsableAppendedFor),
                    // Further left are claims the trusted peer passed on: stop before them,
                    // as ASP.NET Core does.
                    Entry::Stop => {
                        tracing::debug!(step, "unparsable X-Forwarded-For entry; walk stopped");
                        break 'walk;
                    }
                    Entry::Rejected if symmetry => {
                        tracing::warn!(
                            header = %walk.kind.name(),
                            "missing or invalid forwarded entry; none applied"
                        );
                        return Ok(Default::default());
                    }
                    Entry::Rejected => {}
                }
            }
            for walk in walks.iter_mut().flatten() {
                walk.taken = None;
            }
        }
        let mut rewrites: [Option<Rewrite>; 4] = Default::default();
        if applied {
            for (walk, rewrite) in walks.iter_mut().zip(&mut rewrites) {
                *rewrite = walk.take().and_then(|walk| walk.finish(peer));
            }
        }
        Ok(rewrites)
    }
}

impl Step for ForwardedStep {
    fn apply<B>(&self, req: &mut Request<B>) -> ControlFlow<StatusCode> {
        let peer = peer_addr(req.extensions());
        let mut scheme = match req.extensions().get::<Scheme>() {
            Some(scheme) => scheme.clone(),
            None => req
                .uri()
                .scheme_str()
                .and_then(Scheme::parse)
                .unwrap_or(Scheme::HTTP),
        };
        let mut rewrites = match self.accept(req.headers(), peer) {
            Ok(rewrites) => rewrites,
            Err(UnparsableAppendedFor) => {
                // Never the value: it may be anything a client managed to put there.
                tracing::warn!(
                    peer = ?peer,
                    "the X-Forwarded-For entry the trusted proxy appended is not an IP \
                     endpoint; answering 400"
                );
                return ControlFlow::Break(StatusCode::BAD_REQUEST);
            }
        };
        let mut client = peer;
        for Rewrite { value, kept } in rewrites.iter_mut().filter_map(Option::take) {
            // Each removes the forwarded header before inserting, so the map rarely grows.
            match value {
                Value::For(endpoint) => {
                    let headers = req.headers_mut();
                    replace_lines(headers, &X_FORWARDED_FOR, kept);
                    if let Some(peer) = peer {
                        headers.insert(X_ORIGINAL_FOR, endpoint_value(peer));
                    }
                    client = Some(endpoint);
                }
                Value::Proto(forwarded) => {
                    let headers = req.headers_mut();
                    replace_lines(headers, &X_FORWARDED_PROTO, kept);
                    headers.insert(X_ORIGINAL_PROTO, scheme_value(&scheme));
                    scheme = forwarded;
                }
                Value::Host(host) => {
                    let original = match req.headers().get(HOST) {
                        Some(h) => h.clone(),
                        None => req
                            .uri()
                            .authority()
                            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
                            .unwrap_or_else(|| HeaderValue::from_static("")),
                    };
                    let headers = req.headers_mut();
                    replace_lines(headers, &X_FORWARDED_HOST, kept);
                    headers.insert(X_ORIGINAL_HOST, original);
                    if req.uri().authority().is_some() {
                        set_authority(req.uri_mut(), &host);
                    }
                    req.headers_mut().insert(HOST, host);
                }
                Value::Prefix(prefix) => {
                    let previous = req
                        .extensions()
                        .get::<PathBase>()
                        .filter(|p| !p.is_empty())
                        .and_then(|p| HeaderValue::from_str(p.as_str()).ok());
                    let headers = req.headers_mut();
                    replace_lines(headers, &X_FORWARDED_PREFIX, kept);
                    if let Some(previous) = previous {
                        headers.insert(X_ORIGINAL_PREFIX, previous);
                    }
                    req.extensions_mut().insert(PathBase::new(&prefix));
                }
            }
        }
        if let Some(client) = client {
            req.extensions_mut().insert(ClientAddr(client));
        }
        req.extensions_mut().insert(scheme);
        ControlFlow::Continue(())
    }
}

/// Replace the header by `lines`, one header line each; with none, remove it.
fn replace_lines(headers: &mut HeaderMap, name: &HeaderName, lines: Vec<HeaderValue>) {
    headers.remove(name);
    for value in lines {
        headers.append(name, value);
    }
}

/// `127.0.0.1:60000` / `[::1]:60000`, formatted without a heap string.
fn endpoint_value(addr: SocketAddr) -> HeaderValue {
    let mut buf = [0u8; 64];
    let len = match addr {
        // The common loopback peer: digits by hand, no formatting machinery.
        SocketAddr::V4(v4) => {
            let mut len = 0;
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    buf[len] = b'.';
                    len += 1;
                }
                len += write_decimal(&mut buf[len..], u32::from(octet));
            }
            buf[len] = b':';
            len + 1 + write_decimal(&mut buf[len + 1..], u32::from(v4.port()))
        }
        SocketAddr::V6(_) => {
            let mut cursor = std::io::Cursor::new(&mut buf[..]);
            if write!(cursor, "{addr}").is_err() {
                return HeaderValue::from_str(&addr.to_string())
                    .unwrap_or_else(|_| HeaderValue::from_static(""));
            }
            usize::try_from(cursor.position()).unwrap_or(0)
        }
    };
    HeaderValue::from_bytes(&buf[..len]).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Write `n` (at most 5 digits here) in decimal at the start of `out`; returns the length.
fn write_decimal(out: &mut [u8], mut n: u32) -> usize {
    let mut digits = [0u8; 10];
    let mut count = 0;
    loop {
        digits[count] = b'0' + (n % 10) as u8;
        count += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (slot, digit) in out.iter_mut().zip(digits[..count].iter().rev()) {
        *slot = *digit;
    }
    count
}

fn scheme_value(scheme: &Scheme) -> HeaderValue {
    match scheme.as_str() {
        ancm_protocol::forwarded::HTTP => HeaderValue::from_static(ancm_protocol::forwarded::HTTP),
        ancm_protocol::forwarded::HTTPS => {
            HeaderValue::from_static(ancm_protocol::forwarded::HTTPS)
        }
        other => HeaderValue::from_str(other).unwrap_or_else(|_| HeaderValue::from_static("")),
    }
}

fn set_authority(uri: &mut Uri, host: &HeaderValue) {
    let Ok(authority) = Authority::try_from(host.as_bytes()) else {
        return;
    };
    let mut parts = uri.clone().into_parts();
    parts.authority = Some(authority);
    if let Ok(rewritten) = Uri::from_parts(parts) {
        *uri = rewritten;
    }
}

/// `PathString.FromUriComponent`: percent-decode, except `%2F` stays encoded.
fn decode_prefix(prefix: &str) -> String {
    if !prefix.contains('%') {
        return prefix.to_owned();
    }
    let bytes = prefix.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if let Some([b'%', hi, lo]) = bytes.get(i..i + 3)
            && let (Some(hi), Some(lo)) = ((*hi as char).to_digit(16), (*lo as char).to_digit(16))
            && let Ok(byte) = u8::try_from(hi << 4 | lo)
            && byte != b'/'
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| prefix.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extensions::PeerAddr;

    struct Seen {
        client: Option<SocketAddr>,
        scheme: String,
        headers: HeaderMap,
        path_base: String,
    }

    fn run(options: ForwardedHeadersOptions, peer: Option<&str>, headers: &[(&str, &str)]) -> Seen {
        let step = ForwardedStep::new(options);
        let mut req = Request::get("/").body(()).unwrap();
        for (name, value) in headers {
            req.headers_mut().append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        if let Some(peer) = peer {
            req.extensions_mut().insert(PeerAddr(peer.parse().unwrap()));
        }
        assert_eq!(step.apply(&mut req), ControlFlow::Continue(()));
        Seen {
            client: req.extensions().get::<ClientAddr>().map(|c| c.0),
            scheme: req.extensions().get::<Scheme>().unwrap().to_string(),
            path_base: req
                .extensions()
                .get::<PathBase>()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            headers: req.headers().clone(),
        }
    }

    fn values(headers: &HeaderMap, name: &str) -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    const PEER: Option<&str> = Some("127.0.0.1:60000");

    #[test]
    fn ancm_case() {
        let s = run(
            ForwardedHeadersOptions::iis(),
            PEER,
            &[
                ("x-forwarded-for", "198.51.100.1, 203.0.113.7:51000"),
                ("x-forwarded-proto", "https, http"),
            ],
        );
        assert_eq!(s.client, Some("203.0.113.7:51000".parse().unwrap()));
        assert_eq!(s.scheme, "http");
        assert_eq!(values(&s.headers, "x-forwarded-for"), ["198.51.100.1"]);
        assert_eq!(values(&s.headers, "x-forwarded-proto"), ["https"]);
        assert_eq!(values(&s.headers, "x-original-for"), ["127.0.0.1:60000"]);
        assert_eq!(values(&s.headers, "x-original-proto"), ["http"]);
    }

    #[test]
    fn limit_and_known_networks() {
        let options = ForwardedHeadersOptions::iis()
            .forward_limit(None)
            .known_networks([
                "127.0.0.0/8".parse().unwrap(),
                "10.0.0.0/8".parse().unwrap(),
            ]);
        let s = run(
            options,
            PEER,
            &[
                ("x-forwarded-for", "1.1.1.1:1, 2.2.2.2:2, 10.0.0.5:3"),
                ("x-forwarded-for", "10.1.1.1:4"),
            ],
        );
        // 10.1.1.1 and 10.0.0.5 are known, so the walk reaches 2.2.2.2 and stops after it.
        assert_eq!(s.client, Some("2.2.2.2:2".parse().unwrap()));
        assert_eq!(values(&s.headers, "x-forwarded-for"), ["1.1.1.1:1"]);
    }

    #[test]
    fn unparsable_entry_stops_but_keeps_earlier_changes() {
        let options = ForwardedHeadersOptions::iis()
            .forward_limit(Some(3))
            .trust_all_peers();
        let s = run(
            options,
            PEER,
            &[("x-forwarded-for", "3.3.3.3, garbage, 2.2.2.2:2")],
        );
        assert_eq!(s.client, Some("2.2.2.2:2".parse().unwrap()));
        assert_eq!(
            values(&s.headers, "x-forwarded-for"),
            ["3.3.3.3", "garbage"]
        );
    }

    #[test]
    fn a_walk_stopped_by_an_unknown_peer_keeps_that_steps_entries() {
        let options = ForwardedHeadersOptions::iis().forward_limit(Some(3));
        let s = run(
            options,
            PEER,
            &[
                (
                    "x-forwarded-for",
                    "9.9.9.9, 198.51.100.1, 203.0.113.7:51000",
                ),
                ("x-forwarded-proto", "ftp, https"),
            ],
        );
        // 203.0.113.7 is not a known proxy, so the second step stops the walk.
        assert_eq!(s.client, Some("203.0.113.7:51000".parse().unwrap()));
        assert_eq!(s.scheme, "https");
        assert_eq!(
            values(&s.headers, "x-forwarded-for"),
            ["9.9.9.9", "198.51.100.1"]
        );
        assert_eq!(values(&s.headers, "x-forwarded-proto"), ["ftp"]);
        assert_eq!(values(&s.headers, "x-original-proto"), ["http"]);
    }

    #[test]
    fn only_proto_applied_still_resets_for_from_the_peer() {
        let s = run(
            ForwardedHeadersOptions::iis().forward_limit(Some(2)),
            PEER,
            &[
                ("x-forwarded-for", ", ,"),
                ("x-forwarded-proto", " https , "),
            ],
        );
        assert_eq!(s.client, Some("127.0.0.1:60000".parse().unwrap()));
        assert_eq!(s.scheme, "https");
        assert!(s.headers.get("x-forwarded-for").is_none());
        assert!(s.headers.get("x-forwarded-proto").is_none());
        assert_eq!(values(&s.headers, "x-original-for"), ["127.0.0.1:60000"]);
    }

    #[test]
    fn unknown_or_missing_peer_applies_nothing() {
        for peer in [Some("192.0.2.1:5"), None] {
            let s = run(
                ForwardedHeadersOptions::iis(),
                peer,
                &[
                    ("x-forwarded-for", "2.2.2.2:2"),
                    ("x-forwarded-proto", "https"),
                ],
            );
            assert_eq!(s.client, peer.map(|p| p.parse().unwrap()));
            assert_eq!(s.scheme, "http");
            assert_eq!(values(&s.headers, "x-forwarded-for"), ["2.2.2.2:2"]);
            assert!(s.headers.get("x-original-for").is_none());
        }
    }

    #[test]
    fn symmetry() {
        let options = ForwardedHeadersOptions::iis().require_header_symmetry(true);
        let s = run(
            options.clone(),
            PEER,
            &[
                ("x-forwarded-for", "1.1.1.1, 2.2.2.2"),
                ("x-forwarded-proto", "https"),
            ],
        );
        assert_eq!(s.client, Some("127.0.0.1:60000".parse().unwrap()));
        assert_eq!(values(&s.headers, "x-forwarded-for"), ["1.1.1.1, 2.2.2.2"]);
        let s = run(
            options,
            PEER,
            &[
                ("x-forwarded-for", "2.2.2.2"),
                ("x-forwarded-proto", "ht tp"),
            ],
        );
        assert_eq!(s.scheme, "http");
        assert_eq!(s.client, Some("127.0.0.1:60000".parse().unwrap()));
    }

    #[test]
    fn proto_kept_as_given_and_invalid_ignored() {
        let s = run(
            ForwardedHeadersOptions::iis(),
            PEER,
            &[("x-forwarded-proto", "HTTPS")],
        );
        assert_eq!(s.scheme, "HTTPS");
        let s = run(
            ForwardedHeadersOptions::iis(),
            PEER,
            &[("x-forwarded-for", "1.1.1.1"), ("x-forwarded-proto", "a/b")],
        );
        assert_eq!(s.scheme, "http");
        assert_eq!(s.client, Some("1.1.1.1:0".parse().unwrap()));
        // A header whose entry was not accepted is left alone.
        assert_eq!(values(&s.headers, "x-forwarded-proto"), ["a/b"]);
        assert!(s.headers.get("x-original-proto").is_none());
        assert!(s.headers.get("x-forwarded-for").is_none());
    }

    #[test]
    fn host_and_prefix() {
        let options = ForwardedHeadersOptions::new(XForwarded::HOST | XForwarded::PREFIX)
            .allowed_hosts(["*.example.com"]);
        let s = run(
            options.clone(),
            PEER,
            &[
                ("host", "internal:8080"),
                ("x-forwarded-host", "www.example.com"),
                ("x-forwarded-prefix", "/a%20b%2Fc"),
            ],
        );
        assert_eq!(values(&s.headers, "host"), ["www.example.com"]);
        assert_eq!(values(&s.headers, "x-original-host"), ["internal:8080"]);
        assert_eq!(s.path_base, "/a b%2Fc");
        assert!(s.headers.get("x-original-prefix").is_none());
        assert!(s.headers.get("x-original-for").is_none(), "For not enabled");
        let s = run(
            options,
            PEER,
            &[
                ("host", "internal"),
                ("x-forwarded-host", "example.com"),
                ("x-forwarded-prefix", "noslash"),
            ],
        );
        assert_eq!(values(&s.headers, "host"), ["internal"]);
        assert_eq!(s.path_base, "");
    }

    #[test]
    fn ipv6_and_mapped_peers() {
        let s = run(
            ForwardedHeadersOptions::iis(),
            Some("[::1]:6000"),
            &[("x-forwarded-for", "[2001:db8::1]:51000")],
        );
        assert_eq!(s.client, Some("[2001:db8::1]:51000".parse().unwrap()));
        assert_eq!(values(&s.headers, "x-original-for"), ["[::1]:6000"]);
        let s = run(
            ForwardedHeadersOptions::iis(),
            Some("[::ffff:127.0.0.1]:6000"),
            &[("x-forwarded-for", "203.0.113.7")],
        );
        assert_eq!(s.client, Some("203.0.113.7:0".parse().unwrap()));
        assert_eq!(
            values(&s.headers, "x-original-for"),
            ["[::ffff:127.0.0.1]:6000"]
        );
    }

    /// What the step answers for a request it refuses (the app is not called).
    fn refused(
        options: ForwardedHeadersOptions,
        peer: &str,
        headers: &[(&str, &[u8])],
    ) -> ControlFlow<StatusCode> {
        let step = ForwardedStep::new(options);
        let mut req = Request::get("/").body(()).unwrap();
        for (name, value) in headers {
            req.headers_mut().append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        req.extensions_mut().insert(PeerAddr(peer.parse().unwrap()));
        step.apply(&mut req)
    }

    #[test]
    fn a_client_quote_cannot_hide_the_appended_entry() {
        // What a front that appends without looking (IIS's ANCM) sends for each client value.
        for client_sent in ["\"", "6.6.6.6\"", "\"6.6.6.6\", \"", "\"127.0.0.1\" , \"x"] {
            let xff = format!("{client_sent}, 203.0.113.7:51000");
            let xfp = format!("{client_sent}, https");
            let s = run(
                ForwardedHeadersOptions::iis(),
                PEER,
                &[("x-forwarded-for", &xff), ("x-forwarded-proto", &xfp)],
            );
            assert_eq!(
                s.client,
                Some("203.0.113.7:51000".parse().unwrap()),
                "{xff}"
            );
            assert_eq!(s.scheme, "https", "{xfp}");
            assert_eq!(values(&s.headers, "x-original-for"), ["127.0.0.1:60000"]);
        }
        let s = run(
            ForwardedHeadersOptions::iis(),
            PEER,
            &[("x-forwarded-proto", "https\", http")],
        );
        assert_eq!(s.scheme, "http");
    }

    #[test]
    fn non_utf8_before_the_appended_entry_does_not_hide_it() {
        let step = ForwardedStep::new(ForwardedHeadersOptions::iis());
        let mut req = Request::get("/").body(()).unwrap();
        req.headers_mut().insert(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"\xff\", 203.0.113.7:51000").unwrap(),
        );
        req.extensions_mut()
            .insert(PeerAddr("127.0.0.1:60000".parse().unwrap()));
        assert_eq!(step.apply(&mut req), ControlFlow::Continue(()));
        assert_eq!(
            req.extensions().get::<ClientAddr>().map(|c| c.0),
            Some("203.0.113.7:51000".parse().unwrap())
        );
    }

    #[test]
    fn an_unparsable_entry_from_the_trusted_peer_is_400() {
        for xff in [
            &b"1.2.3.4, garbage"[..],
            b"\"",
            b"1.2.3.4,",
            b"unknown",
            b"1.2.3.4, \xff",
            b"203.0.113.7:51000\"",
        ] {
            for options in [
                ForwardedHeadersOptions::iis(),
                ForwardedHeadersOptions::iis().forward_limit(Some(3)),
                ForwardedHeadersOptions::iis().trust_all_peers(),
            ] {
                assert_eq!(
                    refused(options, "127.0.0.1:60000", &[("x-forwarded-for", xff)]),
                    ControlFlow::Break(StatusCode::BAD_REQUEST),
                    "{xff:?}"
                );
            }
        }
    }

    #[test]
    fn the_400_needs_a_trusted_peer_and_for_enabled_and_present() {
        let garbage: &[(&str, &[u8])] = &[("x-forwarded-for", b"garbage")];
        // An untrusted peer's headers are not read at all.
        assert_eq!(
            refused(ForwardedHeadersOptions::iis(), "192.0.2.1:5", garbage),
            ControlFlow::Continue(())
        );
        // For not enabled.
        assert_eq!(
            refused(
                ForwardedHeadersOptions::new(XForwarded::PROTO),
                "127.0.0.1:1",
                garbage
            ),
            ControlFlow::Continue(())
        );
        // Absent, empty, or only empty entries: nothing appended, nothing to refuse.
        for xff in [&b""[..], b" ", b", ,"] {
            assert_eq!(
                refused(
                    ForwardedHeadersOptions::iis(),
                    "127.0.0.1:1",
                    &[("x-forwarded-for", xff), ("x-forwarded-proto", b"https")]
                ),
                ControlFlow::Continue(()),
                "{xff:?}"
            );
        }
        // A forward limit of zero reads nothing.
        assert_eq!(
            refused(
                ForwardedHeadersOptions::iis().forward_limit(Some(0)),
                "127.0.0.1:1",
                garbage
            ),
            ControlFlow::Continue(())
        );
    }

    #[test]
    fn further_left_an_unparsable_entry_still_stops_the_walk() {
        let options = ForwardedHeadersOptions::iis()
            .forward_limit(Some(3))
            .trust_all_peers();
        let s = run(
            options,
            PEER,
            &[("x-forwarded-for", "\"6.6.6.6, 1.1.1.1:1, 2.2.2.2:2")],
        );
        // `2.2.2.2:2` is the peer's entry; `1.1.1.1:1` the next; the quoted rest stops it.
        assert_eq!(s.client, Some("1.1.1.1:1".parse().unwrap()));
        assert_eq!(values(&s.headers, "x-forwarded-for"), ["\"6.6.6.6"]);
    }

    proptest::proptest! {
        /// Whatever a client sent before it, the entry a trusted front appended is what the
        /// app learns: ASP.NET Core's reading would give the peer for many of these.
        #[test]
        fn the_app_learns_the_appended_endpoint_whatever_came_before(
            client_sent in proptest::collection::vec(
                proptest::prop_oneof![
                    4 => proptest::sample::select(b"\",, \t[]:.0123456789abcdef%".to_vec()),
                    1 => 0x20u8..0x7f,
                    1 => 0x80u8..=0xff,
                ],
                0..24,
            ),
            endpoint in proptest::arbitrary::any::<SocketAddr>(),
            tls in proptest::arbitrary::any::<bool>(),
        ) {
            let endpoint = SocketAddr::new(endpoint.ip().to_canonical(), endpoint.port());
            let step = ForwardedStep::new(ForwardedHeadersOptions::iis());
            let mut req = Request::get("/").body(()).unwrap();
            let appended = ancm_protocol::forwarded::format_for(endpoint, true);
            let scheme = if tls { "https" } else { "http" };
            for (name, item) in [(X_FORWARDED_FOR, appended.as_str()), (X_FORWARDED_PROTO, scheme)] {
                let mut value = client_sent.clone();
                value.extend_from_slice(b", ");
                value.extend_from_slice(item.as_bytes());
                req.headers_mut().insert(name, HeaderValue::from_bytes(&value).unwrap());
            }
            req.extensions_mut().insert(PeerAddr("127.0.0.1:60000".parse().unwrap()));
            proptest::prop_assert_eq!(step.apply(&mut req), ControlFlow::Continue(()));
            proptest::prop_assert_eq!(req.extensions().get::<ClientAddr>().map(|c| c.0), Some(endpoint));
            proptest::prop_assert_eq!(req.extensions().get::<Scheme>().map(Scheme::as_str), Some(scheme));
        }
    }

    #[test]
    fn endpoint_values() {
        for addr in [
            "127.0.0.1:60000",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "10.0.20.3:7",
            "[::1]:6000",
            "[::ffff:127.0.0.1]:1",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(endpoint_value(addr), addr.to_string().as_str());
        }
    }

    #[test]
    fn decode_prefix_keeps_encoded_slash() {
        assert_eq!(decode_prefix("/a%2fb%41"), "/a%2fbA");
        assert_eq!(decode_prefix("/%ff"), "/%ff");
        assert_eq!(decode_prefix("/%4"), "/%4");
    }
}
