//! Framework versions and the .NET host's roll-forward rules: which installed framework a
//! reference binds to.
use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A framework version: SemVer 2 (`8.0.11`, `9.0.0-preview.7.24405.7`), compared as SemVer
/// compares (build metadata after `+` is kept for display and ignored in comparisons).
#[derive(Debug, Clone, Eq)]
pub struct FrameworkVersion {
    /// Major version.
    pub major: u64,
    /// Minor version.
    pub minor: u64,
    /// Patch version.
    pub patch: u64,
    /// The pre-release part after `-`, if any (`preview.7.24405.7`).
    pub pre: Option<String>,
    /// The build metadata after `+`, if any.
    pub build: Option<String>,
}

/// A version string that is not `MAJOR.MINOR.PATCH[-PRE][+BUILD]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a version (MAJOR.MINOR.PATCH)")]
pub struct InvalidVersion(pub String);

impl FrameworkVersion {
    /// Whether this is a pre-release (`9.0.0-rc.1`).
    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some()
    }

    fn same_minor(&self, other: &Self) -> bool {
        self.major == other.major && self.minor == other.minor
    }
}

impl FromStr for FrameworkVersion {
    type Err = InvalidVersion;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidVersion(text.to_owned());
        let (rest, build) = match text.split_once('+') {
            Some((rest, build)) if !build.is_empty() => (rest, Some(build.to_owned())),
            Some(_) => return Err(invalid()),
            None => (text, None),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((core, pre)) if !pre.is_empty() => (core, Some(pre.to_owned())),
            Some(_) => return Err(invalid()),
            None => (rest, None),
        };
        let number = |part: Option<&str>| {
            part.filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u64>().ok())
        };
        let mut parts = core.split('.');
        let (Some(major), Some(minor), Some(patch), None) = (
            number(parts.next()),
            number(parts.next()),
            number(parts.next()),
            parts.next(),
        ) else {
            return Err(invalid());
        };
        Ok(Self {
            major,
            minor,
            patch,
            pre,
            build,
        })
    }
}

impl fmt::Display for FrameworkVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(pre) = &self.pre {
            write!(f, "-{pre}")?;
        }
        if let Some(build) = &self.build {
            write!(f, "+{build}")?;
        }
        Ok(())
    }
}

impl PartialEq for FrameworkVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl PartialOrd for FrameworkVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for FrameworkVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| match (&self.pre, &other.pre) {
                (None, None) => Ordering::Equal,
                // A pre-release comes before its release.
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => compare_prerelease(a, b),
            })
    }
}

/// SemVer 2 precedence of two pre-release parts: identifier by identifier, numbers
/// numerically and below text, text in ASCII order, a shorter list first when equal so far.
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let numeric = |s: &str| {
                    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| s.parse::<u128>().ok())
                        .flatten()
                };
                let order = match (numeric(x), numeric(y)) {
                    (Some(n), Some(m)) => n.cmp(&m),
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

/// A roll-forward policy (`rollForward` in runtimeconfig.json, `DOTNET_ROLL_FORWARD`,
/// `dotnet --roll-forward`): which installed versions a framework reference may bind to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RollForward {
    /// Only the version asked for.
    Disable,
    /// The highest patch of the requested major.minor.
    LatestPatch,
    /// The requested minor if present (latest patch), else the lowest higher minor of the
    /// same major. The default.
    #[default]
    Minor,
    /// The highest minor (and patch) of the requested major.
    LatestMinor,
    /// The requested major if present (as `Minor`), else the lowest higher major.
    Major,
    /// The highest version of any major.
    LatestMajor,
}

/// A text that names no roll-forward policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a roll-forward policy (Disable, LatestPatch, Minor, LatestMinor, Major, LatestMajor)"
)]
pub struct InvalidRollForward(pub String);

impl RollForward {
    /// Every policy, in the order of how far it may roll.
    pub const ALL: [RollForward; 6] = [
        RollForward::Disable,
        RollForward::LatestPatch,
        RollForward::Minor,
        RollForward::LatestMinor,
        RollForward::Major,
        RollForward::LatestMajor,
    ];

