//! A folder published for IIS runs unchanged under `ancm run` (protocol §2.2, §8.30–§8.32):
//! the SDK's `.\MyApp.exe` (a Windows apphost) becomes `dotnet MyApp.dll`, `dotnet` is found
//! through DOTNET_ROOT, then PATH, then the install folders, and a self-contained Windows
//! publish gets `500.32` with a log line that says why. The `dotnet` here is a fake (a script
//! that starts the echo backend), so nothing depends on what the machine has installed.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use test_support::client::{Response, get};
use test_support::dotnet::{
    self, RUNTIMECONFIG_8, RUNTIMECONFIG_8_FRAMEWORKS, RUNTIMECONFIG_SELF_CONTAINED, RUNTIMES_8,
    Shape, fake_dotnet, publish_files, publish_site,
};
use test_support::process::{self, Doctor, Gateway};

/// The gateway binary under test.
const ANCM: &str = env!("CARGO_BIN_EXE_ancm");

/// `ancm run SITE` on a free loopback port with the .NET variables `vars`, its log in a file.
fn ancm_run(site: &Path, vars: &[(&str, &str)]) -> Gateway {
    Gateway::start_logging(dotnet::command(ANCM, vars), site, &[])
}

/// `ancm doctor SITE ARGS…` with the .NET variables `vars`.
fn doctor(site: &Path, args: &[&str], vars: &[(&str, &str)]) -> Doctor {
    process::doctor(dotnet::command(ANCM, vars), site, args)
}

/// `GET /` through `ancm run`, bounded in time.
async fn get_root(run: &Gateway) -> Response {
    tokio::time::timeout(Duration::from_secs(30), get(run.addr, "/", &[]))
        .await
        .unwrap_or_else(|_| panic!("no answer within 30 s:\n{}", run.log()))
}

