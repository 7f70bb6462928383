//! `<app>.runtimeconfig.json`: the shared frameworks an application needs, or the sign that
//! it brings its own runtime (a self-contained publish).
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::version::{FrameworkVersion, RollForward};

/// A reference to a shared framework: `{"name": …, "version": …, "rollForward": …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameworkReference {
    /// `Microsoft.AspNetCore.App`, `Microsoft.NETCore.App`, … (case-sensitive: a folder name).
    pub name: String,
    /// The lowest version that will do.
    pub version: FrameworkVersion,
    /// This reference's own `rollForward` (or legacy `rollForwardOnNoCandidateFx`).
    pub roll_forward: Option<RollForward>,
}

/// What a runtimeconfig.json says about frameworks.
///
/// ```
/// use ancm_hosting::dotnet::{RollForward, RuntimeConfig};
/// let config = RuntimeConfig::parse(r#"{"runtimeOptions": {"tfm": "net8.0",
///     "framework": {"name": "Microsoft.AspNetCore.App", "version": "8.0.0"},
///     "configProperties": {"System.GC.Server": true}}}"#)?;
/// assert_eq!(config.frameworks[0].name, "Microsoft.AspNetCore.App");
/// assert_eq!(config.frameworks[0].version.to_string(), "8.0.0");
/// assert!(!config.is_self_contained());
///
/// let self_contained = RuntimeConfig::parse(r#"{"runtimeOptions": {"tfm": "net8.0",
///     "includedFrameworks": [{"name": "Microsoft.NETCore.App", "version": "8.0.11"}]}}"#)?;
/// assert!(self_contained.is_self_contained());
/// # Ok::<(), ancm_hosting::dotnet::RuntimeConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RuntimeConfig {
    /// `runtimeOptions.tfm` (`net8.0`).
    pub tfm: Option<String>,
    /// `runtimeOptions.framework` and `runtimeOptions.frameworks`, in that order.
    pub frameworks: Vec<FrameworkReference>,
    /// The names in `runtimeOptions.includedFrameworks`: a self-contained publish lists the
    /// runtime it carries there.
    pub included_frameworks: Vec<String>,
    /// `runtimeOptions.rollForward` (or legacy `rollForwardOnNoCandidateFx`): for every
    /// reference that sets none itself.
    pub roll_forward: Option<RollForward>,
}

/// Why a runtimeconfig.json could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not JSON.
    #[error("not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON, but not what the .NET host reads.
    #[error("{0}")]
    Shape(String),
}

impl RuntimeConfig {
    /// Reads and parses a runtimeconfig.json file; errors other than I/O name the file.
    pub fn read(path: &Path) -> Result<Self, RuntimeConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| RuntimeConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            RuntimeConfigError::Io { .. } => e,
            other => RuntimeConfigError::Shape(format!("{}: {other}", path.display())),
        })
    }

    /// Parses runtimeconfig.json text. A file without `runtimeOptions` names no framework.
    pub fn parse(text: &str) -> Result<Self, RuntimeConfigError> {
        // The SDK writes a byte order mark in some versions.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let root: Value = serde_json::from_str(text)?;
        let root = root
            .as_object()
            .ok_or_else(|| shape("the top level is not an object"))?;
        let Some(options) = root.get("runtimeOptions") else {
            return Ok(Self::default());
        };
        let options = options
            .as_object()
            .ok_or_else(|| shape("runtimeOptions is not an object"))?;
        let mut config = Self {
            tfm: options
                .get("tfm")
                .and_then(Value::as_str)
                .map(str::to_owned),
            roll_forward: roll_forward(options, "runtimeOptions")?,
            ..Self::default()
        };
        if let Some(framework) = options.get("framework") {
            config
                .frameworks
                .push(reference(framework, "runtimeOptions.framework")?);
        }
        if let Some(list) = options.get("frameworks") {
            let list = list
                .as_array()
                .ok_or_else(|| shape("runtimeOptions.frameworks is not an array"))?;
            for item in list {
                config
                    .frameworks
                    .push(reference(item, "runtimeOptions.frameworks")?);
            }
        }
        if let Some(list) = options.get("includedFrameworks") {
            let list = list
                .as_array()
                .ok_or_else(|| shape("runtimeOptions.includedFrameworks is not an array"))?;
            config.included_frameworks = list
                .iter()
                .map(|item| {
                    item.get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                })
                .collect();
        }
        Ok(config)
    }

    /// Whether the application carries its own runtime: it lists `includedFrameworks`, or
    /// names no shared framework (how older SDKs wrote a self-contained publish). Such an
    /// application runs only through its own executable, never through `dotnet app.dll`.
    pub fn is_self_contained(&self) -> bool {
        self.frameworks.is_empty() || !self.included_frameworks.is_empty()
    }
}

fn shape(message: &str) -> RuntimeConfigError {
    RuntimeConfigError::Shape(message.to_owned())
}

