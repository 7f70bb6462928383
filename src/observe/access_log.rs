//! The access log: IIS's W3C Extended Log File Format (or JSON lines), one file per
//! application, written by one thread so that a request never waits for the disk.
//!
//! * **Files**: `DIR/<folder>/u_exYYMMDD.log` (`.jsonl` for JSON), the date in UTC, a new
//!   file each UTC day; with a size cap (`--access-log-max-bytes`) also
//!   `u_exYYMMDD_1.log`, `_2`, … before a file would grow past it. The folder is named after
//!   the application's path as IIS names applications in its metabase (`/LM/W3SVC/1/ROOT/shop`):
//!   `ROOT` for `/`, `ROOT_shop` for `/shop`, `ROOT_shop_api` for `/shop/api`, letters
//!   lowercased (paths match without regard to case) and anything but `a–z 0–9 - .`
//!   written `%XX` (so `_` in a path cannot make two folders one). Requests that no
//!   application takes (the gateway's own `404`) go to `ROOT` when no application is at `/`.
//!   Files are appended to (a restart continues the day's file after a new directive block),
//!   never through a symbolic link, created with mode 0640 on Unix. `-` writes every
//!   application's lines to standard output instead.
//! * **W3C**: the directives `#Software`, `#Version: 1.0`, `#Date` and `#Fields` at the top of
//!   each file (and whenever the gateway opens it again), then IIS's default fields —
//!   `date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip
//!   cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken` — and
//!   `x-trace-id`, the W3C trace id of the request. A space in a value is written `+`, an
//!   empty value `-`; bytes that could break the line (controls, DEL, anything not ASCII)
//!   are written `%XX`. `date`/`time` are the UTC time the response was sent whole,
//!   `time-taken` the milliseconds since the request arrived, `sc-substatus` the ANCM
//!   sub-status of the front's own error pages (`502` `5` for 502.5), and `sc-win32-status`
//!   `64` (ERROR_NETNAME_DELETED, what IIS logs for a client gone away) when the response
//!   could not be sent whole, else `0`. `cs-username` is always `-`: the gateway does no
//!   authentication.
//! * **JSON lines**: one object per line with the same field names as keys (`null` for
//!   empty; numbers as numbers) and `trace-id`.
//! * **Never blocking a request**: lines go through a bounded queue ([`QUEUE_LINES`]) to the
//!   writer thread, which buffers them and flushes at least every second and when the
//!   gateway stops (it sleeps in between unless [`WAKE_AT`] lines are waiting, so a request
//!   wakes no other thread); when the queue is full the line is dropped and counted
//!   ([`AccessLog::dropped`], metric `ancm_access_log_dropped_lines_total`).
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use ancm_protocol::AppPath;
use http::{HeaderValue, Method, Uri};

use crate::cli::AccessLogFormat;

/// Lines the queue to the writer holds; more are dropped.
pub const QUEUE_LINES: usize = 8192;

/// How often, at most, buffered lines wait before they are written out.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Queued lines at which a request wakes the writer before its next flush. Below it the
/// writer sleeps until the flush, so a request costs no wake-up of another thread (a futex
/// call and a context switch per line, which measured as a quarter of the per-request CPU).
const WAKE_AT: usize = QUEUE_LINES / 8;

/// The `#Fields` of the W3C format: IIS's defaults, then the trace id.
pub const W3C_FIELDS: &str = "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken x-trace-id";

/// `sc-win32-status` of a response that could not be sent whole.
pub const WIN32_NETNAME_DELETED: u32 = 64;

/// Where the lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One folder per application under this one.
    Dir(PathBuf),
    /// Standard output.
    Stdout,
}

