//! A disk that loses power: a FUSE file system kept in memory that remembers, for every
//! file, what was last synced (`fsync`/`fdatasync`) and, for every folder, which names were
//! in it when it was last synced; a power cut brings everything back to that, as LazyFS
//! (used by Jepsen) models a disk whose cache is lost. It can also be made full (`ENOSPC`).
//!
//! - Data written but not synced is lost at a cut, whatever `sync_file_range`, `flush` or
//!   `close` did before (what sled 0.34 relies on).
//! - A new, renamed or removed name in a folder is lost at a cut unless the folder was
//!   synced after (strict POSIX: ext4 and others often keep it, but need not).
//! - Permissions and ownership are kept as set (a simplification: they are metadata most
//!   file systems journal at once).
//! - Files are opened with direct I/O and nothing is cached by the kernel, so that what a
//!   process reads after a cut is what this model holds; a cut also unmounts and mounts
//!   again.
//!
//! Mounting needs root (CI has it): tests using it are `#[cfg_attr(not(passerelle_root),
//! ignore = …)]`.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation,
    INodeNo, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

const ROOT: u64 = 1;
const TTL: Duration = Duration::ZERO;

#[derive(Debug, Clone)]
struct Inode {
    kind: FileType,
    perm: u16,
    uid: u32,
    gid: u32,
    rdev: u32,
    data: Vec<u8>,
    /// What a cut brings the file back to (`None`: never synced, empty after a cut).
    synced: Option<Vec<u8>>,
    entries: BTreeMap<OsString, u64>,
    synced_entries: BTreeMap<OsString, u64>,
    mtime: SystemTime,
    target: Option<PathBuf>,
}

impl Inode {
    fn new(kind: FileType, perm: u16, uid: u32, gid: u32) -> Self {
        Self {
            kind,
            perm,
            uid,
            gid,
            rdev: 0,
            data: Vec::new(),
            synced: None,
            entries: BTreeMap::new(),
            synced_entries: BTreeMap::new(),
            mtime: SystemTime::now(),
            target: None,
        }
    }
}

/// Counts of what the disk saw, for the reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// File syncs (`fsync`, `fdatasync`).
    pub file_syncs: u64,
    /// Folder syncs.
    pub folder_syncs: u64,
    /// Writes.
    pub writes: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Power cuts.
    pub cuts: u64,
    /// Writes refused because the disk was full.
    pub refused_full: u64,
}

#[derive(Debug)]
struct State {
    inodes: HashMap<u64, Inode>,
    next: u64,
    /// Every operation fails (the power is going).
    frozen: bool,
    /// Bytes of file data it holds at most; past that, writes fail with `ENOSPC`.
    capacity: Option<u64>,
    stats: DiskStats,
}

impl State {
    fn new() -> Self {
        let mut root = Inode::new(FileType::Directory, 0o755, 0, 0);
        root.synced = Some(Vec::new());
        Self {
            inodes: HashMap::from([(ROOT, root)]),
            next: ROOT + 1,
            frozen: false,
            capacity: None,
            stats: DiskStats::default(),
        }
    }

    fn used(&self) -> u64 {
        self.inodes.values().map(|i| i.data.len() as u64).sum()
    }

