//! Reloading the certificates when their files change, and when asked (SIGHUP).
//!
//! The folder of each `--tls-cert`/`--tls-key` file is watched, and the folder of the file
//! it resolves to when it is a symbolic link. Only what can change a file's content counts:
//! creation, writes, renames and removal; reads never do (a reader of the files must not
//! start a reload). When a configured path is itself a symbolic link (certbot's `live/`
//! folder, a Kubernetes secret volume), a renewal swaps a link rather than writing the file,
//! possibly one further up the chain, so any such change in that folder counts. Events are
//! collected for [`DEBOUNCE`] after the first of a burst, then [`CertStore::reload`] runs
//! once on a blocking thread; it compares the files' bytes with what it read last, so a
//! burst that ends with the same content changes nothing. After each reload the links are
//! resolved again and the watched folders follow them.
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::mpsc;

use super::certs::{CertFiles, CertStore};

/// How long events are collected before the files are read.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// Why the certificates are read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A watched file or link changed.
    FileChange,
    /// SIGHUP.
    Signal,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::FileChange => "file change",
            Trigger::Signal => "SIGHUP",
        }
    }
}

/// Which names in a watched folder concern the certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Names {
    /// Any: a configured path in it is a symbolic link.
    Any,
    /// Only these.
    Only(HashSet<OsString>),
}

/// The watched folders and what in them concerns the certificates.
type Interest = HashMap<PathBuf, Names>;

/// Asks the reload task to read the certificates again.
#[derive(Debug, Clone)]
pub struct Reloader {
    requests: mpsc::UnboundedSender<Trigger>,
}

impl Reloader {
    /// Starts watching `store`'s files on the current runtime; without a working watcher
    /// (logged as a warning) only [`Reloader::reload`] reloads.
    pub fn start(store: Arc<CertStore>) -> Self {
        let (requests, pending) = mpsc::unbounded_channel();
        let interest = Arc::new(RwLock::new(interest_in(store.files())));
        let watcher = watcher(requests.clone(), interest.clone());
        tokio::spawn(follow(store, watcher, interest, pending));
        Self { requests }
    }

    /// Reads the certificates again now.
    pub fn reload(&self, trigger: Trigger) {
        // The task ends only with the runtime.
        let _ = self.requests.send(trigger);
    }
}

/// A notify watcher whose events that concern the certificates request a reload.
fn watcher(
    requests: mpsc::UnboundedSender<Trigger>,
    interest: Arc<RwLock<Interest>>,
) -> Option<notify::RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| {
        let interest = interest.read().unwrap_or_else(PoisonError::into_inner);
        if concerns(&event, &interest) {
            let _ = requests.send(Trigger::FileChange);
        }
    };
    notify::recommended_watcher(handler)
        .inspect_err(|error| {
            tracing::warn!(%error, "cannot watch the TLS certificate files; only SIGHUP reloads them");
        })
        .ok()
}

/// Whether a watcher event may have changed a certificate file: a change of content or
/// presence of a name of interest; never a read.
fn concerns(event: &notify::Result<notify::Event>, interest: &Interest) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    let event = match event {
        Ok(event) if !event.need_rescan() => event,
        // Events were lost or the watcher failed: look.
        _ => return true,
    };
    match event.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
        EventKind::Access(_) | EventKind::Modify(ModifyKind::Metadata(_)) => return false,
        EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Remove(_)
        | EventKind::Any
        | EventKind::Other => {}
    }
    event.paths.iter().any(|path| {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return false;
        };
        match interest.get(dir) {
            Some(Names::Any) => true,
            Some(Names::Only(names)) => names.contains(name),
            None => false,
        }
    })
}