/// One request, as the access log records it.
#[derive(Debug)]
pub struct Entry {
    /// The application's index in the router; `None` when no application took it.
    pub app: Option<usize>,
    /// When the response was sent whole.
    pub at: SystemTime,
    /// The request method.
    pub method: Method,
    /// The request target.
    pub uri: Uri,
    /// `User-Agent`.
    pub user_agent: Option<HeaderValue>,
    /// `Referer`.
    pub referer: Option<HeaderValue>,
    /// The client's address (the socket peer).
    pub client: Option<SocketAddr>,
    /// The address the client connected to.
    pub local: Option<SocketAddr>,
    /// The response status.
    pub status: u16,
    /// The ANCM sub-status (0 for the backend's responses).
    pub substatus: u16,
    /// 0, or [`WIN32_NETNAME_DELETED`] when the response was not sent whole.
    pub win32_status: u32,
    /// From arrival to the response sent whole.
    pub time_taken: Duration,
    /// The request's W3C trace id.
    pub trace_id: Option<[u8; 16]>,
}

enum Message {
    Line(Box<Entry>),
    /// Close the files; the next line opens its file again by name (after logrotate).
    Reopen,
    Stop,
}

/// The access log: a queue and its writer thread; see the [module docs](self).
#[derive(Debug)]
pub struct AccessLog {
    queue: SyncSender<Message>,
    dropped: Arc<AtomicU64>,
    /// Lines queued and not yet taken by the writer (at least: a line is counted before it
    /// is queued); only for waking the writer.
    queued: Arc<AtomicUsize>,
    /// The writer thread, to wake it when [`WAKE_AT`] lines are waiting.
    waker: Option<std::thread::Thread>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Message::Line(_) => "Line",
            Message::Reopen => "Reopen",
            Message::Stop => "Stop",
        })
    }
}

/// Why the access log could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AccessLogError {
    /// A folder could not be created.
    #[error("cannot create the access log folder {}: {source}", path.display())]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Two applications would write to one folder.
    #[error("applications {0} and {1} would share the access log folder {2}")]
    SameFolder(AppPath, AppPath, String),
    /// The writer thread could not be started.
    #[error("cannot start the access log writer: {0}")]
    Thread(std::io::Error),
}

impl AccessLog {
    /// Starts the writer for the applications `apps` (in the router's order): creates their
    /// folders under a [`Target::Dir`].
    pub fn start(
        target: Target,
        format: AccessLogFormat,
        max_bytes: Option<u64>,
        apps: &[AppPath],
    ) -> Result<Self, AccessLogError> {
        let sinks = sinks(&target, apps)?;
        let (queue, lines) = std::sync::mpsc::sync_channel(QUEUE_LINES);
        let dropped = Arc::new(AtomicU64::new(0));
        let queued = Arc::new(AtomicUsize::new(0));
        let writer = Writer {
            sinks,
            format,
            max_bytes,
            dropped: dropped.clone(),
            queued: queued.clone(),
            line: String::with_capacity(512),
        };
        let thread = std::thread::Builder::new()
            .name("ancm-access-log".into())
            .spawn(move || writer.run(&lines))
            .map_err(AccessLogError::Thread)?;
        Ok(Self {
            queue,
            dropped,
            queued,
            waker: Some(thread.thread().clone()),
            writer: Mutex::new(Some(thread)),
        })
    }

