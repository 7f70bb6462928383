//! How long each phase of a forwarded exchange may wait: web.config's `requestTimeout`.
//!
//! ```
//! use std::time::Duration;
//! use ancm_front::RequestTimeout;
//!
//! // web.config's value: `00:00:00` means no limit.
//! assert_eq!(RequestTimeout::from_web_config(Duration::ZERO), RequestTimeout::Unlimited);
//! assert_eq!(
//!     RequestTimeout::from_web_config(Duration::from_secs(300)),
//!     RequestTimeout::After(Duration::from_secs(300)),
//! );
//! // A backend target inherits the forwarder's unless it has its own.
//! let forwarder = RequestTimeout::ANCM_DEFAULT;
//! assert_eq!(RequestTimeout::Inherit.or(forwarder), forwarder);
//! assert_eq!(RequestTimeout::Unlimited.or(forwarder).limit(), None);
//! assert_eq!(forwarder.limit(), Some(RequestTimeout::WEB_CONFIG_DEFAULT));
//! ```
//!
//! The limit applies per phase, like WinHTTP's in ANCM (protocol §1.7): the connect, the
//! wait for the response head, and each idle gap between body chunks in either direction.
use std::time::Duration;

/// A `requestTimeout`: inherited, none, or a per-phase limit.
///
/// On a [`BackendTarget`](crate::BackendTarget) (default [`Inherit`](Self::Inherit)) it
/// overrides the forwarder's, so a recycle with a new web.config applies it. On the
/// [`ForwardConfig`](crate::forward::ForwardConfig) (default
/// [`ANCM_DEFAULT`](Self::ANCM_DEFAULT)) there is nothing to inherit from: `Inherit` there
/// means the ANCM default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RequestTimeout {
    /// Use the enclosing setting (a backend target: the forwarder's).
    #[default]
    Inherit,
    /// Wait as long as it takes (web.config `00:00:00`).
    Unlimited,
    /// Fail a phase that waits longer than this. `Duration::ZERO` fails every exchange; a
    /// web.config zero means [`Unlimited`](Self::Unlimited)
    /// ([`from_web_config`](Self::from_web_config)).
    After(Duration),
}

impl RequestTimeout {
    /// ANCM's default `requestTimeout` as web.config writes it: two minutes (`00:02:00`,
    /// protocol §3.1).
    pub const WEB_CONFIG_DEFAULT: Duration = Duration::from_secs(120);

    /// ANCM's default: [`After`](Self::After) [`WEB_CONFIG_DEFAULT`](Self::WEB_CONFIG_DEFAULT).
    pub const ANCM_DEFAULT: Self = Self::After(Self::WEB_CONFIG_DEFAULT);

    /// The timeout a web.config `requestTimeout` value means: zero is no limit.
    pub fn from_web_config(value: Duration) -> Self {
        if value.is_zero() {
            Self::Unlimited
        } else {
            Self::After(value)
        }
    }

    /// This timeout, or `outer` when this one is [`Inherit`](Self::Inherit).
    pub fn or(self, outer: Self) -> Self {
        match self {
            Self::Inherit => outer,
            own => own,
        }
    }

    /// The limit of each phase: `None` waits forever. `Inherit`, with nothing left to inherit
    /// from, is the ANCM default.
    pub fn limit(self) -> Option<Duration> {
        match self {
            Self::Inherit => Some(Self::WEB_CONFIG_DEFAULT),
            Self::Unlimited => None,
            Self::After(limit) => Some(limit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_against_the_outer_setting() {
        let secs = |s| RequestTimeout::After(Duration::from_secs(s));
        for outer in [RequestTimeout::Unlimited, secs(5), RequestTimeout::Inherit] {
            assert_eq!(RequestTimeout::Inherit.or(outer), outer);
            assert_eq!(
                RequestTimeout::Unlimited.or(outer),
                RequestTimeout::Unlimited
            );
            assert_eq!(secs(7).or(outer), secs(7));
        }
        assert_eq!(RequestTimeout::default(), RequestTimeout::Inherit);
        assert_eq!(
            RequestTimeout::Inherit.limit(),
            RequestTimeout::ANCM_DEFAULT.limit()
        );
        assert_eq!(secs(0).limit(), Some(Duration::ZERO));
        assert_eq!(
            RequestTimeout::from_web_config(RequestTimeout::WEB_CONFIG_DEFAULT),
            RequestTimeout::ANCM_DEFAULT
        );
    }
}