    /// The name as the .NET documentation writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            RollForward::Disable => "Disable",
            RollForward::LatestPatch => "LatestPatch",
            RollForward::Minor => "Minor",
            RollForward::LatestMinor => "LatestMinor",
            RollForward::Major => "Major",
            RollForward::LatestMajor => "LatestMajor",
        }
    }

    /// The legacy `rollForwardOnNoCandidateFx` values: 0 → `LatestPatch`, 1 → `Minor`,
    /// 2 → `Major`.
    pub fn from_legacy(value: u64) -> Option<Self> {
        match value {
            0 => Some(RollForward::LatestPatch),
            1 => Some(RollForward::Minor),
            2 => Some(RollForward::Major),
            _ => None,
        }
    }

    /// Whether `candidate` is inside this policy's range for `requested` (never lower).
    fn allows(self, requested: &FrameworkVersion, candidate: &FrameworkVersion) -> bool {
        candidate >= requested
            && match self {
                RollForward::Disable => candidate == requested,
                RollForward::LatestPatch => candidate.same_minor(requested),
                RollForward::Minor | RollForward::LatestMinor => candidate.major == requested.major,
                RollForward::Major | RollForward::LatestMajor => true,
            }
    }

    /// Whether the highest version in range wins rather than the closest.
    fn to_highest(self) -> bool {
        matches!(self, RollForward::LatestMinor | RollForward::LatestMajor)
    }
}

impl FromStr for RollForward {
    type Err = InvalidRollForward;

    /// Case-insensitive, as the host reads it.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        RollForward::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| InvalidRollForward(text.to_owned()))
    }
}

