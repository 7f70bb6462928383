//! The Windows-only parts of hosting, run on Windows: a Windows token handle duplicated into
//! the backend process, which resolves it there to the user it belongs to (protocol §1.3
//! step 4, §4.3 step 6, §8.5), and the stop of a child: the shutdown message, then Ctrl+Break,
//! then the job terminated when Ctrl+Break cannot be sent (protocol §2.9).
#![cfg(windows)]
#![allow(clippy::unwrap_used)]

use std::os::windows::io::AsRawHandle as _;
use std::process::Command;
use std::time::{Duration, Instant};

use ancm_front::conn::ConnectionInfo;
use ancm_front::forward::{ForwardConfig, Forwarder};
use ancm_front::win_auth_token::WindowsIdentity;
use ancm_front::{AddExtensionLayer, AncmConfig, AncmLayer};
use ancm_hosting::{Application, ApplicationOptions};
use ancm_protocol::http_auth::HttpAuth;
use test_support::client::get;
use test_support::process::{Gateway, example, is_running};
use test_support::server::TestServer;
use test_support::site;
use test_support::windows::{process_token, token_account, under_wine};
use tokio::net::TcpListener;
use tower::{Layer as _, ServiceBuilder};

/// The gateway binary under test.
const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_windows_token_duplicated_into_the_backend_resolves_there_to_its_user() {
    // The gateway's stack on a real listener in this process, in front of the iis_echo
    // example with Windows authentication on; an authentication layer's identity carries
    // this process's token.
    let token = process_token();
    let user = token_account(&token);
    let site = site::with_config(&format!(
        r#"<configuration><system.webServer><aspNetCore processPath="{}" startupTimeLimit="20" /></system.webServer></configuration>"#,
        example("ancm", "iis_echo").display()
    ));
    let mut options = ApplicationOptions::new(site.path());
    options.http_auth = HttpAuth {
        windows: true,
        basic: false,
        anonymous: true,
    };
    let app = Application::new(options).unwrap();
    let identity = WindowsIdentity::new("Negotiate", token.as_raw_handle() as usize as u64);
    let gateway = ServiceBuilder::new()
        .layer(AddExtensionLayer::new(identity))
        .layer(app.layer())
        .layer(AncmLayer::new(AncmConfig::default()))
        .service(Forwarder::new(ForwardConfig::default()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let front = TestServer::on(listener, move |peer| {
        AddExtensionLayer::new(ConnectionInfo::plain(peer, local)).layer(gateway.clone())
    });

    let res = get(front.addr(), "/who", &[]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    let seen = res.json();
    // DuplicateHandle into the backend process, then GetTokenInformation and
    // LookupAccountSidW there: the account of this process's token.
    assert_eq!(seen["windows_user"], user.as_str(), "{seen}");
    assert!(seen["windows_token"].is_string(), "{seen}");
    front.shutdown().await;
    app.shutdown().await;
}

/// `ancm run` on a site whose backend runs in `mode`, its log kept; after one request,
/// app_offline.htm stops the backend. The gateway and the backend's pid once it is gone.
async fn stop_through_app_offline(mode: &str) -> (Gateway, u32) {
    let site = site::with_config(&site::test_backend_config(mode, "", &[]));
    let gw = Gateway::start_logging(Command::new(ANCM), site.path(), &[]);
    let r = get(gw.addr, "/pid", &[]).await;
    assert_eq!(r.status, 200, "{}\n{}", r.text(), gw.log());
    let pid: u32 = r.text().parse().unwrap();
    std::fs::write(site.path().join("app_offline.htm"), "offline").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_running(pid) {
        assert!(
            Instant::now() < deadline,
            "backend {pid} still running 10 s after app_offline.htm:\n{}",
            gw.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (gw, pid)
}

/// The line of `log` about `pid` that says `what`, once the gateway has written it.
async fn log_line(gw: &Gateway, pid: u32, what: &str) -> String {
    let pid = format!("pid={pid}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = gw.log();
        if let Some(line) = log.lines().find(|l| l.contains(what) && l.contains(&pid)) {
            return line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no line with {what:?} and {pid} in:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_accepts_the_shutdown_message_exits_and_leaves_no_process() {
    let (gw, pid) = stop_through_app_offline("normal").await;
    log_line(&gw, pid, "sent the shutdown HTTP message to the child").await;
    log_line(&gw, pid, "child exited after the shutdown message").await;
    assert!(!gw.log().contains("Ctrl+Break"), "{}", gw.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_ignores_the_shutdown_message_gets_ctrl_break_or_its_job_terminated() {
    let (gw, pid) = stop_through_app_offline("ignore-event").await;
    log_line(
        &gw,
        pid,
        "the child did not accept the shutdown HTTP message",
    )
    .await;
    let ctrl_break = log_line(&gw, pid, "sent SIGINT (Ctrl+Break on Windows)").await;
    if ctrl_break.contains("sent=false") {
        // ANCM terminates at once when Ctrl+Break cannot be delivered.
        let fallback = log_line(
            &gw,
            pid,
            "could not send Ctrl+Break; terminating the child's job",
        )
        .await;
        assert!(fallback.contains("WARN"), "{fallback}");
    } else {
        log_line(&gw, pid, "child exited after SIGINT").await;
    }
    // Wine cannot deliver Ctrl+Break (GenerateConsoleCtrlEvent fails): the fallback it is.
    if under_wine() {
        assert!(ctrl_break.contains("sent=false"), "{ctrl_break}");
    }
}