/// The folders to watch for `files`, resolving symbolic links as they are now. Blocking.
fn interest_in(files: &[CertFiles]) -> Interest {
    let mut interest = Interest::new();
    let mut add = |path: &Path, any: bool| {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return;
        };
        let names = interest
            .entry(dir.to_owned())
            .or_insert_with(|| Names::Only(HashSet::new()));
        match names {
            Names::Any => {}
            Names::Only(_) if any => *names = Names::Any,
            Names::Only(names) => {
                names.insert(name.to_owned());
            }
        }
    };
    for path in files.iter().flat_map(|pair| [&pair.cert, &pair.key]) {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        let linked = path
            .symlink_metadata()
            .is_ok_and(|meta| meta.file_type().is_symlink());
        add(&path, linked);
        if let Ok(target) = std::fs::canonicalize(&path)
            && target != path
        {
            add(&target, false);
        }
    }
    interest
}

/// The reload task: waits for a request, collects the file events of a burst for
/// [`DEBOUNCE`] (a SIGHUP reloads at once), reloads on a blocking thread, then moves the
/// watches to where the links now lead.
async fn follow(
    store: Arc<CertStore>,
    mut watcher: Option<notify::RecommendedWatcher>,
    interest: Arc<RwLock<Interest>>,
    mut pending: mpsc::UnboundedReceiver<Trigger>,
) {
    let mut watched = HashSet::new();
    let current = interest
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    update_watches(watcher.as_mut(), &mut watched, &current);
    while let Some(first) = pending.recv().await {
        let mut trigger = first;
        if trigger == Trigger::FileChange {
            tokio::time::sleep(DEBOUNCE).await;
        }
        while let Ok(more) = pending.try_recv() {
            if more == Trigger::Signal {
                trigger = more;
            }
        }
        let store = store.clone();
        let read = tokio::task::spawn_blocking(move || {
            store.reload(trigger.as_str());
            interest_in(store.files())
        });
        let Ok(new) = read.await else { continue };
        update_watches(watcher.as_mut(), &mut watched, &new);
        *interest.write().unwrap_or_else(PoisonError::into_inner) = new;
    }
}

/// Watches the folders of `interest` that are not yet watched and stops watching those no
/// longer in it.
fn update_watches(
    watcher: Option<&mut notify::RecommendedWatcher>,
    watched: &mut HashSet<PathBuf>,
    interest: &Interest,
) {
    use notify::Watcher as _;
    let Some(watcher) = watcher else { return };
    for dir in interest.keys() {
        if watched.contains(dir) {
            continue;
        }
        match watcher.watch(dir, notify::RecursiveMode::NonRecursive) {
            Ok(()) => {
                watched.insert(dir.clone());
            }
            Err(error) => {
                tracing::warn!(folder = %dir.display(), %error, "cannot watch a TLS certificate folder; only SIGHUP reloads its files");
            }
        }
    }
    watched.retain(|dir| {
        if interest.contains_key(dir) {
            return true;
        }
        let _ = watcher.unwatch(dir);
        false
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: notify::EventKind, path: &str) -> notify::Result<notify::Event> {
        Ok(notify::Event::new(kind).add_path(PathBuf::from(path)))
    }

    #[test]
    fn only_content_changes_of_the_files_concern_the_certificates() {
        use notify::EventKind;
        use notify::event::{AccessKind, AccessMode, CreateKind, MetadataKind, ModifyKind};
        let interest = Interest::from([
            (
                PathBuf::from("/etc/tls"),
                Names::Only(HashSet::from([OsString::from("site.pem")])),
            ),
            (PathBuf::from("/etc/live"), Names::Any),
        ]);
        let write = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        let touch = EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any));
        let create = EventKind::Create(CreateKind::File);
        assert!(concerns(&event(write, "/etc/tls/site.pem"), &interest));
        assert!(concerns(&event(create, "/etc/tls/site.pem"), &interest));
        assert!(!concerns(&event(read, "/etc/tls/site.pem"), &interest));
        assert!(!concerns(&event(open, "/etc/tls/site.pem"), &interest));
        assert!(!concerns(&event(touch, "/etc/tls/site.pem"), &interest));
        assert!(!concerns(&event(write, "/etc/tls/other.pem"), &interest));
        assert!(concerns(&event(create, "/etc/live/..data"), &interest));
        assert!(!concerns(&event(read, "/etc/live/..data"), &interest));
        assert!(concerns(
            &Err(notify::Error::generic("queue overflow")),
            &interest
        ));
    }
}