impl fmt::Display for RollForward {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The version the .NET host binds a reference to `requested` under `policy`, among
/// `available` (the installed versions of that framework), or `None`.
///
/// The host's rules (dotnet/runtime `framework-version-resolution.md`): never lower than
/// requested; within the policy's range the closest version wins (`LatestMinor`,
/// `LatestMajor`: the highest), then, unless the policy is `Disable`, the highest patch of
/// that major.minor. A release reference considers release versions first and pre-releases
/// only when no release fits; a pre-release reference, or `to_prerelease`
/// (`DOTNET_ROLL_FORWARD_TO_PRERELEASE=1`), considers both alike.
///
/// ```
/// use ancm_hosting::dotnet::{FrameworkVersion, RollForward, select_version};
/// let v = |s: &str| s.parse::<FrameworkVersion>().unwrap();
/// let installed = [v("6.0.36"), v("8.0.4"), v("8.0.11"), v("9.0.0")];
/// assert_eq!(select_version(&v("8.0.0"), RollForward::Minor, false, &installed), Some(v("8.0.11")));
/// assert_eq!(select_version(&v("7.0.0"), RollForward::Minor, false, &installed), None);
/// assert_eq!(select_version(&v("7.0.0"), RollForward::Major, false, &installed), Some(v("8.0.11")));
/// assert_eq!(select_version(&v("6.0.0"), RollForward::LatestMajor, false, &installed), Some(v("9.0.0")));
/// ```
pub fn select_version(
    requested: &FrameworkVersion,
    policy: RollForward,
    to_prerelease: bool,
    available: &[FrameworkVersion],
) -> Option<FrameworkVersion> {
    if policy == RollForward::Disable {
        return available.iter().find(|v| *v == requested).cloned();
    }
    let all_alike = to_prerelease || requested.is_prerelease();
    let passes: &[bool] = if all_alike { &[true] } else { &[false, true] };
    for &with_prereleases in passes {
        let candidates: Vec<&FrameworkVersion> = available
            .iter()
            .filter(|v| policy.allows(requested, v))
            .filter(|v| with_prereleases || !v.is_prerelease())
            .collect();
        let best = if policy.to_highest() {
            candidates.iter().max()
        } else {
            candidates.iter().min()
        };
        let Some(best) = best else { continue };
        return candidates
            .iter()
            .filter(|v| v.same_minor(best))
            .max()
            .map(|v| (*v).clone());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> FrameworkVersion {
        s.parse().expect("version")
    }

    fn vs(list: &[&str]) -> Vec<FrameworkVersion> {
        list.iter().map(|s| v(s)).collect()
    }

    #[test]
    fn versions_parse_and_order_as_semver() {
        assert_eq!(v("8.0.11").to_string(), "8.0.11");
        assert_eq!(
            v("9.0.0-preview.7.24405.7+abc").to_string(),
            "9.0.0-preview.7.24405.7+abc"
        );
        for bad in [
            "8", "8.0", "8.0.x", "8.0.1.2", "8.0.1-", "", "v8.0.1", "8.0.1+",
        ] {
            assert!(bad.parse::<FrameworkVersion>().is_err(), "{bad}");
        }
        let mut list = vs(&[
            "9.0.0",
            "9.0.0-rc.1",
            "9.0.0-preview.7",
            "9.0.0-preview.10",
            "8.0.11",
            "8.0.4",
            "9.0.0-rc.1.x",
        ]);
        list.sort();
        let sorted: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(
            sorted,
            [
                "8.0.4",
                "8.0.11",
                "9.0.0-preview.7",
                "9.0.0-preview.10",
                "9.0.0-rc.1",
                "9.0.0-rc.1.x",
                "9.0.0"
            ]
        );
        assert_eq!(v("1.0.0+a"), v("1.0.0+b"));
    }

    #[test]
    fn policies_parse_case_insensitively() {
        assert_eq!("latestmajor".parse(), Ok(RollForward::LatestMajor));
        assert_eq!(" Minor ".parse(), Ok(RollForward::Minor));
        assert!("Feature".parse::<RollForward>().is_err());
        assert_eq!(RollForward::default(), RollForward::Minor);
        assert_eq!(RollForward::from_legacy(0), Some(RollForward::LatestPatch));
        assert_eq!(RollForward::from_legacy(3), None);
    }

    #[test]
    fn each_policy_binds_as_the_host_does() {
        let installed = vs(&["2.1.0", "2.1.3", "2.2.0", "2.2.5", "3.0.0", "3.1.2"]);
        let pick = |req: &str, p| select_version(&v(req), p, false, &installed);
        use RollForward::*;
        assert_eq!(pick("2.1.0", Disable), Some(v("2.1.0")));
        assert_eq!(pick("2.1.1", Disable), None);
        assert_eq!(pick("2.1.0", LatestPatch), Some(v("2.1.3")));
        assert_eq!(pick("2.1.4", LatestPatch), None);
        assert_eq!(pick("2.1.0", Minor), Some(v("2.1.3")));
        assert_eq!(pick("2.1.4", Minor), Some(v("2.2.5")));
        assert_eq!(pick("2.3.0", Minor), None);
        assert_eq!(pick("2.1.0", LatestMinor), Some(v("2.2.5")));
        assert_eq!(pick("2.3.0", Major), Some(v("3.0.0")));
        assert_eq!(pick("2.1.0", Major), Some(v("2.1.3")));
        assert_eq!(pick("2.1.0", LatestMajor), Some(v("3.1.2")));
        assert_eq!(pick("4.0.0", LatestMajor), None);
    }

    #[test]
    fn prereleases_only_when_no_release_fits() {
        let pick = |req: &str, installed: &[&str], to_pre| {
            select_version(&v(req), RollForward::Minor, to_pre, &vs(installed))
        };
        // From the host's design document.
        assert_eq!(
            pick("3.0.0", &["3.0.0", "3.0.1-preview"], false),
            Some(v("3.0.0"))
        );
        assert_eq!(
            pick("3.0.0", &["3.0.1-preview", "3.1.0"], false),
            Some(v("3.1.0"))
        );
        assert_eq!(
            pick("3.0.0", &["3.0.1-preview"], false),
            Some(v("3.0.1-preview"))
        );
        assert_eq!(
            pick("3.0.0", &["3.0.0", "3.0.1-preview"], true),
            Some(v("3.0.1-preview"))
        );
        assert_eq!(
            pick("3.0.0", &["3.0.1-preview", "3.1.0"], true),
            Some(v("3.0.1-preview"))
        );
        // A pre-release reference takes release and pre-release alike, never lower.
        assert_eq!(
            pick("9.0.0-preview.1", &["9.0.0-preview.2", "9.0.0"], false),
            Some(v("9.0.0"))
        );
        assert_eq!(pick("3.0.0", &["3.0.0-preview"], false), None);
    }
}
