//! What tells one version of a file from another without reading it: its size, its
//! modification time and which file it is (device and inode on Unix), so a replacement
//! renamed into place is seen even with the same size and time.
use std::fs::Metadata;
use std::time::SystemTime;

/// The identity and version of a file as `stat` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    /// Device and inode on Unix; zero elsewhere.
    id: (u64, u64),
}

impl FileStamp {
    /// The stamp of `meta`.
    pub(crate) fn of(meta: &Metadata) -> Self {
        #[cfg(unix)]
        let id = {
            use std::os::unix::fs::MetadataExt as _;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let id = (0, 0);
        Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            id,
        }
    }

    /// The stamp of the file at `path` (following symbolic links); `None` when it cannot be
    /// looked at (absent, no permission).
    pub(crate) fn read(path: &std::path::Path) -> Option<Self> {
        std::fs::metadata(path).ok().map(|m| Self::of(&m))
    }
}