    /// True (and counted) when growing `ino` to `end` bytes would pass the capacity.
    fn full(&mut self, ino: u64, end: u64) -> bool {
        let held = self.inodes.get(&ino).map_or(0, |i| i.data.len() as u64);
        let grows = end.saturating_sub(held);
        let full = self
            .capacity
            .is_some_and(|capacity| self.used() + grows > capacity);
        if full {
            self.stats.refused_full += 1;
        }
        full
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let inode = self.inodes.get(&ino)?;
        let size = match inode.kind {
            FileType::Directory => 4096,
            FileType::Symlink => inode
                .target
                .as_ref()
                .map_or(0, |t| t.as_os_str().len() as u64),
            _ => inode.data.len() as u64,
        };
        Some(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: inode.mtime,
            mtime: inode.mtime,
            ctime: inode.mtime,
            crtime: inode.mtime,
            kind: inode.kind,
            perm: inode.perm,
            nlink: if inode.kind == FileType::Directory {
                2
            } else {
                1
            },
            uid: inode.uid,
            gid: inode.gid,
            rdev: inode.rdev,
            blksize: 4096,
            flags: 0,
        })
    }

    fn child(&self, parent: u64, name: &OsStr) -> Result<u64, Errno> {
        let dir = self.inodes.get(&parent).ok_or(Errno::ENOENT)?;
        if dir.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        dir.entries.get(name).copied().ok_or(Errno::ENOENT)
    }

    fn add(&mut self, parent: u64, name: &OsStr, inode: Inode) -> Result<u64, Errno> {
        let dir = self.inodes.get(&parent).ok_or(Errno::ENOENT)?;
        if dir.kind != FileType::Directory {
            return Err(Errno::ENOTDIR);
        }
        if dir.entries.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let ino = self.next;
        self.next += 1;
        self.inodes.insert(ino, inode);
        if let Some(dir) = self.inodes.get_mut(&parent) {
            dir.entries.insert(name.to_owned(), ino);
            dir.mtime = SystemTime::now();
        }
        Ok(ino)
    }

    /// The power is lost: every file back to what was last synced, every folder back to
    /// the names it had when last synced; what no synced folder names is gone.
    fn cut(&mut self) {
        for inode in self.inodes.values_mut() {
            if inode.kind == FileType::Directory {
                inode.entries = inode.synced_entries.clone();
            } else {
                inode.data = inode.synced.clone().unwrap_or_default();
            }
        }
        let mut reachable = std::collections::HashSet::from([ROOT]);
        let mut stack = vec![ROOT];
        while let Some(ino) = stack.pop() {
            if let Some(inode) = self.inodes.get(&ino) {
                for child in inode.entries.values() {
                    if reachable.insert(*child) {
                        stack.push(*child);
                    }
                }
            }
        }
        self.inodes.retain(|ino, _| reachable.contains(ino));
        self.stats.cuts += 1;
    }
}

/// The FUSE side: every call goes to the shared state.
#[derive(Debug)]
struct PowerCutFs {
    state: Arc<Mutex<State>>,
}

impl PowerCutFs {
    fn state(&self) -> Result<MutexGuard<'_, State>, Errno> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.frozen {
            return Err(Errno::EIO);
        }
        Ok(state)
    }
}

fn kind_of(mode: u32) -> FileType {
    match mode & libc::S_IFMT {
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFSOCK => FileType::Socket,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFLNK => FileType::Symlink,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        _ => FileType::RegularFile,
    }
}

macro_rules! state_or_reply {
    ($self:ident, $reply:ident) => {
        match $self.state() {
            Ok(state) => state,
            Err(e) => return $reply.error(e),
        }
    };
}

