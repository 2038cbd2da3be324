//! Atomic, batch-durable file writes under the output path.
//!
//! Every page is written to a temporary file in its target's directory
//! (created exclusively, mode 0644) and renamed over the target, so a
//! reader sees the old page or the new one, never a partial one. Making
//! each temporary file durable with its own `fsync` caps the writer at
//! about 1,900 files/s on the build farm's disks, so a [`Batch`] collects
//! the temporary files of many pages, makes them all durable with one
//! `syncfs` of their file system, and only then renames them: after a
//! crash every page is either the old one or the complete new one.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::ops::Range;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Mode of every file we publish.
const MODE: u32 = 0o644;

/// Up to this many files a batch syncs each one rather than the file
/// system.
const FEW: usize = 4;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary name next to `target`: hidden, unique in this process and
/// tagged with our pid (so leftovers of a crash can be told apart).
fn temp_name(target: &Path) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    static PID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let mut name = OsString::from(".piw-");
    name.push(PID.get_or_init(|| std::process::id().to_string()));
    name.push(format!("-{n}.tmp"));
    target.with_file_name(name)
}

/// Whether the process umask removes bits of [`MODE`] (read once).
fn umask_restricts() -> bool {
    static RESTRICTS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *RESTRICTS.get_or_init(|| {
        // SAFETY: umask cannot fail; the old mask is put back at once.
        let old = unsafe { libc::umask(0o022) };
        unsafe { libc::umask(old) };
        old & MODE != 0
    })
}

/// A file being written: its temporary path and the buffered handle.
pub struct TempFile {
    out: BufWriter<File>,
    tmp: PathBuf,
    target: PathBuf,
}

impl TempFile {
    /// Creates the temporary file for `target` (whose directory must exist).
    pub fn create(target: &Path) -> io::Result<TempFile> {
        TempFile::create_in(None, target)
    }

    /// Creates the temporary file for `target` in `dir` (on the same file
    /// system), or next to `target` when `dir` is None.
    fn create_in(dir: Option<&Path>, target: &Path) -> io::Result<TempFile> {
        let tmp = match dir {
            Some(dir) => dir.join(temp_name(target).file_name().unwrap_or_default()),
            None => temp_name(target),
        };
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(MODE)
            .open(&tmp)?;
        // A umask stricter than 022 takes bits away; pages must be
        // world-readable.
        if umask_restricts() {
            file.set_permissions(fs::Permissions::from_mode(MODE))?;
        }
        Ok(TempFile {
            out: BufWriter::with_capacity(64 * 1024, file),
            tmp,
            target: target.to_path_buf(),
        })
    }
}

impl Write for TempFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Temporary files waiting to be made durable and renamed into place.
///
/// Dropping a batch without [`Batch::commit`] removes its temporary files
/// and leaves every target as it was.
pub struct Batch {
    /// (temporary, target), in the order written.
    pending: Vec<(PathBuf, PathBuf)>,
    /// One directory per file system the temporary files are on.
    filesystems: Vec<(u64, PathBuf)>,
    /// Whether to sync before renaming (off only in benchmarks comparing
    /// the cost).
    durable: bool,
    /// Pages skipped by [`Batch::write`] because they were up to date.
    unchanged: usize,
    /// For a staged batch: the output root. Missing directories are made
    /// at commit, and the temporary files of pages going into them wait
    /// in a staging directory per top-level directory meanwhile.
    staging: Option<PathBuf>,
    /// Directories to create at commit, parents first.
    dirs: Vec<PathBuf>,
    /// Staging directories known to exist.
    ready: Vec<PathBuf>,
}

/// The staging directory in each top-level directory of a staged batch.
pub const STAGING: &str = ".piw-staging";

impl Default for Batch {
    fn default() -> Self {
        Batch::new()
    }
}

impl Batch {
    /// An empty, durable batch.
    pub fn new() -> Batch {
        Batch {
            pending: Vec::new(),
            filesystems: Vec::new(),
            durable: true,
            unchanged: 0,
            staging: None,
            dirs: Vec::new(),
            ready: Vec::new(),
        }
    }