/// `GET /` through `ancm run`: the backend's JSON.
async fn served(run: &Gateway) -> serde_json::Value {
    let r = get_root(run).await;
    assert_eq!(r.status, 200, "{}\n{}", r.text(), run.log());
    r.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apphost_publish_runs_as_dotnet_app_dll() {
    let site = publish_site(Shape::Apphost, RUNTIMECONFIG_8);
    let root = tempfile::tempdir().unwrap();
    let dotnet = fake_dotnet(root.path(), "root", RUNTIMES_8);
    let run = ancm_run(
        site.path(),
        &[("DOTNET_ROOT", root.path().to_str().unwrap())],
    );
    let json = served(&run).await;
    let app = std::fs::canonicalize(site.path())
        .unwrap()
        .join("MyApp.dll");
    assert_eq!(json["env"]["TEST_DOTNET"], "root");
    assert_eq!(json["env"]["TEST_DOTNET_ARGS"], app.display().to_string());
    assert!(json["env"]["ASPNETCORE_TOKEN"].is_string());
    let log = run.log();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("running `dotnet MyApp.dll`"))
        .collect();
    assert_eq!(said.len(), 1, "one info line:\n{log}");
    assert!(said[0].contains("INFO"), "{}", said[0]);
    assert!(
        said[0].contains(&format!("program={}", dotnet.display())),
        "{}",
        said[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dotnet_app_dll_publish_runs_with_a_native_path() {
    let site = publish_site(Shape::DotnetDll, RUNTIMECONFIG_8_FRAMEWORKS);
    let root = tempfile::tempdir().unwrap();
    fake_dotnet(root.path(), "root", RUNTIMES_8);
    let run = ancm_run(
        site.path(),
        &[("DOTNET_ROOT", root.path().to_str().unwrap())],
    );
    let json = served(&run).await;
    assert_eq!(json["env"]["TEST_DOTNET"], "root");
    // `.\MyApp.dll` as written for Windows, with the separator of this OS.
    assert_eq!(json["env"]["TEST_DOTNET_ARGS"], "./MyApp.dll");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_contained_windows_publish_gets_500_32_and_a_log_line() {
    let site = publish_site(Shape::Apphost, RUNTIMECONFIG_SELF_CONTAINED);
    let root = tempfile::tempdir().unwrap();
    fake_dotnet(root.path(), "root", RUNTIMES_8);
    let run = ancm_run(
        site.path(),
        &[
            ("DOTNET_ROOT", root.path().to_str().unwrap()),
            ("ASPNETCORE_DETAILEDERRORS", "1"),
        ],
    );
    let r = get_root(&run).await;
    assert_eq!(r.status, 500, "{}", r.text());
    let page = r.text();
    assert!(
        page.contains("<title>HTTP Error 500.32 - ANCM Failed to Load dll</title>"),
        "{page}"
    );
    assert!(page.contains("self-contained Windows publish"), "{page}");
    let log = run.log();
    let said = format!(
        "MyApp.exe' is a self-contained Windows publish and cannot run on {}",
        std::env::consts::OS
    );
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && l.contains(&said)),
        "no error line saying {said:?}:\n{log}"
    );
    assert!(!log.contains("started the child process"), "{log}");
}

/// Three fake hosts: in a DOTNET_ROOT folder, on PATH, and in `$HOME/.dotnet`.
struct Hosts {
    _dirs: tempfile::TempDir,
    root: PathBuf,
    path: PathBuf,
    home: PathBuf,
    nothing: PathBuf,
}

fn hosts() -> Hosts {
    let dirs = tempfile::tempdir().unwrap();
    let root = dirs.path().join("dotnet-root");
    let path = dirs.path().join("bin");
    let home = dirs.path().join("home");
    let nothing = dirs.path().join("empty");
    std::fs::create_dir_all(&nothing).unwrap();
    for (dir, marker) in [
        (&root, "root"),
        (&path, "path"),
        (&home.join(".dotnet"), "home"),
    ] {
        std::fs::create_dir_all(dir).unwrap();
        fake_dotnet(dir, marker, RUNTIMES_8);
    }
    Hosts {
        _dirs: dirs,
        root,
        path,
        home,
        nothing,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotnet_root_beats_path() {
    let site = publish_site(Shape::DotnetDll, RUNTIMECONFIG_8);
    let h = hosts();
    let run = ancm_run(
        site.path(),
        &[
            ("DOTNET_ROOT", h.root.to_str().unwrap()),
            ("PATH", h.path.to_str().unwrap()),
            ("HOME", h.home.to_str().unwrap()),
        ],
    );
    assert_eq!(served(&run).await["env"]["TEST_DOTNET"], "root");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_beats_the_install_folders() {
    let site = publish_site(Shape::Apphost, RUNTIMECONFIG_8);
    let h = hosts();
    // A DOTNET_ROOT that holds no dotnet is passed over.
    let run = ancm_run(
        site.path(),
        &[
            ("DOTNET_ROOT", h.nothing.to_str().unwrap()),
            ("PATH", h.path.to_str().unwrap()),
            ("HOME", h.home.to_str().unwrap()),
        ],
    );
    assert_eq!(served(&run).await["env"]["TEST_DOTNET"], "path");
}

#[cfg(target_arch = "x86_64")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotnet_root_x64_beats_dotnet_root() {
    let site = publish_site(Shape::Apphost, RUNTIMECONFIG_8);
    let h = hosts();
    let run = ancm_run(
        site.path(),
        &[
            ("DOTNET_ROOT_X64", h.home.join(".dotnet").to_str().unwrap()),
            ("DOTNET_ROOT", h.root.to_str().unwrap()),
            ("PATH", h.path.to_str().unwrap()),
        ],
    );
    assert_eq!(served(&run).await["env"]["TEST_DOTNET"], "home");
}

#[test]
fn the_install_folders_come_last() {
    let site = publish_site(Shape::DotnetDll, RUNTIMECONFIG_8);
    let h = hosts();
    let report = doctor(
        site.path(),
        &["--json"],
        &[
            ("PATH", h.nothing.to_str().unwrap()),
            ("HOME", h.home.to_str().unwrap()),
        ],
    );
    // The first of the Linux install folders that holds a dotnet: the machine's own, if it
    // has one, else the fake in $HOME/.dotnet.
    let expected = ["/usr/share/dotnet/dotnet", "/usr/lib/dotnet/dotnet"]
        .into_iter()
        .map(PathBuf::from)
        .chain(Some(h.home.join(".dotnet/dotnet")))
        .find(|p| p.is_file())
        .unwrap();
    if cfg!(target_os = "linux") {
        assert_eq!(
            report.json()["command"]["program"],
            expected.display().to_string(),
            "{}",
            report.out
        );
    }
    let program = report.finding("program", "ok");
    assert!(
        program.contains("found through a default install folder"),
        "{program}"
    );
}

/// The corpus of real web.config files (crates/ancm-hosting/tests/fixtures/webconfig-corpus).
fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/ancm-hosting/tests/fixtures/webconfig-corpus")
}

/// A corpus file the .NET SDK wrote for a publish folder: `.\X.exe` (or `X.exe` in a
/// sub-folder) without arguments, or `dotnet` with one `.\X.dll`. Gives the folder of the
/// publish (relative to the site), the application's name and whether an apphost starts it.
fn sdk_shape(file: &Path) -> Option<(PathBuf, String, bool)> {
    let config = ancm_hosting::config::load(file).ok()?;
    let native = |p: &str| p.replace('\\', "/");
    let local = |p: &str| {
        !p.is_empty()
            && !p.contains(['%', ':', ' '])
            && !p.starts_with('/')
            && !p.split('/').any(|c| c == "..")
    };
    let split = |p: &str, ext: &str| -> Option<(PathBuf, String)> {
        let path = Path::new(p);
        let is_ext = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case(ext));
        let stem = path.file_stem()?.to_str()?.to_owned();
        is_ext.then(|| (path.parent().unwrap_or(Path::new("")).to_path_buf(), stem))
    };
    let program = native(&config.process_path);
    let args = native(config.arguments.trim());
    let is_dotnet =
        program.eq_ignore_ascii_case("dotnet") || program.eq_ignore_ascii_case("dotnet.exe");
    if is_dotnet && local(&args) {
        let (folder, app) = split(&args, "dll")?;
        return Some((folder, app, false));
    }
    if !is_dotnet && args.is_empty() && local(&program) {
        let (folder, app) = split(&program, "exe")?;
        return Some((folder, app, true));
    }
    None
}

#[test]
fn the_sdk_web_configs_of_the_corpus_start_with_a_fake_dotnet() {
    let root = tempfile::tempdir().unwrap();
    let dotnet = fake_dotnet(root.path(), "root", RUNTIMES_8);
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "config"))
        .collect();
    files.sort();
    let mut tried = Vec::new();
    for file in files {
        let Some((folder, app, apphost)) = sdk_shape(&file) else {
            continue;
        };
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        // 045 is a self-contained publish: see the next test.
        if name.contains("selfcontained") {
            continue;
        }
        let site = tempfile::tempdir().unwrap();
        std::fs::copy(&file, site.path().join("web.config")).unwrap();
        publish_files(&site.path().join(&folder), &app, RUNTIMECONFIG_8, apphost);
        let report = doctor(
            site.path(),
            &["--json"],
            &[("DOTNET_ROOT", root.path().to_str().unwrap())],
        );
        assert_eq!(report.code, 0, "{name}: {}", report.out);
        let json = report.json();
        assert_eq!(
            json["command"]["program"],
            dotnet.display().to_string(),
            "{name}"
        );
        let first = json["command"]["arguments"][0].as_str().unwrap().to_owned();
        assert!(first.ends_with(&format!("{app}.dll")), "{name}: {first}");
        assert!(!first.contains('\\'), "{name}: {first}");
        assert!(report.finding("request", "ok").contains("200 OK"), "{name}");
        tried.push(name);
    }
    // Every `.\X.exe` and `dotnet .\X.dll` file of the corpus (the SDK's templates from
    // .NET Core 2.x to .NET 8, exe and dll in sub-folders too); 045 is the next test's.
    let numbers: Vec<&str> = tried.iter().map(|n| &n[..3]).collect();
    assert_eq!(
        numbers,
        [
            "014", "023", "026", "028", "029", "030", "033", "034", "035", "036", "041", "042",
            "043", "052", "053", "054", "059", "060"
        ]
    );
}

#[test]
fn the_self_contained_publish_of_the_corpus_is_refused() {
    let file = corpus().join("045-Dev-Lynx-Chop9ja.API-selfcontained-win-x86-exe.config");
    let (folder, app, apphost) = sdk_shape(&file).unwrap();
    assert!(apphost);
    let site = tempfile::tempdir().unwrap();
    std::fs::copy(&file, site.path().join("web.config")).unwrap();
    publish_files(
        &site.path().join(folder),
        &app,
        RUNTIMECONFIG_SELF_CONTAINED,
        true,
    );
    let report = doctor(site.path(), &["--json"], &[]);
    assert_eq!(report.code, 1, "{}", report.out);
    let publish = report.finding("publish", "fail");
    assert!(
        publish.contains("Chop9ja.API.exe' is a self-contained Windows publish"),
        "{publish}"
    );
    assert!(report.finding("start", "warn").contains("not attempted"));
}