    /// Queues `entry`; drops (and counts) it when the queue is full.
    pub fn log(&self, entry: Entry) {
        // Counted before it is queued, so the writer never takes more than was counted.
        let queued = self.queued.fetch_add(1, Ordering::Relaxed) + 1;
        match self.queue.try_send(Message::Line(Box::new(entry))) {
            Ok(()) => {
                if queued == WAKE_AT
                    && let Some(writer) = &self.waker
                {
                    writer.unpark();
                }
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Closes the files after what is queued is written; the next line of each application
    /// opens its file again by name, so a log rotated away (renamed by logrotate) is
    /// replaced by a new file (SIGHUP). Does not wait.
    pub fn reopen(&self) {
        if self.queue.try_send(Message::Reopen).is_err() {
            // A full queue: the writer is busy; wait for room without blocking the caller.
            let queue = self.queue.clone();
            std::thread::spawn(move || {
                let _ = queue.send(Message::Reopen);
            });
        }
        // The writer sleeps until its next flush otherwise.
        if let Some(writer) = &self.waker {
            writer.unpark();
        }
    }

    /// Lines dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes out what is queued, flushes and closes the files, and ends the writer. Later
    /// lines are dropped. Blocking.
    pub fn close(&self) {
        let thread = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            // Waits while the queue is full: the writer is emptying it.
            thread.thread().unpark();
            let _ = self.queue.send(Message::Stop);
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

/// Where one application's lines go, and its open file.
struct Sink {
    /// Its folder; `None` for standard output.
    folder: Option<PathBuf>,
    file: Option<OpenFile>,
    /// An error was reported for this sink; the next is not, until a write succeeds.
    warned: bool,
}

struct OpenFile {
    out: BufWriter<Box<dyn Write + Send>>,
    /// The UTC day (days since 1970) its lines are of.
    day: i64,
    /// Its number within the day (0: `u_exYYMMDD.log`).
    seq: u32,
    written: u64,
    /// Written to since the last flush.
    dirty: bool,
}

/// The sinks of `target`: one per application and one for unmatched requests (the last),
/// entries sharing a folder pointing at one sink.
fn sinks(target: &Target, apps: &[AppPath]) -> Result<Vec<SinkSlot>, AccessLogError> {
    let dir = match target {
        Target::Stdout => {
            return Ok(vec![SinkSlot::Own(Sink {
                folder: None,
                file: None,
                warned: false,
            })]);
        }
        Target::Dir(dir) => dir,
    };
    let mut names: Vec<String> = apps.iter().map(folder_name).collect();
    for (i, a) in names.iter().enumerate() {
        if let Some(j) = names[..i].iter().position(|b| b == a) {
            return Err(AccessLogError::SameFolder(
                apps[j].clone(),
                apps[i].clone(),
                a.clone(),
            ));
        }
    }
    names.push(folder_name(&AppPath::root()));
    let mut slots = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        // The unmatched requests' folder is the root application's when there is one.
        if let Some(j) = names[..i].iter().position(|b| b == name) {
            slots.push(SinkSlot::Same(j));
            continue;
        }
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).map_err(|source| AccessLogError::Folder {
            path: folder.clone(),
            source,
        })?;
        slots.push(SinkSlot::Own(Sink {
            folder: Some(folder),
            file: None,
            warned: false,
        }));
    }
    Ok(slots)
}

/// A sink, or the index of the one it shares.
enum SinkSlot {
    Own(Sink),
    Same(usize),
}

/// The folder an application's log files go to: `ROOT`, then `_` and each path segment,
/// lowercased, with anything but `a–z 0–9 - .` written `%XX`.
pub fn folder_name(path: &AppPath) -> String {
    let mut name = String::from("ROOT");
    for segment in path.as_str().split('/').filter(|s| !s.is_empty()) {
        name.push('_');
        for byte in segment.bytes() {
            let byte = byte.to_ascii_lowercase();
            if byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'.' {
                name.push(char::from(byte));
            } else {
                let _ = write!(name, "%{byte:02X}");
            }
        }
    }
    name
}

struct Writer {
    sinks: Vec<SinkSlot>,
    format: AccessLogFormat,
    max_bytes: Option<u64>,
    dropped: Arc<AtomicU64>,
    queued: Arc<AtomicUsize>,
    /// The line being formatted, reused.
    line: String,
}

impl Writer {
    /// Takes what is queued, writes it, and sleeps until the next flush or until a request
    /// wakes it ([`WAKE_AT`]); ends on [`Message::Stop`] after writing what came before it.
    fn run(mut self, lines: &Receiver<Message>) {
        let mut next_flush = Instant::now() + FLUSH_INTERVAL;
        loop {
            let mut taken = 0;
            let stop = loop {
                match lines.try_recv() {
                    Ok(Message::Line(entry)) => {
                        taken += 1;
                        self.write(&entry);
                    }
                    Ok(Message::Reopen) => self.close_files(),
                    Ok(Message::Stop) | Err(TryRecvError::Disconnected) => break true,
                    Err(TryRecvError::Empty) => break false,
                }
            };
            let waiting = self.queued.fetch_sub(taken, Ordering::Relaxed) - taken;
            let now = Instant::now();
            if stop || now >= next_flush {
                self.flush();
                next_flush = now + FLUSH_INTERVAL;
            }
            if stop {
                return;
            }
            if waiting < WAKE_AT {
                std::thread::park_timeout(next_flush.saturating_duration_since(now));
            }
        }
    }

    fn sink_index(&self, app: Option<usize>) -> usize {
        let last = self.sinks.len() - 1;
        let index = app.map_or(last, |i| i.min(last));
        match self.sinks[index] {
            SinkSlot::Same(j) => j,
            SinkSlot::Own(_) => index,
        }
    }

    fn write(&mut self, entry: &Entry) {
        let (day, clock) = utc(entry.at);
        self.line.clear();
        match self.format {
            AccessLogFormat::W3c => w3c_line(&mut self.line, entry, day, clock),
            AccessLogFormat::Json => json_line(&mut self.line, entry, day, clock),
        }
        let index = self.sink_index(entry.app);
        let SinkSlot::Own(sink) = &mut self.sinks[index] else {
            return;
        };
        let line_len = u64::try_from(self.line.len()).unwrap_or(u64::MAX);
        let result = (|| -> std::io::Result<()> {
            let needs_new = match &sink.file {
                None => true,
                Some(file) => {
                    file.day != day
                        || self
                            .max_bytes
                            .is_some_and(|max| file.written > 0 && file.written + line_len > max)
                }
            };
            if needs_new {
                let seq = match &sink.file {
                    Some(file) if file.day == day => file.seq + 1,
                    _ => 0,
                };
                let file = open(
                    sink.folder.as_deref(),
                    self.format,
                    day,
                    seq,
                    self.max_bytes,
                )?;
                if let Some(mut old) = sink.file.replace(file) {
                    old.out.flush()?;
                }
            }
            let Some(file) = sink.file.as_mut() else {
                return Ok(());
            };
            file.out.write_all(self.line.as_bytes())?;
            file.written += line_len;
            file.dirty = true;
            Ok(())
        })();
        match result {
            Ok(()) => sink.warned = false,
            Err(error) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                if !sink.warned {
                    sink.warned = true;
                    let folder = sink.folder.as_deref().unwrap_or(Path::new("-"));
                    tracing::warn!(folder = %folder.display(), %error, "cannot write the access log; dropping lines");
                }
                // Open the file again for the next line.
                sink.file = None;
            }
        }
    }

    /// Flushes and closes every file; the next line opens its file again.
    fn close_files(&mut self) {
        self.flush();
        for slot in &mut self.sinks {
            if let SinkSlot::Own(sink) = slot {
                sink.file = None;
            }
        }
    }

    fn flush(&mut self) {
        for slot in &mut self.sinks {
            if let SinkSlot::Own(Sink {
                file: Some(file), ..
            }) = slot
                && file.dirty
            {
                file.dirty = false;
                if let Err(error) = file.out.flush() {
                    tracing::warn!(%error, "cannot flush the access log");
                }
            }
        }
    }
}

/// Opens day `day`'s file number `seq` in `folder` (standard output without one) and
/// writes the directives of the W3C format. With a size cap, a file of an earlier run that
/// is full already is passed over for the next number.
fn open(
    folder: Option<&Path>,
    format: AccessLogFormat,
    day: i64,
    mut seq: u32,
    max_bytes: Option<u64>,
) -> std::io::Result<OpenFile> {
    let (out, written): (Box<dyn Write + Send>, u64) = match folder {
        None => (Box::new(std::io::stdout()), 0),
        Some(folder) => loop {
            let path = folder.join(file_name(format, day, seq));
            let file = open_append(&path)?;
            let len = file.metadata()?.len();
            if max_bytes.is_some_and(|max| len >= max) {
                seq += 1;
                continue;
            }
            break (Box::new(file), len);
        },
    };
    let mut file = OpenFile {
        out: BufWriter::with_capacity(64 * 1024, out),
        day,
        seq,
        written,
        dirty: true,
    };
    if format == AccessLogFormat::W3c {
        let (now_day, now_clock) = utc(SystemTime::now());
        let mut head = String::with_capacity(256);
        let _ = write!(
            head,
            "#Software: ancm {}\n#Version: 1.0\n#Date: ",
            env!("CARGO_PKG_VERSION")
        );
        push_date(&mut head, now_day);
        head.push(' ');
        push_clock(&mut head, now_clock);
        let _ = writeln!(head, "\n#Fields: {W3C_FIELDS}");
        file.out.write_all(head.as_bytes())?;
        file.written += u64::try_from(head.len()).unwrap_or(u64::MAX);
    }
    Ok(file)
}

/// `u_exYYMMDD.log` (`.jsonl`), with `_N` for the N-th file of a day cut by size.
fn file_name(format: AccessLogFormat, day: i64, seq: u32) -> String {
    let (y, m, d) = civil_from_days(day);
    let ext = match format {
        AccessLogFormat::W3c => "log",
        AccessLogFormat::Json => "jsonl",
    };
    let yy = y.rem_euclid(100);
    if seq == 0 {
        format!("u_ex{yy:02}{m:02}{d:02}.{ext}")
    } else {
        format!("u_ex{yy:02}{m:02}{d:02}_{seq}.{ext}")
    }
}

/// Opens `path` for appending: created if missing, never through a symbolic link in its
/// last component, mode 0640 on Unix (access logs hold query strings).
fn open_append(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o640).custom_flags(nix::libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// One W3C line (with its newline).
fn w3c_line(out: &mut String, e: &Entry, day: i64, clock: u32) {
    push_date(out, day);
    out.push(' ');
    push_clock(out, clock);
    out.push(' ');
    push_ip(out, e.local);
    out.push(' ');
    push_w3c(out, e.method.as_str().as_bytes());
    out.push(' ');
    push_w3c(out, e.uri.path().as_bytes());
    out.push(' ');
    push_w3c(out, e.uri.query().unwrap_or("").as_bytes());
    out.push(' ');
    match e.local {
        Some(local) => {
            let _ = write!(out, "{}", local.port());
        }
        None => out.push('-'),
    }
    out.push_str(" - ");
    push_ip(out, e.client);
    out.push(' ');
    push_w3c(
        out,
        e.user_agent
            .as_ref()
            .map_or(&b""[..], HeaderValue::as_bytes),
    );
    out.push(' ');
    push_w3c(
        out,
        e.referer.as_ref().map_or(&b""[..], HeaderValue::as_bytes),
    );
    let _ = write!(
        out,
        " {} {} {} {} ",
        e.status,
        e.substatus,
        e.win32_status,
        e.time_taken.as_millis()
    );
    match e.trace_id {
        Some(id) => push_hex(out, &id),
        None => out.push('-'),
    }
    out.push('\n');
}

/// A W3C field value: `-` when empty, spaces as `+`, and `%XX` for bytes that could break
/// the line or are not ASCII.
fn push_w3c(out: &mut String, value: &[u8]) {
    if value.is_empty() {
        out.push('-');
        return;
    }
    for &byte in value {
        match byte {
            b' ' => out.push('+'),
            0x21..=0x7e => out.push(char::from(byte)),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
}

fn push_ip(out: &mut String, addr: Option<SocketAddr>) {
    match addr {
        Some(addr) => {
            let _ = write!(out, "{}", addr.ip().to_canonical());
        }
        None => out.push('-'),
    }
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
}

/// One JSON line (with its newline): the W3C field names as keys, `null` for empty values.
fn json_line(out: &mut String, e: &Entry, day: i64, clock: u32) {
    let text = |bytes: &[u8]| -> serde_json::Value {
        if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned())
        }
    };
    let mut date = String::with_capacity(10);
    push_date(&mut date, day);
    let mut time = String::with_capacity(8);
    push_clock(&mut time, clock);
    let ip = |addr: Option<SocketAddr>| {
        addr.map_or(serde_json::Value::Null, |a| {
            serde_json::Value::String(a.ip().to_canonical().to_string())
        })
    };
    let header =
        |value: &Option<HeaderValue>| text(value.as_ref().map_or(&b""[..], HeaderValue::as_bytes));
    let trace_id = e.trace_id.map_or(serde_json::Value::Null, |id| {
        let mut hex = String::with_capacity(32);
        push_hex(&mut hex, &id);
        serde_json::Value::String(hex)
    });
    let line = serde_json::json!({
        "date": date,
        "time": time,
        "s-ip": ip(e.local),
        "cs-method": e.method.as_str(),
        "cs-uri-stem": e.uri.path(),
        "cs-uri-query": text(e.uri.query().unwrap_or("").as_bytes()),
        "s-port": e.local.map(|a| a.port()),
        "cs-username": serde_json::Value::Null,
        "c-ip": ip(e.client),
        "cs(User-Agent)": header(&e.user_agent),
        "cs(Referer)": header(&e.referer),
        "sc-status": e.status,
        "sc-substatus": e.substatus,
        "sc-win32-status": e.win32_status,
        "time-taken": u64::try_from(e.time_taken.as_millis()).unwrap_or(u64::MAX),
        "trace-id": trace_id,
    });
    let _ = write!(out, "{line}");
    out.push('\n');
}

/// `t` in UTC: days since 1970-01-01 and seconds into the day.
fn utc(t: SystemTime) -> (i64, u32) {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (
        i64::try_from(secs / 86_400).unwrap_or(0),
        u32::try_from(secs % 86_400).unwrap_or(0),
    )
}

fn push_date(out: &mut String, day: i64) {
    let (y, m, d) = civil_from_days(day);
    let _ = write!(out, "{y:04}-{m:02}-{d:02}");
}

fn push_clock(out: &mut String, clock: u32) {
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}",
        clock / 3600,
        clock / 60 % 60,
        clock % 60
    );
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    /// The Julian day number of 1970-01-01.
    const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;
    let julian = i32::try_from(days.saturating_add(UNIX_EPOCH_JULIAN_DAY)).unwrap_or(i32::MAX);
    let date = time::Date::from_julian_day(julian).unwrap_or(time::Date::MAX);
    (
        i64::from(date.year()),
        u32::from(u8::from(date.month())),
        u32::from(date.day()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(app: Option<usize>) -> Entry {
        Entry {
            app,
            // 2024-01-02 03:04:05 UTC
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_164_645),
            method: Method::GET,
            uri: "/shop/a%20b?q=1&r=two+words".parse().unwrap(),
            user_agent: Some(HeaderValue::from_bytes(b"Mozilla/5.0 (X11)\tEvil\xff").unwrap()),
            referer: None,
            client: Some("[::ffff:203.0.113.7]:51000".parse().unwrap()),
            local: Some("127.0.0.1:8080".parse().unwrap()),
            status: 502,
            substatus: 5,
            win32_status: 0,
            time_taken: Duration::from_micros(12_900),
            trace_id: Some([0xab; 16]),
        }
    }

    #[test]
    fn a_w3c_line_has_every_field_and_nothing_that_breaks_it() {
        let mut line = String::new();
        let e = entry(Some(0));
        let (day, clock) = utc(e.at);
        w3c_line(&mut line, &e, day, clock);
        assert_eq!(
            line,
            "2024-01-02 03:04:05 127.0.0.1 GET /shop/a%20b q=1&r=two+words 8080 - 203.0.113.7 \
             Mozilla/5.0+(X11)%09Evil%FF - 502 5 0 12 abababababababababababababababab\n"
        );
        assert_eq!(
            line.split(' ').count(),
            W3C_FIELDS.split(' ').count(),
            "one value per field"
        );
    }

    #[test]
    fn a_json_line_has_the_same_fields_and_the_trace_id() {
        let mut line = String::new();
        let e = entry(None);
        let (day, clock) = utc(e.at);
        json_line(&mut line, &e, day, clock);
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        for field in W3C_FIELDS.split(' ').filter(|f| *f != "x-trace-id") {
            assert!(v.get(field).is_some(), "{field}");
        }
        assert_eq!(v["sc-status"], 502);
        assert_eq!(v["sc-substatus"], 5);
        assert_eq!(v["time-taken"], 12);
        assert_eq!(v["cs(User-Agent)"], "Mozilla/5.0 (X11)\tEvil\u{fffd}");
        assert_eq!(v["cs(Referer)"], serde_json::Value::Null);
        assert_eq!(v["trace-id"], "ab".repeat(16));
    }

    #[test]
    fn folder_names_follow_the_app_path() {
        let name = |p: &str| folder_name(&AppPath::parse(p).unwrap());
        assert_eq!(name("/"), "ROOT");
        assert_eq!(name("/Shop"), "ROOT_shop");
        assert_eq!(name("/shop/api-v2.1"), "ROOT_shop_api-v2.1");
        assert_eq!(name("/a_b"), "ROOT_a%5Fb");
        assert_ne!(name("/a_b"), name("/a/b"));
        assert_eq!(name("/x:y*"), "ROOT_x%3Ay%2A");
    }

    #[test]
    fn file_names_are_iis_names_in_utc() {
        let (day, _) = utc(SystemTime::UNIX_EPOCH + Duration::from_secs(1_704_164_645));
        assert_eq!(file_name(AccessLogFormat::W3c, day, 0), "u_ex240102.log");
        assert_eq!(file_name(AccessLogFormat::W3c, day, 3), "u_ex240102_3.log");
        assert_eq!(file_name(AccessLogFormat::Json, day, 0), "u_ex240102.jsonl");
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let (queue, lines) = std::sync::mpsc::sync_channel(1);
        let log = AccessLog {
            queue,
            dropped: Arc::new(AtomicU64::new(0)),
            queued: Arc::new(AtomicUsize::new(0)),
            waker: None,
            writer: Mutex::new(None),
        };
        log.log(entry(None));
        log.log(entry(None));
        log.log(entry(None));
        assert_eq!(log.dropped(), 2);
        drop(lines);
        log.log(entry(None));
        assert_eq!(log.dropped(), 3);
    }

    #[test]
    fn lines_are_written_flushed_and_rolled_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let apps = [AppPath::parse("/shop").unwrap()];
        let log = AccessLog::start(
            Target::Dir(dir.path().to_path_buf()),
            AccessLogFormat::W3c,
            Some(600),
            &apps,
        )
        .unwrap();
        for _ in 0..6 {
            log.log(entry(Some(0)));
        }
        log.log(entry(None));
        log.close();
        let shop = dir.path().join("ROOT_shop");
        let mut files: Vec<String> = std::fs::read_dir(&shop)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        assert!(files.len() >= 2, "{files:?}");
        assert_eq!(files[0], "u_ex240102.log");
        assert_eq!(files[1], "u_ex240102_1.log");
        let mut lines = 0;
        for f in &files {
            let text = std::fs::read_to_string(shop.join(f)).unwrap();
            assert!(text.len() <= 600, "{f}: {} bytes", text.len());
            assert!(text.starts_with("#Software: ancm "), "{text}");
            assert!(text.contains(&format!("#Fields: {W3C_FIELDS}\n")));
            lines += text.lines().filter(|l| !l.starts_with('#')).count();
        }
        assert_eq!(lines, 6);
        let root = std::fs::read_to_string(dir.path().join("ROOT/u_ex240102.log")).unwrap();
        assert_eq!(root.lines().filter(|l| !l.starts_with('#')).count(), 1);
        assert_eq!(log.dropped(), 0);
    }
}