impl Filesystem for PowerCutFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let state = state_or_reply!(self, reply);
        match state.child(parent.0, name).map(|ino| state.attr(ino)) {
            Ok(Some(attr)) => reply.entry(&TTL, &attr, Generation(0)),
            Ok(None) => reply.error(Errno::ENOENT),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let state = state_or_reply!(self, reply);
        match state.attr(ino.0) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut state = state_or_reply!(self, reply);
        if size.is_some_and(|size| state.full(ino.0, size)) {
            return reply.error(Errno::ENOSPC);
        }
        let Some(inode) = state.inodes.get_mut(&ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        if let Some(mode) = mode {
            inode.perm = (mode & 0o7777) as u16;
        }
        if let Some(uid) = uid {
            inode.uid = uid;
        }
        if let Some(gid) = gid {
            inode.gid = gid;
        }
        if let Some(size) = size {
            inode.data.resize(size as usize, 0);
            inode.mtime = SystemTime::now();
        }
        match state.attr(ino.0) {
            Some(attr) => reply.attr(&TTL, &attr),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let state = state_or_reply!(self, reply);
        match state.inodes.get(&ino.0).and_then(|i| i.target.clone()) {
            Some(target) => reply.data(target.as_os_str().as_encoded_bytes()),
            None => reply.error(Errno::EINVAL),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let mut state = state_or_reply!(self, reply);
        let mut inode = Inode::new(
            kind_of(mode),
            (mode & !umask & 0o7777) as u16,
            req.uid(),
            req.gid(),
        );
        inode.rdev = rdev;
        match state.add(parent.0, name, inode) {
            Ok(ino) => match state.attr(ino) {
                Some(attr) => reply.entry(&TTL, &attr, Generation(0)),
                None => reply.error(Errno::EIO),
            },
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut state = state_or_reply!(self, reply);
        let inode = Inode::new(
            FileType::Directory,
            (mode & !umask & 0o7777) as u16,
            req.uid(),
            req.gid(),
        );
        match state.add(parent.0, name, inode) {
            Ok(ino) => match state.attr(ino) {
                Some(attr) => reply.entry(&TTL, &attr, Generation(0)),
                None => reply.error(Errno::EIO),
            },
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut state = state_or_reply!(self, reply);
        match state.child(parent.0, name) {
            Ok(ino)
                if state
                    .inodes
                    .get(&ino)
                    .is_some_and(|i| i.kind == FileType::Directory) =>
            {
                reply.error(Errno::EISDIR)
            }
            Ok(_) => {
                if let Some(dir) = state.inodes.get_mut(&parent.0) {
                    dir.entries.remove(name);
                    dir.mtime = SystemTime::now();
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut state = state_or_reply!(self, reply);
        match state.child(parent.0, name) {
            Ok(ino) => {
                match state.inodes.get(&ino) {
                    Some(i) if i.kind != FileType::Directory => return reply.error(Errno::ENOTDIR),
                    Some(i) if !i.entries.is_empty() => return reply.error(Errno::ENOTEMPTY),
                    _ => {}
                }
                if let Some(dir) = state.inodes.get_mut(&parent.0) {
                    dir.entries.remove(name);
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let mut state = state_or_reply!(self, reply);
        let mut inode = Inode::new(FileType::Symlink, 0o777, req.uid(), req.gid());
        inode.target = Some(target.to_owned());
        match state.add(parent.0, link_name, inode) {
            Ok(ino) => match state.attr(ino) {
                Some(attr) => reply.entry(&TTL, &attr, Generation(0)),
                None => reply.error(Errno::EIO),
            },
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mut state = state_or_reply!(self, reply);
        let ino = match state.child(parent.0, name) {
            Ok(ino) => ino,
            Err(e) => return reply.error(e),
        };
        if flags.contains(RenameFlags::RENAME_EXCHANGE) {
            return reply.error(Errno::EINVAL);
        }
        match state.child(newparent.0, newname) {
            Ok(_) if flags.contains(RenameFlags::RENAME_NOREPLACE) => {
                return reply.error(Errno::EEXIST);
            }
            Ok(existing) => {
                if let Some(i) = state.inodes.get(&existing)
                    && i.kind == FileType::Directory
                    && !i.entries.is_empty()
                {
                    return reply.error(Errno::ENOTEMPTY);
                }
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return reply.error(e),
        }
        if let Some(dir) = state.inodes.get_mut(&parent.0) {
            dir.entries.remove(name);
            dir.mtime = SystemTime::now();
        }
        match state.inodes.get_mut(&newparent.0) {
            Some(dir) => {
                dir.entries.insert(newname.to_owned(), ino);
                dir.mtime = SystemTime::now();
                reply.ok();
            }
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let state = state_or_reply!(self, reply);
        if !state.inodes.contains_key(&ino.0) {
            return reply.error(Errno::ENOENT);
        }
        reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO);
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let state = state_or_reply!(self, reply);
        match state.inodes.get(&ino.0) {
            Some(inode) => {
                let start = (offset as usize).min(inode.data.len());
                let end = (start + size as usize).min(inode.data.len());
                reply.data(&inode.data[start..end]);
            }
            None => reply.error(Errno::ENOENT),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut state = state_or_reply!(self, reply);
        let end = offset as usize + data.len();
        if state.full(ino.0, end as u64) {
            return reply.error(Errno::ENOSPC);
        }
        state.stats.writes += 1;
        state.stats.bytes_written += data.len() as u64;
        match state.inodes.get_mut(&ino.0) {
            Some(inode) => {
                if inode.data.len() < end {
                    inode.data.resize(end, 0);
                }
                inode.data[offset as usize..end].copy_from_slice(data);
                inode.mtime = SystemTime::now();
                reply.written(data.len() as u32);
            }
            None => reply.error(Errno::ENOENT),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // Closing a file syncs nothing.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut state = state_or_reply!(self, reply);
        state.stats.file_syncs += 1;
        match state.inodes.get_mut(&ino.0) {
            Some(inode) if inode.kind == FileType::Directory => {
                inode.synced_entries = inode.entries.clone();
                reply.ok();
            }
            Some(inode) => {
                inode.synced = Some(inode.data.clone());
                reply.ok();
            }
            None => reply.error(Errno::ENOENT),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let state = state_or_reply!(self, reply);
        match state.inodes.get(&ino.0) {
            Some(i) if i.kind == FileType::Directory => {
                reply.opened(FileHandle(0), FopenFlags::empty())
            }
            Some(_) => reply.error(Errno::ENOTDIR),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let state = state_or_reply!(self, reply);
        let Some(dir) = state.inodes.get(&ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        let mut listing: Vec<(u64, FileType, OsString)> = vec![
            (ino.0, FileType::Directory, ".".into()),
            (ino.0, FileType::Directory, "..".into()),
        ];
        for (name, child) in &dir.entries {
            let kind = state
                .inodes
                .get(child)
                .map_or(FileType::RegularFile, |i| i.kind);
            listing.push((*child, kind, name.clone()));
        }
        for (i, (child, kind, name)) in listing.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let mut state = state_or_reply!(self, reply);
        state.stats.folder_syncs += 1;
        match state.inodes.get_mut(&ino.0) {
            Some(inode) => {
                inode.synced_entries = inode.entries.clone();
                reply.ok();
            }
            None => reply.error(Errno::ENOENT),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let state = state_or_reply!(self, reply);
        let total = state.capacity.unwrap_or(64 * 1024 * 1024 * 1024) / 4096;
        let used = state.used().div_ceil(4096);
        let free = total.saturating_sub(used);
        reply.statfs(total, free, free, 1 << 20, 1 << 20, 4096, 255, 4096);
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        let state = state_or_reply!(self, reply);
        if state.inodes.contains_key(&ino.0) {
            reply.ok();
        } else {
            reply.error(Errno::ENOENT);
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut state = state_or_reply!(self, reply);
        let existing = state.child(parent.0, name).ok();
        let ino = match existing {
            Some(_) if flags & libc::O_EXCL != 0 => return reply.error(Errno::EEXIST),
            Some(ino) => {
                if flags & libc::O_TRUNC != 0
                    && let Some(inode) = state.inodes.get_mut(&ino)
                {
                    inode.data.clear();
                }
                ino
            }
            None => {
                let inode = Inode::new(
                    kind_of(mode),
                    (mode & !umask & 0o7777) as u16,
                    req.uid(),
                    req.gid(),
                );
                match state.add(parent.0, name, inode) {
                    Ok(ino) => ino,
                    Err(e) => return reply.error(e),
                }
            }
        };
        match state.attr(ino) {
            Some(attr) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(0),
                FopenFlags::FOPEN_DIRECT_IO,
            ),
            None => reply.error(Errno::EIO),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let mut state = state_or_reply!(self, reply);
        if mode != 0 {
            return reply.error(Errno::EOPNOTSUPP);
        }
        let end = (offset + length) as usize;
        if state.full(ino.0, end as u64) {
            return reply.error(Errno::ENOSPC);
        }
        match state.inodes.get_mut(&ino.0) {
            Some(inode) => {
                if inode.data.len() < end {
                    inode.data.resize(end, 0);
                }
                reply.ok();
            }
            None => reply.error(Errno::ENOENT),
        }
    }
}

/// A mounted disk that can lose power.
#[derive(Debug)]
pub struct Disk {
    state: Arc<Mutex<State>>,
    mountpoint: PathBuf,
    session: Option<fuser::BackgroundSession>,
    _dir: tempfile::TempDir,
}

impl Disk {
    /// Mounts a new, empty disk on a temporary folder.
    pub fn mount() -> std::io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("passerelle-disk-")
            .tempdir()?;
        let mountpoint = dir.path().join("mnt");
        std::fs::create_dir(&mountpoint)?;
        let mut disk = Self {
            state: Arc::new(Mutex::new(State::new())),
            mountpoint,
            session: None,
            _dir: dir,
        };
        disk.attach()?;
        Ok(disk)
    }

    fn attach(&mut self) -> std::io::Result<()> {
        let mut config = fuser::Config::default();
        config.mount_options = vec![
            fuser::MountOption::FSName("passerelle-powercut".into()),
            fuser::MountOption::CUSTOM("max_read=131072".into()),
        ];
        let fs = PowerCutFs {
            state: self.state.clone(),
        };
        self.session = Some(fuser::spawn_mount(fs, &self.mountpoint, &config)?);
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// From now on every operation fails with `EIO`: the power is going (call before
    /// killing the processes that use it, so that nothing more is written).
    pub fn freeze(&self) {
        self.lock().frozen = true;
    }

    /// The power is lost and comes back: everything not synced is forgotten; the disk is
    /// unmounted (dropping every cache the kernel kept) and mounted again. The processes
    /// that used it must be gone.
    pub fn power_cut(&mut self) -> std::io::Result<()> {
        self.lock().frozen = true;
        drop(self.session.take());
        {
            let mut state = self.lock();
            state.cut();
            state.frozen = false;
        }
        self.attach()
    }

    /// Limits the file data it holds (`None`: no limit); writes past it fail with
    /// `ENOSPC`.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.lock().capacity = bytes;
    }

    /// Bytes of file data it holds now.
    pub fn used(&self) -> u64 {
        self.lock().used()
    }

    /// What it saw so far.
    pub fn stats(&self) -> DiskStats {
        self.lock().stats
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        self.lock().frozen = false;
        drop(self.session.take());
    }
}
