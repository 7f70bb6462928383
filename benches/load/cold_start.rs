//! Cold start of `benches/load/cold_start.sh`: how long the first request after `ancm run`
//! takes, against how long the backend alone takes to start listening.
//!
//! Each run, in turn:
//!
//! * **backend alone**: spawns the backend with `ASPNETCORE_PORT` set to a free port and
//!   connects to it every 100 µs until it accepts: the time from the spawn to the first
//!   accepted connection is the backend's own start time;
//! * **through ancm**: spawns `ancm run SITE --listen 127.0.0.1:PORT` (the site's web.config
//!   names the same backend, random port), waits until `ancm` accepts connections, then sends
//!   one `GET /` with `Connection: close` and reads the response to the end: that time covers
//!   the backend's spawn, its start, `ancm`'s readiness detection and the request itself.
//!   `ancm` is then stopped with SIGTERM (it stops the backend).
//!
//! ```text
//! cold_start --ancm PATH --backend PATH [--runs N]
//! ```
//!
//! It prints every run and then the median, minimum and maximum of both, and the median
//! difference. Every wait is bounded (10 s).
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The longest any one wait may take.
const LIMIT: Duration = Duration::from_secs(10);

struct Options {
    ancm: PathBuf,
    backend: PathBuf,
    runs: usize,
}

fn options() -> Result<Options, BoxError> {
    let mut ancm = None;
    let mut backend = None;
    let mut runs = 10;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--ancm" => ancm = Some(PathBuf::from(value()?)),
            "--backend" => backend = Some(PathBuf::from(value()?)),
            "--runs" => runs = value()?.parse()?,
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(Options {
        ancm: ancm.ok_or("--ancm PATH is required")?,
        // web.config's processPath is relative to the site folder, a temporary directory.
        backend: std::fs::canonicalize(backend.ok_or("--backend PATH is required")?)?,
        runs: runs.max(1),
    })
}

fn free_port() -> Result<u16, BoxError> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Connects every 100 µs until `addr` accepts; the time it took.
fn wait_accepting(addr: SocketAddr, since: Instant) -> Result<Duration, BoxError> {
    loop {
        if TcpStream::connect(addr).is_ok() {
            return Ok(since.elapsed());
        }
        if since.elapsed() > LIMIT {
            return Err(format!("nothing accepts on {addr}").into());
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Ends `child` with `signal` and waits for it (bounded; SIGKILL after the limit).
fn stop(child: &mut Child, signal: &str) -> Result<(), BoxError> {
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()?;
    let since = Instant::now();
    while child.try_wait()?.is_none() {
        if since.elapsed() > LIMIT {
            child.kill()?;
            child.wait()?;
            return Err("the process did not stop in time".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// The backend alone: spawn to first accepted connection.
fn backend_alone(backend: &Path) -> Result<Duration, BoxError> {
    let port = free_port()?;
    let since = Instant::now();
    let mut child = Command::new(backend)
        .env("ASPNETCORE_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let took = wait_accepting(SocketAddr::from(([127, 0, 0, 1], port)), since);
    stop(&mut child, "-KILL")?;
    took
}

/// The first request after `ancm run`: sent once `ancm` accepts, timed to its last byte.
fn through_ancm(ancm: &Path, site: &Path) -> Result<Duration, BoxError> {
    let port = free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut child = Command::new(ancm)
        .arg("run")
        .arg(site)
        .args(["--listen", &addr.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let result = (|| {
        wait_accepting(addr, Instant::now())?;
        // Let the accept of the probe settle, so only the first request is timed.
        std::thread::sleep(Duration::from_millis(50));
        let since = Instant::now();
        let mut stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(LIMIT))?;
        stream.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response)?;
        let took = since.elapsed();
        if !response.starts_with(b"HTTP/1.1 200") {
            let head = String::from_utf8_lossy(&response[..response.len().min(600)]).into_owned();
            return Err(format!("the first request got {head:?}").into());
        }
        Ok(took)
    })();
    stop(&mut child, "-TERM")?;
    result
}

fn summary(name: &str, mut values: Vec<Duration>) -> Duration {
    values.sort();
    let median = values[values.len() / 2];
    println!(
        "{name:<16} median {:>8.2} ms  min {:>8.2} ms  max {:>8.2} ms",
        ms(median),
        ms(values[0]),
        ms(values[values.len() - 1])
    );
    median
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> Result<(), BoxError> {
    let options = options()?;
    let site = tempfile::tempdir()?;
    std::fs::write(
        site.path().join("web.config"),
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <system.webServer>
    <aspNetCore processPath="{}" stdoutLogEnabled="false" hostingModel="outofprocess" />
  </system.webServer>
</configuration>
"#,
            options.backend.display()
        ),
    )?;
    let mut alone = Vec::new();
    let mut first = Vec::new();
    for run in 1..=options.runs {
        let a = backend_alone(&options.backend)?;
        let f = through_ancm(&options.ancm, site.path())?;
        println!(
            "run {run:>3}: backend alone {:>8.2} ms, first request through ancm {:>8.2} ms",
            ms(a),
            ms(f)
        );
        alone.push(a);
        first.push(f);
    }
    let a = summary("backend alone", alone);
    let f = summary("first request", first);
    println!(
        "first request - backend alone (medians): {:.2} ms",
        ms(f) - ms(a)
    );
    Ok(())
}
