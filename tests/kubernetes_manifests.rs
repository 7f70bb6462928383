//! `examples/kubernetes/` without a cluster or a container runtime: the YAML parses, the
//! objects have the shape Kubernetes needs, and they agree with each other, with `ancm`'s
//! flags and with the Dockerfile: probes on the admin listener's `/readyz` and `/healthz`,
//! a grace period covering the drain delay, the drain and the backend's
//! `shutdownTimeLimit`, a non-root user, a read-only root filesystem with a writable log
//! volume, a Service over the pods' labels. The ConfigMap's web.config passes `ancm check`.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_norway::Value;

/// The gateway binary under test.
const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes")
}

/// `file` parsed, checked to be `apiVersion`/`kind` with a name.
fn object(file: &str, api_version: &str, kind: &str) -> Value {
    let text = std::fs::read_to_string(dir().join(file)).unwrap();
    let value: Value = serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(value["apiVersion"].as_str(), Some(api_version), "{file}");
    assert_eq!(value["kind"].as_str(), Some(kind), "{file}");
    assert!(
        value["metadata"]["name"]
            .as_str()
            .is_some_and(|n| !n.is_empty()),
        "{file}"
    );
    value
}

/// The value after `flag` in `args`.
fn flag<'a>(args: &'a [&str], flag: &str) -> &'a str {
    let at = args
        .iter()
        .position(|a| *a == flag)
        .unwrap_or_else(|| panic!("no {flag}"));
    args[at + 1]
}

/// Whether every label `selector` asks for is in `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    let selector = selector.as_mapping().unwrap();
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[test]
fn the_manifests_agree_with_each_other_with_ancm_and_with_the_dockerfile() {
    let config_map = object("configmap.yaml", "v1", "ConfigMap");
    let deployment = object("deployment.yaml", "apps/v1", "Deployment");
    let service = object("service.yaml", "v1", "Service");

    // The site's web.config is valid, and says how long the backend may take to stop.
    let site = tempfile::tempdir().unwrap();
    let web_config = config_map["data"]["web.config"].as_str().unwrap();
    std::fs::write(site.path().join("web.config"), web_config).unwrap();
    let check = Command::new(ANCM)
        .args(["check", "--json"])
        .arg(site.path())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let checked: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    let shutdown_time_limit = checked["shutdownTimeLimit"].as_u64().unwrap();

    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"].as_u64(), Some(2));
    let pod = &spec["template"];
    let labels = &pod["metadata"]["labels"];
    assert!(selects(&spec["selector"]["matchLabels"], labels));
    let pod_spec = &pod["spec"];
    let containers = pod_spec["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    let args: Vec<&str> = container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "run");

    // The probes ask the admin listener: readiness /readyz, liveness /healthz.
    let admin_port: u64 = flag(&args, "--admin-listen")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let ports = container["ports"].as_sequence().unwrap();
    let port_named = |name: &str| {
        ports
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["containerPort"].as_u64())
    };
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(get["path"].as_str(), Some(path), "{probe}");
        let port = get["port"]
            .as_str()
            .map_or_else(|| get["port"].as_u64(), port_named);
        assert_eq!(port, Some(admin_port), "{probe}");
    }
    let http_port: u64 = flag(&args, "--listen")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(port_named("http"), Some(http_port));

    // The kubelet waits for the whole stop: delay, drain, backend shutdown.
    let drain_delay: u64 = flag(&args, "--drain-delay").parse().unwrap();
    let drain_timeout: u64 = flag(&args, "--drain-timeout").parse().unwrap();
    let grace = pod_spec["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(drain_delay > 0);
    assert!(
        grace >= drain_delay + drain_timeout + shutdown_time_limit,
        "terminationGracePeriodSeconds {grace} < {drain_delay} + {drain_timeout} + {shutdown_time_limit}"
    );

    // Not root, nothing written but the log volume.
    let security = &pod_spec["securityContext"];
    assert_eq!(security["runAsNonRoot"].as_bool(), Some(true));
    let uid = security["runAsUser"].as_u64().unwrap();
    assert_ne!(uid, 0);
    let container_security = &container["securityContext"];
    assert_eq!(
        container_security["readOnlyRootFilesystem"].as_bool(),
        Some(true)
    );
    assert_eq!(
        container_security["allowPrivilegeEscalation"].as_bool(),
        Some(false)
    );
    let volumes = pod_spec["volumes"].as_sequence().unwrap();
    let mounted = |path: &str| {
        let mount = container["volumeMounts"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|m| m["mountPath"].as_str() == Some(path))
            .unwrap_or_else(|| panic!("nothing mounted at {path}"));
        let volume = volumes
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap_or_else(|| panic!("no volume for {path}"));
        (mount["readOnly"].as_bool() == Some(true), volume.clone())
    };
    let (read_only, logs) = mounted(flag(&args, "--access-log"));
    assert!(!read_only && logs.get("emptyDir").is_some(), "{logs:?}");
    let stdout_log = checked["stdoutLogFile"].as_str().unwrap();
    assert!(
        stdout_log.starts_with(flag(&args, "--access-log")),
        "{stdout_log}"
    );
    let (_, site_volume) = mounted(args[1]);
    assert_eq!(
        site_volume["configMap"]["name"],
        config_map["metadata"]["name"]
    );

    // The Service reaches the pods' http port.
    assert!(selects(&service["spec"]["selector"], labels));
    for port in service["spec"]["ports"].as_sequence().unwrap() {
        let target = port["targetPort"].as_str().unwrap();
        assert!(port_named(target).is_some(), "targetPort {target}");
    }

    // The Dockerfile: multi-stage, Debian 12 slim, the same non-root user, ancm as entry.
    let dockerfile = std::fs::read_to_string(dir().join("Dockerfile")).unwrap();
    let lines: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert!(lines.iter().filter(|l| l.starts_with("FROM ")).count() >= 2);
    assert!(lines.contains(&"ARG RUNTIME_IMAGE=debian:12-slim"));
    assert_eq!(
        lines.iter().rfind(|l| l.starts_with("FROM ")),
        Some(&"FROM ${RUNTIME_IMAGE}")
    );
    assert!(
        lines.contains(&format!("USER {uid}:{uid}").as_str()),
        "USER {uid}"
    );
    assert!(lines.contains(&r#"ENTRYPOINT ["/usr/local/bin/ancm"]"#));
    assert!(web_config.contains(r#"processPath="/usr/local/bin/ancm-site-demo""#));
}