    /// A batch for many pages under `root`: the directories pages need are
    /// made at commit, and the temporary files of pages going there are
    /// written to `<root>/<top>/.piw-staging/` meanwhile, so whoever
    /// commits (a full rewrite's helper thread) does the `mkdir`s and
    /// renames while the writer goes on writing. The
    /// staging directories must be on the file system of their top-level
    /// directory, which they are unless someone mounts over them.
    pub fn staged(mut self, root: &Path) -> Batch {
        self.staging = Some(root.to_path_buf());
        self
    }

    /// Makes sure `path` will be a directory when the batch is committed:
    /// at once (see [`ensure_dir`]) for a plain batch or when something
    /// other than a directory is in the way; at commit when it is simply
    /// missing from a staged batch.
    pub fn ensure_dir(&mut self, path: &Path) -> io::Result<()> {
        if self.staging.is_none() {
            return ensure_dir(path);
        }
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !self.deferred(path) {
                    self.dirs.push(path.to_path_buf());
                }
                Ok(())
            }
            _ => ensure_dir(path),
        }
    }

    /// Whether `dir` is to be made at commit. Only the latest few are
    /// looked at: a page's directory is one its package just asked for.
    fn deferred(&self, dir: &Path) -> bool {
        self.dirs.iter().rev().take(8).any(|d| d == dir)
    }

    /// Where the temporary file of `target` goes: its staging directory
    /// (made if missing) when the target's directory is yet to be made,
    /// or None for next to it. A page replacing one that exists is written
    /// next to it: a rename within one directory is cheaper than across
    /// two (measured: staging every page made a rewrite of 100,000 changed
    /// pages 20-25% slower, while it made the first write 20-50% faster).
    fn staging_for(&mut self, target: &Path) -> io::Result<Option<PathBuf>> {
        let Some(root) = &self.staging else {
            return Ok(None);
        };
        if !target.parent().is_some_and(|p| self.deferred(p)) {
            return Ok(None);
        }
        let Ok(rel) = target.strip_prefix(root) else {
            return Ok(None);
        };
        let mut parts = rel.components();
        let (Some(top), Some(_)) = (parts.next(), parts.next()) else {
            return Ok(None);
        };
        let dir = root.join(top).join(STAGING);
        if !self.ready.contains(&dir) {
            ensure_dir(&dir)?;
            self.ready.push(dir.clone());
        }
        Ok(Some(dir))
    }

    /// A batch that renames without syncing first (for measurements).
    pub fn volatile() -> Batch {
        let mut b = Batch::new();
        b.durable = false;
        b
    }

    /// Number of files waiting.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Number of pages [`Batch::write`] left alone because the file on
    /// disk already held the same bytes.
    pub fn unchanged(&self) -> usize {
        self.unchanged
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Writes `contents` as the next version of `target`, unless `target`
    /// already holds exactly these bytes: a full rewrite of an unchanged
    /// site then costs a read per page instead of a write, a sync and a
    /// rename over the old file (which is what made it slow).
    pub fn write(&mut self, target: &Path, contents: &[u8]) -> io::Result<()> {
        self.write_stamped(target, contents, 0..0)
    }

    /// [`Batch::write`] for a page whose bytes in `stamp` say when it was
    /// written ("Page updated ..."): a page that differs from the one on
    /// disk only there is left alone, so its stamp tells when its content
    /// last changed.
    pub fn write_stamped(
        &mut self,
        target: &Path,
        contents: &[u8],
        stamp: Range<usize>,
    ) -> io::Result<()> {
        if already_holds(target, contents, stamp) {
            self.unchanged += 1;
            return Ok(());
        }
        let mut f = self.start(target)?;
        let written = f.write_all(contents);
        self.finish(f, written)
    }

    /// Starts a file written piece by piece (large pages, gzip streams);
    /// hand it back with [`Batch::finish`].
    pub fn start(&mut self, target: &Path) -> io::Result<TempFile> {
        let dir = self.staging_for(target)?;
        TempFile::create_in(dir.as_deref(), target)
    }

    /// Adds a file started with [`Batch::start`] to the batch; `result` is
    /// the outcome of writing it (on an error the file is removed and the
    /// error returned).
    pub fn finish(&mut self, f: TempFile, result: io::Result<()>) -> io::Result<()> {
        let TempFile { out, tmp, target } = f;
        let closed = result.and_then(|()| out.into_inner().map_err(|e| e.into_error()));
        match closed {
            Ok(file) => {
                let dev = file.metadata()?.dev();
                if !self.filesystems.iter().any(|(d, _)| *d == dev) {
                    let dir = tmp.parent().unwrap_or(Path::new(".")).to_path_buf();
                    self.filesystems.push((dev, dir));
                }
                drop(file);
                self.pending.push((tmp, target));
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Makes every temporary file durable (one `syncfs` per file system)
    /// and renames each over its target. Returns the number of files
    /// published. A failed rename is reported after the others are done.
    pub fn commit(mut self) -> io::Result<usize> {
        if self.durable {
            if self.pending.len() <= FEW {
                // A few files: syncing them alone is cheaper than flushing
                // everything else dirty on the file system.
                for (tmp, _) in &self.pending {
                    File::open(tmp)?.sync_data()?;
                }
            } else {
                for (_, dir) in &self.filesystems {
                    syncfs(dir)?;
                }
            }
        }
        let mut first_error = None;
        for dir in std::mem::take(&mut self.dirs) {
            if let Err(e) = ensure_dir(&dir) {
                // The pages inside fail to rename and are reported below.
                first_error.get_or_insert(e);
            }
        }
        let pending = std::mem::take(&mut self.pending);
        let (done, error) = rename_all(&pending);
        if let Some(e) = error {
            first_error.get_or_insert(e);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        for (tmp, _) in &self.pending {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// Threads that rename a big batch's files at once. Renaming over an old
/// page frees its inode and blocks; on ext4 without a journal, mounted
/// with `discard` (this machine's root), that waits for the disk to
/// discard each block, and one thread renaming 1,000 changed pages spent
/// three quarters of its time waiting. Several in flight overlap those
/// waits; on a journaled file system the renames are CPU work, which a
/// Pi's four cores share out as well.
const RENAMERS: usize = 4;

/// Below this many files a batch renames them on the calling thread.
const RENAMES_PER_THREAD: usize = 128;

/// Renames every `(temporary, target)`; the returned count is of files
/// published, the error the first failure (its temporary is removed).
fn rename_all(pending: &[(PathBuf, PathBuf)]) -> (usize, Option<io::Error>) {
    let threads = (pending.len() / RENAMES_PER_THREAD).clamp(1, RENAMERS);
    if threads == 1 {
        return rename_each(pending);
    }
    let share = pending.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let mut running = Vec::new();
        let mut done = 0;
        let mut first_error = None;
        for part in pending.chunks(share) {
            let spawned = std::thread::Builder::new()
                .name("web-rename".into())
                .stack_size(64 * 1024)
                .spawn_scoped(scope, || rename_each(part));
            match spawned {
                Ok(handle) => running.push(handle),
                // No thread to be had: this one does that part.
                Err(_) => {
                    let (n, e) = rename_each(part);
                    done += n;
                    first_error = first_error.or(e);
                }
            }
        }
        for handle in running {
            match handle.join() {
                Ok((n, e)) => {
                    done += n;
                    first_error = first_error.or(e);
                }
                Err(_) => {
                    first_error =
                        first_error.or(Some(io::Error::other("a rename thread panicked")));
                }
            }
        }
        (done, first_error)
    })
}

/// [`rename_all`] on the calling thread.
fn rename_each(pending: &[(PathBuf, PathBuf)]) -> (usize, Option<io::Error>) {
    let mut done = 0;
    let mut first_error = None;
    for (tmp, target) in pending {
        match fs::rename(tmp, target) {
            Ok(()) => done += 1,
            Err(e) => {
                let _ = fs::remove_file(tmp);
                first_error.get_or_insert(io::Error::new(
                    e.kind(),
                    format!("cannot rename over {}: {e}", target.display()),
                ));
            }
        }
    }
    (done, first_error)
}

/// Whether `target` is a regular file of mode 0644 whose bytes are exactly
/// `contents`, except perhaps in the byte range `ignore`. Anything
/// unexpected (a symlink, another mode, a read error) answers no, so the
/// page is written as usual.
fn already_holds(target: &Path, contents: &[u8], ignore: Range<usize>) -> bool {
    let Some(mut file) = open_for_compare(target) else {
        return false;
    };
    let Ok(meta) = file.metadata() else {
        return false;
    };
    if !meta.file_type().is_file()
        || meta.len() != contents.len() as u64
        || meta.permissions().mode() & 0o7777 != MODE
    {
        return false;
    }
    // Pages are small and this one is already in memory: one more copy
    // for the comparison is fine.
    let mut old = vec![0; contents.len()];
    if file.read_exact(&mut old).is_err() {
        return false;
    }
    let end = ignore.end.min(contents.len());
    let start = ignore.start.min(end);
    old[..start] == contents[..start] && old[end..] == contents[end..]
}

/// Opens a page to compare it: never through a symlink (a page must be a
/// file of its own), and without updating its access time where we may
/// (we own our pages): with `relatime`, the first read of each page after
/// it was written would otherwise dirty its inode, which made the compare
/// pass of a full rewrite a write pass too.
fn open_for_compare(target: &Path) -> Option<File> {
    static NOATIME_DENIED: AtomicBool = AtomicBool::new(false);
    let open = |extra: i32| {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | extra)
            .open(target)
    };
    if !NOATIME_DENIED.load(Ordering::Relaxed) {
        match open(libc::O_NOATIME) {
            // O_NOATIME is for the file's owner only.
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
                NOATIME_DENIED.store(true, Ordering::Relaxed);
            }
            other => return other.ok(),
        }
    }
    open(0).ok()
}

/// Flushes the file system holding `dir` to stable storage.
fn syncfs(dir: &Path) -> io::Result<()> {
    let d = File::open(dir)?;
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs takes a valid open descriptor, which `d` owns.
    if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes sure `path` is a real directory: creates it, and replaces a
/// symlink standing where it must be (a package directory that used to be
/// an alias). Its parent must exist. Anything else in the way is an error.
pub fn ensure_dir(path: &Path) -> io::Result<()> {
    // Nearly always there already: one lstat settles it.
    if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    for _ in 0..5 {
        match fs::create_dir(path) {
            Ok(()) => {
                if umask_restricts() {
                    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
                }
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let meta = fs::symlink_metadata(path)?;
                if meta.file_type().is_symlink() {
                    // Someone may race us to it: loop and look again.
                    match fs::remove_file(path) {
                        Ok(()) => continue,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(e),
                    }
                } else if meta.is_dir() {
                    return Ok(());
                } else {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("{} exists and is not a directory", path.display()),
                    ));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "{} keeps changing under us",
        path.display()
    )))
}

/// Whether `name` can be used as one path component under the output
/// path: not empty, not `.` or `..`, no `/` and no NUL. Package names come
/// from PyPI and the database; this is what stops one from escaping the
/// output directory.
pub fn safe_component(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.as_bytes().iter().any(|&b| b == b'/' || b == 0)
        && name.len() <= 255
}

/// Removes `path` if it exists; true when something was removed.
pub fn remove_if_exists(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes temporary files a crashed writer left in `dir` (ours are named
/// `.piw-<pid>-<n>.tmp`; only those of other, dead processes are removed).
pub fn remove_stale_temps(dir: &Path) -> io::Result<usize> {
    let mut n = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.as_bytes();
        let Some(rest) = name
            .strip_prefix(b".piw-")
            .and_then(|r| r.strip_suffix(b".tmp"))
        else {
            continue;
        };
        let pid = rest
            .split(|&b| b == b'-')
            .next()
            .and_then(|p| std::str::from_utf8(p).ok())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                remove_if_exists(&entry.path())?;
                n += 1;
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("piw-writer-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_batch_publishes_on_commit_only() {
        let d = scratch("commit");
        let target = d.join("page.html");
        fs::write(&target, "old").unwrap();
        let mut b = Batch::new();
        b.write(&target, b"new").unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "old");
        assert_eq!(b.commit().unwrap(), 1);
        assert_eq!(fs::read_to_string(&target).unwrap(), "new");
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1, "no temporary left");
    }

    #[test]
    fn an_unchanged_page_is_left_alone() {
        use std::os::unix::fs::MetadataExt;
        let d = scratch("same");
        let target = d.join("page.html");
        let mut b = Batch::new();
        b.write(&target, b"same bytes").unwrap();
        b.commit().unwrap();
        let ino = fs::metadata(&target).unwrap().ino();
        let mut b = Batch::new();
        b.write(&target, b"same bytes").unwrap();
        assert_eq!((b.len(), b.unchanged()), (0, 1));
        b.commit().unwrap();
        assert_eq!(fs::metadata(&target).unwrap().ino(), ino, "not replaced");
        // Same size, other bytes: written.
        let mut b = Batch::new();
        b.write(&target, b"SAME BYTES").unwrap();
        assert_eq!((b.len(), b.unchanged()), (1, 0));
        b.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"SAME BYTES");
        // A symlink holding the same bytes is replaced by a real file.
        fs::write(d.join("real"), b"link bytes").unwrap();
        std::os::unix::fs::symlink("real", d.join("link")).unwrap();
        let mut b = Batch::new();
        b.write(&d.join("link"), b"link bytes").unwrap();
        assert_eq!(b.len(), 1);
        b.commit().unwrap();
        assert!(fs::symlink_metadata(d.join("link")).unwrap().is_file());
        // Only the stamp differs: left alone; more than the stamp: written.
        let mut b = Batch::new();
        b.write_stamped(&target, b"SAME 99999", 5..10).unwrap();
        assert_eq!((b.len(), b.unchanged()), (0, 1));
        b.write_stamped(&target, b"SAMX 99999", 5..10).unwrap();
        assert_eq!((b.len(), b.unchanged()), (1, 1));
        b.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"SAMX 99999");
    }

    #[test]
    fn a_staged_batch_makes_its_directories_and_renames_at_commit() {
        let d = scratch("staged");
        fs::create_dir(d.join("project")).unwrap();
        let pkg = d.join("project/pkg");
        let json = pkg.join("json");
        let mut b = Batch::new().staged(&d);
        b.ensure_dir(&pkg).unwrap();
        b.ensure_dir(&json).unwrap();
        b.write(&pkg.join("index.html"), b"page").unwrap();
        b.write(&json.join("index.json"), b"{}").unwrap();
        // Nothing visible yet: no directory, the temporaries are staged.
        assert!(!pkg.exists());
        let staging = d.join("project").join(STAGING);
        assert_eq!(fs::read_dir(&staging).unwrap().count(), 2);
        assert_eq!(b.commit().unwrap(), 2);
        assert_eq!(fs::read(pkg.join("index.html")).unwrap(), b"page");
        assert_eq!(fs::read(json.join("index.json")).unwrap(), b"{}");
        assert_eq!(fs::read_dir(&staging).unwrap().count(), 0);
        // A page whose directory exists is written next to its target.
        let mut b = Batch::new().staged(&d);
        b.ensure_dir(&pkg).unwrap();
        b.write(&pkg.join("index.html"), b"page 2").unwrap();
        assert_eq!(fs::read_dir(&staging).unwrap().count(), 0);
        assert_eq!(fs::read_dir(&pkg).unwrap().count(), 3);
        b.commit().unwrap();
        assert_eq!(fs::read(pkg.join("index.html")).unwrap(), b"page 2");
        // A file directly under the root has no staging directory.
        let mut b = Batch::new().staged(&d);
        b.write(&d.join("top.html"), b"top").unwrap();
        b.commit().unwrap();
        assert_eq!(fs::read(d.join("top.html")).unwrap(), b"top");
        // Dropped: nothing made, nothing left.
        let mut b = Batch::new().staged(&d);
        b.ensure_dir(&d.join("project/other")).unwrap();
        b.write(&d.join("project/other/index.html"), b"x").unwrap();
        drop(b);
        assert!(!d.join("project/other").exists());
        assert_eq!(fs::read_dir(&staging).unwrap().count(), 0);
        // A symlink where a directory must be is replaced at once.
        fs::create_dir(d.join("project/real")).unwrap();
        std::os::unix::fs::symlink("real", d.join("project/alias")).unwrap();
        let mut b = Batch::new().staged(&d);
        b.ensure_dir(&d.join("project/alias")).unwrap();
        assert!(d.join("project/alias").symlink_metadata().unwrap().is_dir());
    }

    #[test]
    fn a_big_batch_renames_on_several_threads_and_reports_a_failure() {
        let d = scratch("many");
        let n = RENAMERS * RENAMES_PER_THREAD + 7;
        let mut b = Batch::new();
        for i in 0..n {
            let target = d.join(format!("page-{i}"));
            if i % 100 == 0 {
                fs::write(&target, "old").unwrap();
            }
            b.write(&target, format!("new {i}").as_bytes()).unwrap();
        }
        // A directory with something in it cannot be renamed over.
        let blocked = d.join("page-333");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("inside"), "x").unwrap();
        let err = b.commit().unwrap_err();
        assert!(err.to_string().contains("page-333"), "{err}");
        for i in (0..n).filter(|&i| i != 333) {
            let page = fs::read_to_string(d.join(format!("page-{i}"))).unwrap();
            assert_eq!(page, format!("new {i}"));
        }
        let names: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), n, "no temporary left: {names:?}");
    }

    #[test]
    fn a_dropped_batch_leaves_nothing() {
        let d = scratch("drop");
        let mut b = Batch::new();
        b.write(&d.join("a"), b"x").unwrap();
        let mut f = b.start(&d.join("b")).unwrap();
        f.write_all(b"y").unwrap();
        b.finish(f, Ok(())).unwrap();
        drop(b);
        assert_eq!(fs::read_dir(&d).unwrap().count(), 0);
    }

    #[test]
    fn ensure_dir_replaces_a_symlink() {
        let d = scratch("dir");
        fs::create_dir(d.join("real")).unwrap();
        std::os::unix::fs::symlink("real", d.join("alias")).unwrap();
        ensure_dir(&d.join("alias")).unwrap();
        assert!(fs::symlink_metadata(d.join("alias")).unwrap().is_dir());
        ensure_dir(&d.join("alias")).unwrap();
        fs::write(d.join("file"), "x").unwrap();
        assert!(ensure_dir(&d.join("file")).is_err());
    }

    #[test]
    fn unsafe_components_are_refused() {
        for bad in ["", ".", "..", "a/b", "/", "a\0b"] {
            assert!(!safe_component(bad), "{bad:?}");
        }
        for good in ["numpy", "a<b>", "..a", "Foo_Bar.baz", "x y"] {
            assert!(safe_component(good), "{good:?}");
        }
    }

    #[test]
    fn stale_temps_of_dead_processes_go() {
        let d = scratch("stale");
        fs::write(d.join(".piw-999999999-3.tmp"), "x").unwrap();
        let mine = d.join(format!(".piw-{}-1.tmp", std::process::id()));
        fs::write(&mine, "x").unwrap();
        fs::write(d.join("keep.tmp"), "x").unwrap();
        assert_eq!(remove_stale_temps(&d).unwrap(), 1);
        assert!(mine.exists());
    }
}
