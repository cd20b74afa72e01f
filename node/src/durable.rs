//! Files that survive a power cut: written whole or not at all, and on the disk (not only
//! in the page cache) before anyone is told they are written.
//!
//! Rules:
//! - A file is written to a temporary name in its own folder, synced (`fsync`), renamed
//!   over its final name, and the folder is synced too: after a crash the file is either
//!   the old one or the new one, never a mix, and the rename itself is on the disk.
//! - A new file or folder is followed by a sync of its parent folder, whose entry would
//!   otherwise be lost with the power.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Syncs a folder, so that the files created, renamed or removed in it stay so after a
/// power cut.
pub fn sync_dir(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

/// Writes `bytes` to `path` with permissions `mode`, atomically and durably (see the
/// module's rules).
pub fn write_file_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let folder = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = folder.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&temporary)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)?;
        sync_dir(folder)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_replaced_whole_with_its_mode() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("seed.json");
        write_file_atomically(&path, b"one", 0o600).expect("write");
        write_file_atomically(&path, b"two", 0o600).expect("write again");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 1);
    }
}
