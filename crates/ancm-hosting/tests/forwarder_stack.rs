//! Stopping and losing children under the stack `ancm run` serves (the application layer, the
//! ANCM layers, the forwarder): a request given a child reaches it before the child is told
//! to shut down, and a child whose port refuses connections gets no further request
//! (issue 18).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ancm_front::forward::{ForwardConfig, Forwarder};
use ancm_front::{AncmConfig, AncmLayer};
use ancm_hosting::config::{AspNetCoreConfig, Location};
use ancm_hosting::{Application, ApplicationOptions};
use test_support::client;
use test_support::process::{eventually, example, free_port, is_running as alive};
use test_support::server::TestServer;
use test_support::site;
use tower_layer::Layer;
use tower_service::Service;

const OFFLINE: &str = "app_offline.htm";

/// A configuration for the Rust test backend (ancm-hosting's `test_backend` example) in
/// `mode`, with short limits.
fn rust_config(mode: &str) -> AspNetCoreConfig {
    let mut c = AspNetCoreConfig::new(
        example("ancm-hosting", "test_backend")
            .to_string_lossy()
            .into_owned(),
        Location {
            file: PathBuf::from("web.config"),
            line: 1,
            column: 1,
        },
    );
    c.environment_variables
        .push(("ANCM_TEST_MODE".into(), mode.into()));
    c.startup_time_limit = 5;
    c.shutdown_time_limit = 3;
    c
}

fn options(site: &Path) -> ApplicationOptions {
    ApplicationOptions::new(site).detailed_errors(true)
}

/// How long a request takes between being given a child and being forwarded: long enough
/// for a stop to start meanwhile, well within the time a stop waits for such requests.
const ON_THE_WAY: Duration = Duration::from_millis(400);

/// A gateway (with its own connection pool) whose requests pause for `delay` after admission
/// (counted in `admitted`), as on a busy gateway thread, before the ANCM layers and the
/// forwarder.
async fn gateway(app: &Application, delay: Duration, admitted: Arc<AtomicUsize>) -> TestServer {
    let forward =
        AncmLayer::new(AncmConfig::default()).layer(Forwarder::new(ForwardConfig::default()));
    let paused = tower::service_fn(move |req| {
        let mut forward = forward.clone();
        let admitted = admitted.clone();
        async move {
            admitted.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            forward.call(req).await
        }
    });
    TestServer::start(app.layer().layer(paused)).await
}

fn pid_of(res: &test_support::client::RawResponse) -> u32 {
    String::from_utf8_lossy(&res.body)
        .parse()
        .unwrap_or_else(|_| panic!("{} {:?}", res.status, String::from_utf8_lossy(&res.body)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_given_a_child_reaches_it_before_app_offline_stops_it() {
    let site = site::empty();
    let app = Application::with_config(options(site.path()), rust_config("normal")).expect("app");
    let warm = gateway(&app, Duration::ZERO, Arc::default()).await;
    let pid = pid_of(&client::send(warm.addr(), "GET", "/pid", &[]).await);
    // Another gateway thread, with no pooled connection to the child.
    let admitted = Arc::new(AtomicUsize::new(0));
    let server = gateway(&app, ON_THE_WAY, admitted.clone()).await;
    let gw = server.addr();

    let on_the_way = tokio::spawn(async move { client::send(gw, "GET", "/pid", &[]).await });
    assert!(
        eventually(Duration::from_secs(5), || admitted.load(Ordering::SeqCst)
            == 1)
        .await
    );
    std::fs::write(site.path().join(OFFLINE), "offline").expect("write");
    assert!(eventually(Duration::from_secs(5), || app.is_offline()).await);

    let res = on_the_way.await.expect("request");
    assert_eq!(res.status, 200, "{:?}", String::from_utf8_lossy(&res.body));
    assert_eq!(pid_of(&res), pid);
    assert!(
        eventually(Duration::from_secs(5), || !alive(pid)).await,
        "then it stopped"
    );
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_given_a_child_reaches_it_before_a_fixed_port_recycle_stops_it() {
    let site = site::empty();
    let port = free_port();
    let web_config = |value: &str| {
        let text = format!(
            r#"<configuration><system.webServer>
  <aspNetCore processPath="{}" startupTimeLimit="5" shutdownTimeLimit="3">
    <environmentVariables>
      <environmentVariable name="ASPNETCORE_PORT" value="{port}" />
      <environmentVariable name="ANCM_TEST_VALUE" value="{value}" />
    </environmentVariables>
  </aspNetCore>
</system.webServer></configuration>
"#,
            example("ancm-hosting", "test_backend").display()
        );
        std::fs::write(site.path().join("web.config"), text).expect("write web.config");
    };
    web_config("1");
    let app = Application::new(options(site.path())).expect("app");
    let warm = gateway(&app, Duration::ZERO, Arc::default()).await;
    let pid = pid_of(&client::send(warm.addr(), "GET", "/pid", &[]).await);
    // Another gateway thread, with no pooled connection to the child.
    let admitted = Arc::new(AtomicUsize::new(0));
    let server = gateway(&app, ON_THE_WAY, admitted.clone()).await;
    let gw = server.addr();

    // Old and new children cannot share the port: the old one stops before the new starts.
    let on_the_way = tokio::spawn(async move { client::send(gw, "GET", "/pid", &[]).await });
    assert!(
        eventually(Duration::from_secs(5), || admitted.load(Ordering::SeqCst)
            == 1)
        .await
    );
    web_config("2");

    let res = on_the_way.await.expect("request");
    assert_eq!(res.status, 200, "{:?}", String::from_utf8_lossy(&res.body));
    assert_eq!(pid_of(&res), pid);
    // Then the recycle goes on: the next requests start the new child (503 meanwhile).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let res = client::send(gw, "GET", "/pid", &[]).await;
        assert!(res.status == 200 || res.status == 503, "{}", res.status);
        if res.status == 200 && pid_of(&res) != pid {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no new child");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_stops_listening_gets_no_further_request() {
    let site = site::empty();
    let app = Application::with_config(options(site.path()), rust_config("normal")).expect("app");
    let server = gateway(&app, Duration::ZERO, Arc::default()).await;
    let gw = server.addr();
    let env = client::send(gw, "GET", "/env", &[]).await;
    let env = String::from_utf8_lossy(&env.body).into_owned();
    let field = |name: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} in {env}"))
            .to_owned()
    };
    let pid: u32 = field("PID").parse().expect("pid");
    let port: u16 = field("ASPNETCORE_PORT").parse().expect("port");
    assert_eq!(client::send(gw, "GET", "/hang-up", &[]).await.status, 200);
    let mut refused = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !refused && tokio::time::Instant::now() < deadline {
        refused = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "the child closed its listener");
    assert!(alive(pid), "and runs on");
    // The request that finds out fails.
    assert_eq!(client::send(gw, "GET", "/pid", &[]).await.status, 502);
    for _ in 0..3 {
        let res = client::send(gw, "GET", "/pid", &[]).await;
        assert_eq!(res.status, 200, "{:?}", String::from_utf8_lossy(&res.body));
        assert_ne!(pid_of(&res), pid, "a new child");
    }
    assert!(
        eventually(Duration::from_secs(5), || !alive(pid)).await,
        "the old one was stopped"
    );
    app.shutdown().await;
}
