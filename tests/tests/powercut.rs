//! The power-cut disk itself (`passerelle_tests::powercut`): what it keeps and forgets.
//! The node on it is tried in the CLI tests (`a_power_cut_loses_no_acknowledged_write`).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use passerelle_tests::powercut::Disk;

#[test]
#[cfg_attr(
    not(passerelle_root),
    ignore = "needs root: mounting a FUSE file system"
)]
fn the_disk_forgets_what_was_not_synced_when_the_power_is_cut() {
    let mut disk = Disk::mount().expect("mount");
    let root = disk.path().to_owned();
    let dir = root.join("data");
    std::fs::create_dir(&dir).expect("mkdir");
    passerelle_node::durable::sync_dir(&root).expect("sync root");
    // Synced file, synced name.
    let kept = dir.join("kept");
    let mut file = std::fs::File::create(&kept).expect("create");
    file.write_all(b"synced").expect("write");
    file.sync_all().expect("sync");
    file.write_all(b" and more").expect("write more");
    drop(file);
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    // Synced file, its name synced with the folder below.
    let orphan = dir.join("orphan");
    let mut file = std::fs::File::create(&orphan).expect("create");
    file.write_all(b"lost").expect("write");
    file.sync_all().expect("sync");
    let atomic = dir.join("seed.json");
    passerelle_node::durable::write_file_atomically(&atomic, b"{}", 0o600).expect("atomic");
    // ... then renamed without syncing the folder: the old name comes back.
    std::fs::rename(&orphan, dir.join("renamed")).expect("rename");
    // A new file whose folder is never synced is gone.
    std::fs::write(dir.join("unsynced"), b"gone").expect("write");

    disk.power_cut().expect("cut");
    assert_eq!(std::fs::read(&kept).expect("kept"), b"synced");
    assert_eq!(
        std::fs::metadata(&kept).expect("meta").permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(std::fs::read(&orphan).expect("old name"), b"lost");
    assert!(!dir.join("renamed").exists());
    assert!(!dir.join("unsynced").exists());
    assert_eq!(std::fs::read(&atomic).expect("atomic"), b"{}");
    assert_eq!(disk.stats().cuts, 1);

    // Full: a write past the capacity fails, and nothing is half written.
    disk.set_capacity(Some(disk.used() + 10));
    let mut file = std::fs::File::create(dir.join("big")).expect("create");
    let error = file.write_all(&[1u8; 4096]).expect_err("the disk is full");
    assert_eq!(error.raw_os_error(), Some(libc::ENOSPC));
}
