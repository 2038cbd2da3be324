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

/// A file being written: where it is written, the buffered handle, and
/// the target it is renamed to at commit (None for a file written at its
/// own name inside a directory the batch is building).
pub struct TempFile {
    out: BufWriter<File>,
    tmp: PathBuf,
    target: Option<PathBuf>,
}

impl TempFile {
    /// Creates the temporary file for `target` (whose directory must exist).
    pub fn create(target: &Path) -> io::Result<TempFile> {
        TempFile::open(temp_name(target), Some(target.to_path_buf()))
    }

    /// Creates `path`, which becomes `target` at commit; with no target,
    /// `path` is in a directory nobody else sees yet, so it may already
    /// exist (a page written twice in one batch) and is truncated.
    fn open(path: PathBuf, target: Option<PathBuf>) -> io::Result<TempFile> {
        let mut options = OpenOptions::new();
        options.write(true).mode(MODE);
        if target.is_some() {
            options.create_new(true);
        } else {
            options.create(true).truncate(true);
        }
        let file = options.open(&path)?;
        // A umask stricter than 022 takes bits away; pages must be
        // world-readable.
        if umask_restricts() {
            file.set_permissions(fs::Permissions::from_mode(MODE))?;
        }
        Ok(TempFile {
            out: BufWriter::with_capacity(64 * 1024, file),
            tmp: path,
            target,
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
/// and directories and leaves every target as it was.
pub struct Batch {
    /// (temporary, target), in the order written.
    pending: Vec<(PathBuf, PathBuf)>,
    /// Files in the batch: those in `pending` and those written at their
    /// own names inside `new_dirs`.
    files: usize,
    /// One directory per file system the temporary files are on.
    filesystems: Vec<(u64, PathBuf)>,
    /// Whether to sync before renaming (off only in benchmarks comparing
    /// the cost).
    durable: bool,
    /// Pages skipped by [`Batch::write`] because they were up to date.
    unchanged: usize,
    /// Whether missing directories are built under a temporary name and
    /// renamed into place at commit (see [`Batch::staged`]).
    staged: bool,
    /// (temporary, target) of the directories being built.
    new_dirs: Vec<(PathBuf, PathBuf)>,
}

impl Default for Batch {
    fn default() -> Self {
        Batch::new()
    }
}

/// How many of the latest directories a staged batch looks through for
/// the one a path is in: a package's pages are written right after its
/// directories are ensured (up to 2 + the number of ABI views of them).
const RECENT_DIRS: usize = 16;

impl Batch {
    /// An empty, durable batch.
    pub fn new() -> Batch {
        Batch {
            pending: Vec::new(),
            files: 0,
            filesystems: Vec::new(),
            durable: true,
            unchanged: 0,
            staged: false,
            new_dirs: Vec::new(),
        }
    }

    /// A batch for many pages, of which many may be new (a full rewrite
    /// of a site written for the first time): a missing directory is
    /// made under a temporary name next to where it belongs, its pages are
    /// written in it at their own names, and the whole directory is
    /// renamed into place at commit, after the sync. That is one rename a
    /// directory instead of one a page, and within one parent (measured
    /// at 100,000 new packages: the committing thread's system time fell
    /// from 36 s to 14 s against staging each page's temporary file
    /// elsewhere and moving it in). Readers see no directory or a
    /// complete one; after a crash, the temporary directory is left, and
    /// [`remove_stale_temps`] takes it away.
    ///
    /// Pages must be written into a new directory soon after it is
    /// ensured: only the latest [`RECENT_DIRS`] are looked through, and a
    /// page for an older one fails (its directory is not there yet).
    pub fn staged(mut self) -> Batch {
        self.staged = true;
        self
    }

    /// Makes sure `path` will be a directory when the batch is committed:
    /// at once (see [`ensure_dir`]) for a plain batch or when something
    /// other than a directory is in the way; as a new directory of the
    /// batch when it is missing from a staged batch. Its parent must
    /// exist or be one of the batch's new directories.
    pub fn ensure_dir(&mut self, path: &Path) -> io::Result<()> {
        if !self.staged {
            return ensure_dir(path);
        }
        if let Some(inside) = self.building(path) {
            return make_dir(&inside);
        }
        match fs::symlink_metadata(path) {
            Ok(m) if m.is_dir() => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let tmp = temp_name(path);
                make_dir(&tmp)?;
                self.new_dirs.push((tmp, path.to_path_buf()));
                Ok(())
            }
            _ => ensure_dir(path),
        }
    }

    /// Where `path` is while it is, or is inside, one of the directories
    /// the batch is building; None when it is not.
    fn building(&self, path: &Path) -> Option<PathBuf> {
        self.new_dirs
            .iter()
            .rev()
            .take(RECENT_DIRS)
            .find_map(|(tmp, target)| {
                let rest = path.strip_prefix(target).ok()?;
                Some(if rest.as_os_str().is_empty() {
                    tmp.clone()
                } else {
                    tmp.join(rest)
                })
            })
    }

    /// A batch that renames without syncing first (for measurements).
    pub fn volatile() -> Batch {
        let mut b = Batch::new();
        b.durable = false;
        b
    }

    /// Number of files waiting.
    pub fn len(&self) -> usize {
        self.files
    }

    /// Number of pages [`Batch::write`] left alone because the file on
    /// disk already held the same bytes.
    pub fn unchanged(&self) -> usize {
        self.unchanged
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.files == 0 && self.new_dirs.is_empty()
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
        let inside = self.inside_new_dir(target);
        // A page in a directory being built has nothing to compare with.
        if inside.is_none() && already_holds(target, contents, stamp) {
            self.unchanged += 1;
            return Ok(());
        }
        let mut f = open_for(target, inside)?;
        let written = f.write_all(contents);
        self.finish(f, written)
    }

    /// Starts a file written piece by piece (large pages, gzip streams);
    /// hand it back with [`Batch::finish`].
    pub fn start(&mut self, target: &Path) -> io::Result<TempFile> {
        open_for(target, self.inside_new_dir(target))
    }

    /// Where `target` is written when its directory is one the batch is
    /// building.
    fn inside_new_dir(&self, target: &Path) -> Option<PathBuf> {
        let dir = self.building(target.parent()?)?;
        Some(dir.join(target.file_name()?))
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
                self.files += 1;
                if let Some(target) = target {
                    self.pending.push((tmp, target));
                }
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Makes every temporary file durable (one `syncfs` per file system),
    /// renames each new directory into place and each file over its
    /// target. Returns the number of files published. A failed rename is
    /// reported after the others are done.
    pub fn commit(mut self) -> io::Result<usize> {
        if self.durable {
            if self.files <= FEW && self.new_dirs.is_empty() {
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
        // A directory built inside another is moved with it: only
        // outermost ones are listed, and none is inside another's target.
        for (tmp, target) in std::mem::take(&mut self.new_dirs) {
            if let Err(e) = fs::rename(&tmp, &target) {
                let _ = fs::remove_dir_all(&tmp);
                first_error.get_or_insert(io::Error::new(
                    e.kind(),
                    format!("cannot move {} into place: {e}", target.display()),
                ));
            }
        }
        let pending = std::mem::take(&mut self.pending);
        if let Some(e) = rename_all(&pending) {
            first_error.get_or_insert(e);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(self.files),
        }
    }
}

/// The file that becomes `target`: a temporary one next to it, or
/// `inside` (its place in a directory being built).
fn open_for(target: &Path, inside: Option<PathBuf>) -> io::Result<TempFile> {
    match inside {
        Some(path) => TempFile::open(path, None),
        None => TempFile::create(target),
    }
}

/// Creates the directory `path` with mode 0755, whatever the umask.
fn create_dir_0755(path: &Path) -> io::Result<()> {
    fs::create_dir(path)?;
    if umask_restricts() {
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// Makes `path`, a directory of ours; one that is there already is fine.
fn make_dir(path: &Path) -> io::Result<()> {
    match create_dir_0755(path) {
        Err(e)
            if e.kind() == io::ErrorKind::AlreadyExists
                && fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) =>
        {
            Ok(())
        }
        other => other,
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        for (tmp, _) in &self.pending {
            let _ = fs::remove_file(tmp);
        }
        for (tmp, _) in &self.new_dirs {
            let _ = fs::remove_dir_all(tmp);
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

/// Renames every `(temporary, target)`; the error is the first failure
/// (its temporary is removed, the others are renamed all the same).
fn rename_all(pending: &[(PathBuf, PathBuf)]) -> Option<io::Error> {
    let threads = (pending.len() / RENAMES_PER_THREAD).clamp(1, RENAMERS);
    if threads == 1 {
        return rename_each(pending);
    }
    let share = pending.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let mut running = Vec::new();
        let mut first_error = None;
        for part in pending.chunks(share) {
            let spawned = std::thread::Builder::new()
                .name("web-rename".into())
                .stack_size(64 * 1024)
                .spawn_scoped(scope, || rename_each(part));
            match spawned {
                Ok(handle) => running.push(handle),
                // No thread to be had: this one does that part.
                Err(_) => first_error = first_error.or(rename_each(part)),
            }
        }
        for handle in running {
            let failed = handle
                .join()
                .unwrap_or_else(|_| Some(io::Error::other("a rename thread panicked")));
            first_error = first_error.or(failed);
        }
        first_error
    })
}

/// [`rename_all`] on the calling thread.
fn rename_each(pending: &[(PathBuf, PathBuf)]) -> Option<io::Error> {
    let mut first_error = None;
    for (tmp, target) in pending {
        if let Err(e) = fs::rename(tmp, target) {
            let _ = fs::remove_file(tmp);
            first_error.get_or_insert(io::Error::new(
                e.kind(),
                format!("cannot rename over {}: {e}", target.display()),
            ));
        }
    }
    first_error
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
        match create_dir_0755(path) {
            Ok(()) => return Ok(()),
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

/// Removes temporary files and directories a crashed writer left in `dir`
/// (ours are named `.piw-<pid>-<n>.tmp`; only those of other, dead
/// processes are removed).
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
                // A directory is one a staged batch was building.
                if entry.file_type()?.is_dir() {
                    fs::remove_dir_all(entry.path())?;
                } else {
                    remove_if_exists(&entry.path())?;
                }
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
    fn a_staged_batch_builds_new_directories_and_moves_them_in_at_commit() {
        let d = scratch("staged");
        let project = d.join("project");
        fs::create_dir(&project).unwrap();
        let pkg = project.join("pkg");
        let json = pkg.join("json");
        let names = |dir: &Path| -> Vec<String> {
            let mut v: Vec<String> = fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        let mut b = Batch::new().staged();
        b.ensure_dir(&pkg).unwrap();
        b.ensure_dir(&json).unwrap();
        b.write(&pkg.join("index.html"), b"page").unwrap();
        b.write(&json.join("index.json"), b"{}").unwrap();
        // Written twice in one batch: the last one counts.
        b.write(&json.join("index.json"), b"{\"v\": 2}").unwrap();
        // Nothing visible yet: one hidden directory holds the pages.
        assert!(!pkg.exists());
        let hidden = names(&project);
        assert_eq!(hidden.len(), 1);
        assert!(hidden[0].starts_with(".piw-") && hidden[0].ends_with(".tmp"));
        assert_eq!(names(&project.join(&hidden[0])), ["index.html", "json"]);
        assert_eq!(b.commit().unwrap(), 3);
        assert_eq!(names(&project), ["pkg"]);
        assert_eq!(fs::read(pkg.join("index.html")).unwrap(), b"page");
        assert_eq!(fs::read(json.join("index.json")).unwrap(), b"{\"v\": 2}");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&pkg), mode(&json)), (0o755, 0o755));
        assert_eq!(mode(&pkg.join("index.html")), 0o644);
        // A page whose directory exists is written next to its target, a
        // missing directory inside an existing one is built beside it.
        fs::remove_dir_all(&json).unwrap();
        let mut b = Batch::new().staged();
        b.ensure_dir(&pkg).unwrap();
        b.ensure_dir(&json).unwrap();
        b.write(&pkg.join("index.html"), b"page 2").unwrap();
        b.write(&json.join("index.json"), b"[]").unwrap();
        assert_eq!(names(&pkg).len(), 3, "{:?}", names(&pkg));
        assert_eq!(b.commit().unwrap(), 2);
        assert_eq!(names(&pkg), ["index.html", "json"]);
        assert_eq!(fs::read(pkg.join("index.html")).unwrap(), b"page 2");
        assert_eq!(fs::read(json.join("index.json")).unwrap(), b"[]");
        // Dropped: nothing made, nothing left.
        let mut b = Batch::new().staged();
        b.ensure_dir(&project.join("other")).unwrap();
        b.write(&project.join("other/index.html"), b"x").unwrap();
        drop(b);
        assert_eq!(names(&project), ["pkg"]);
        // Something took the place meanwhile: reported, the rest lands.
        let mut b = Batch::new().staged();
        for name in ["taken", "free"] {
            b.ensure_dir(&project.join(name)).unwrap();
            b.write(&project.join(name).join("index.html"), b"x")
                .unwrap();
        }
        fs::create_dir(project.join("taken")).unwrap();
        fs::write(project.join("taken/mine"), "not yours").unwrap();
        let err = b.commit().unwrap_err();
        assert!(err.to_string().contains("taken"), "{err}");
        assert_eq!(names(&project), ["free", "pkg", "taken"]);
        assert_eq!(names(&project.join("taken")), ["mine"]);
        // A symlink where a directory must be is replaced at once.
        fs::create_dir(project.join("real")).unwrap();
        std::os::unix::fs::symlink("real", project.join("alias")).unwrap();
        let mut b = Batch::new().staged();
        b.ensure_dir(&project.join("alias")).unwrap();
        assert!(project.join("alias").symlink_metadata().unwrap().is_dir());
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
        fs::create_dir_all(d.join(".piw-999999999-4.tmp/json")).unwrap();
        fs::write(d.join(".piw-999999999-4.tmp/json/index.json"), "{}").unwrap();
        let mine = d.join(format!(".piw-{}-1.tmp", std::process::id()));
        fs::write(&mine, "x").unwrap();
        fs::write(d.join("keep.tmp"), "x").unwrap();
        assert_eq!(remove_stale_temps(&d).unwrap(), 2);
        assert!(mine.exists());
        assert_eq!(fs::read_dir(&d).unwrap().count(), 2);
    }
}