/// `rollForward` of an object, else its legacy `rollForwardOnNoCandidateFx`.
fn roll_forward(
    object: &Map<String, Value>,
    what: &str,
) -> Result<Option<RollForward>, RuntimeConfigError> {
    if let Some(value) = object.get("rollForward") {
        let text = value
            .as_str()
            .ok_or_else(|| RuntimeConfigError::Shape(format!("{what}.rollForward is not text")))?;
        return text
            .parse()
            .map(Some)
            .map_err(|e| RuntimeConfigError::Shape(format!("{what}.rollForward: {e}")));
    }
    match object.get("rollForwardOnNoCandidateFx") {
        None => Ok(None),
        Some(value) => value
            .as_u64()
            .and_then(RollForward::from_legacy)
            .map(Some)
            .ok_or_else(|| {
                RuntimeConfigError::Shape(format!(
                    "{what}.rollForwardOnNoCandidateFx is not 0, 1 or 2"
                ))
            }),
    }
}

fn reference(value: &Value, what: &str) -> Result<FrameworkReference, RuntimeConfigError> {
    let object = value
        .as_object()
        .ok_or_else(|| RuntimeConfigError::Shape(format!("{what}: an entry is not an object")))?;
    let text = |key: &str| {
        object
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| RuntimeConfigError::Shape(format!("{what}: no '{key}'")))
    };
    let name = text("name")?.to_owned();
    let version = text("version")?
        .parse()
        .map_err(|e| RuntimeConfigError::Shape(format!("{what} {name}: {e}")))?;
    Ok(FrameworkReference {
        roll_forward: roll_forward(object, what)?,
        name,
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_shapes() {
        let single = RuntimeConfig::parse(
            r#"{
  "runtimeOptions": {
    "tfm": "net8.0",
    "framework": { "name": "Microsoft.AspNetCore.App", "version": "8.0.0" },
    "configProperties": {
      "System.GC.Server": true,
      "System.Reflection.Metadata.MetadataUpdater.IsSupported": false,
      "System.Runtime.Serialization.EnableUnsafeBinaryFormatterSerialization": false
    }
  }
}"#,
        )
        .expect("parse");
        assert_eq!(single.tfm.as_deref(), Some("net8.0"));
        assert_eq!(single.frameworks.len(), 1);
        assert_eq!(single.roll_forward, None);

        let several = RuntimeConfig::parse(
            "\u{feff}{\"runtimeOptions\":{\"tfm\":\"net8.0\",\"rollForward\":\"Major\",\
             \"frameworks\":[{\"name\":\"Microsoft.NETCore.App\",\"version\":\"8.0.0\"},\
             {\"name\":\"Microsoft.AspNetCore.App\",\"version\":\"8.0.0\",\"rollForward\":\"latestPatch\"}]}}",
        )
        .expect("parse");
        assert_eq!(several.roll_forward, Some(RollForward::Major));
        assert_eq!(
            several.frameworks[1].roll_forward,
            Some(RollForward::LatestPatch)
        );
        assert!(!several.is_self_contained());

        let legacy = RuntimeConfig::parse(
            r#"{"runtimeOptions":{"rollForwardOnNoCandidateFx":2,"framework":{"name":"Microsoft.NETCore.App","version":"2.1.0"}}}"#,
        )
        .expect("parse");
        assert_eq!(legacy.roll_forward, Some(RollForward::Major));
    }

    #[test]
    fn self_contained_shapes() {
        // .NET 6 and later.
        let included = RuntimeConfig::parse(
            r#"{"runtimeOptions":{"tfm":"net8.0","includedFrameworks":[{"name":"Microsoft.NETCore.App","version":"8.0.11"},{"name":"Microsoft.AspNetCore.App","version":"8.0.11"}]}}"#,
        )
        .expect("parse");
        assert!(included.is_self_contained());
        assert_eq!(included.included_frameworks.len(), 2);
        // Older SDKs: no framework at all.
        let bare = RuntimeConfig::parse(
            r#"{"runtimeOptions":{"tfm":"netcoreapp3.1","configProperties":{"System.GC.Server":true}}}"#,
        )
        .expect("parse");
        assert!(bare.is_self_contained());
        assert!(
            RuntimeConfig::parse("{}")
                .expect("parse")
                .is_self_contained()
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for (text, says) in [
            ("not json", "not JSON"),
            ("[]", "top level"),
            (
                r#"{"runtimeOptions":{"framework":{"name":"X"}}}"#,
                "no 'version'",
            ),
            (
                r#"{"runtimeOptions":{"framework":{"name":"X","version":"8"}}}"#,
                "not a version",
            ),
            (
                r#"{"runtimeOptions":{"rollForward":"Sideways","framework":{"name":"X","version":"8.0.0"}}}"#,
                "not a roll-forward policy",
            ),
        ] {
            let error = RuntimeConfig::parse(text).expect_err(text).to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
