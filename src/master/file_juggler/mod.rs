//! file_juggler: receives wheels from build slaves (and piw-import) over
//! the file queue and puts them under `<output>/simple/<package>/`.
//!
//! The flow (piwheels' EXPECT / HELLO / FETCH / CHUNK / DONE / VERIFY):
//! 1. The slave driver (or mr_chase) calls [`FileJuggler::expect`] before it
//!    tells a slave to `SEND` a file: a pre-sized temp file is created and
//!    the transfer waits, keyed by slave id.
//! 2. The slave opens a fresh DEALER and says `HELLO <id>`; the waiting
//!    transfer becomes active under that socket identity and the juggler
//!    FETCHes chunks ([`transfer::Transfer`] decides which).
//! 3. When every byte is in, `DONE` goes to the slave, which then says
//!    `SENT` on the slave queue, and the driver calls
//!    [`FileJuggler::verify`]: size and SHA-256 are checked and the file is
//!    renamed into place (0644, with the armv6l symlink for armv7l wheels),
//!    or deleted.
//!
//! Nothing a peer sends can write outside `<output>/simple`: file names are
//! checked to be plain wheel names before anything is created, package
//! directories are checked too, and chunks are accepted only where they were
//! asked for. A transfer whose slave goes away is dropped with its temp file
//! ([`FileJuggler::abandon`]), and temp files left by a crash are removed at
//! start-up.

pub mod transfer;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::logging::target;
use crate::protocol::FileState;
use crate::protocol::file::{MasterFrame, PeerFrame};
pub use crate::wheel::hex;
use transfer::{ChunkOutcome, Transfer};

/// Prefix of our temp files in `simple/`; a dot keeps web servers from
/// listing them and marks them ours to clean up.
const TEMP_PREFIX: &str = ".piw-incoming-";

/// The largest wheel we accept: what the database's `files.filesize`
/// (a 32-bit INTEGER, as in piwheels) can hold. The biggest wheels on PyPI
/// are around a gigabyte; a claim beyond this is a lie or a mistake, and
/// accepting it would let one slave fill the disk.
pub const MAX_FILE_SIZE: u64 = i32::MAX as u64;

/// Why a file cannot be expected.
#[derive(Debug)]
pub enum ExpectError {
    /// The name is not a plain wheel file name (or the package not a plain
    /// directory name): a hostile or broken peer.
    BadName(String),
    /// The claimed size is beyond [`MAX_FILE_SIZE`].
    TooBig(u64),
    /// The temp file could not be created (disk full, permissions).
    Storage(io::Error),
}

impl std::fmt::Display for ExpectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectError::BadName(why) => write!(f, "refused file name: {why}"),
            ExpectError::TooBig(n) => {
                write!(f, "refused file of {n} bytes (limit {MAX_FILE_SIZE})")
            }
            ExpectError::Storage(e) => write!(f, "cannot store the file: {e}"),
        }
    }
}

/// Why a transfer did not verify.
#[derive(Debug)]
pub enum VerifyError {
    /// No finished transfer for this slave (it never sent, or not all of it).
    NotReceived,
    /// The bytes are not what the slave announced.
    Mismatch(String),
    /// Our side failed: writing, reading back or renaming (disk full...).
    Storage(io::Error),
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyError::NotReceived => f.write_str("no complete transfer to verify"),
            VerifyError::Mismatch(why) => write!(f, "transfer does not match: {why}"),
            VerifyError::Storage(e) => write!(f, "storage failed: {e}"),
        }
    }
}

/// A file on its way in.
#[derive(Debug)]
struct Incoming {
    slave_id: u64,
    file: FileState,
    temp: PathBuf,
    handle: File,
    transfer: Transfer,
    /// A write failed; the transfer is finished early and will not verify.
    storage_error: Option<io::Error>,
}

impl Incoming {
    fn discard(self) {
        drop(self.handle);
        if let Err(e) = fs::remove_file(&self.temp) {
            if e.kind() != io::ErrorKind::NotFound {
                log::warn!(target: target::FILE_JUGGLER, "cannot remove {}: {e}", self.temp.display());
            }
        }
    }
}

/// Frames to send to one peer of the file queue.
pub type Outgoing = (Vec<u8>, Vec<MasterFrame>);

/// The file juggler's state: transfers waiting for their peer, running, and
/// finished awaiting VERIFY.
#[derive(Debug)]
pub struct FileJuggler {
    output: PathBuf,
    simple: PathBuf,
    pending: HashMap<u64, Incoming>,
    active: HashMap<Vec<u8>, Incoming>,
    complete: HashMap<u64, Incoming>,
    temp_counter: u64,
}

impl FileJuggler {
    /// Prepares `<output>/simple` and removes temp files a previous run left.
    pub fn new(output: &Path) -> io::Result<FileJuggler> {
        let simple = output.join("simple");
        mkdir_override_symlink(&simple)?;
        let mut removed = 0;
        for entry in fs::read_dir(&simple)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        if removed > 0 {
            log::warn!(
                target: target::FILE_JUGGLER,
                "removed {removed} unfinished transfer(s) left by the last run"
            );
        }
        Ok(FileJuggler {
            output: output.to_path_buf(),
            simple,
            pending: HashMap::new(),
            active: HashMap::new(),
            complete: HashMap::new(),
            temp_counter: 0,
        })
    }

    /// The output path (the file system big_brother reports on).
    pub fn output(&self) -> &Path {
        &self.output
    }

    /// Number of transfers in any state (for tests and stats).
    pub fn transfers(&self) -> usize {
        self.pending.len() + self.active.len() + self.complete.len()
    }

    /// Expects `file` from `slave_id` (piwheels' EXPECT). A second expect for
    /// the same slave replaces the first, as in piwheels.
    pub fn expect(&mut self, slave_id: u64, file: &FileState) -> Result<(), ExpectError> {
        check_wheel_name(&file.filename).map_err(ExpectError::BadName)?;
        if file.filesize > MAX_FILE_SIZE {
            return Err(ExpectError::TooBig(file.filesize));
        }
        self.abandon(slave_id);
        self.temp_counter += 1;
        let temp = self.simple.join(format!(
            "{TEMP_PREFIX}{slave_id}-{}-{}",
            std::process::id(),
            self.temp_counter
        ));
        let handle = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(ExpectError::Storage)?;
        if let Err(e) = handle.set_len(file.filesize) {
            drop(handle);
            let _ = fs::remove_file(&temp);
            return Err(ExpectError::Storage(e));
        }
        log::debug!(
            target: target::FILE_JUGGLER,
            "expecting {} ({} bytes) from slave {slave_id}",
            file.filename,
            file.filesize
        );
        self.pending.insert(
            slave_id,
            Incoming {
                slave_id,
                file: file.clone(),
                temp,
                handle,
                transfer: Transfer::new(file.filesize),
                storage_error: None,
            },
        );
        Ok(())
    }

    /// Handles one message from the file queue: `identity` and the frames
    /// after it. Returns the frames to send back to that identity (possibly
    /// none). Bad frames are logged and ignored, as piwheels does.
    pub fn on_frames(&mut self, identity: &[u8], frames: &[Vec<u8>]) -> Vec<MasterFrame> {
        let frame = match crate::protocol::file::parse_peer_frames(frames) {
            Ok(f) => f,
            Err(e) => {
                log::error!(target: target::FILE_JUGGLER, "invalid file-queue message: {e:?}");
                return Vec::new();
            }
        };
        match frame {
            PeerFrame::Hello { slave_id } => self.on_hello(identity, slave_id),
            PeerFrame::Chunk { offset, data } => self.on_chunk(identity, offset, data),
        }
    }

    fn on_hello(&mut self, identity: &[u8], slave_id: u64) -> Vec<MasterFrame> {
        if let Some(incoming) = self.active.get_mut(identity) {
            // The peer's nudge: it has heard nothing for a while.
            log::debug!(target: target::FILE_JUGGLER, "slave {slave_id}: transfer nudged");
            incoming.transfer.on_hello();
            return fetches(incoming);
        }
        let Some(mut incoming) = self.pending.remove(&slave_id) else {
            log::warn!(
                target: target::FILE_JUGGLER,
                "slave {slave_id}: HELLO on the file queue but no transfer expected"
            );
            return Vec::new();
        };
        log::info!(
            target: target::FILE_JUGGLER,
            "slave {slave_id}: receiving {}",
            incoming.file.filename
        );
        if incoming.transfer.is_complete() {
            // Zero-length file: nothing to fetch.
            self.complete.insert(slave_id, incoming);
            return vec![MasterFrame::Done];
        }
        let out = fetches(&mut incoming);
        self.active.insert(identity.to_vec(), incoming);
        out
    }

    fn on_chunk(&mut self, identity: &[u8], offset: u64, data: &[u8]) -> Vec<MasterFrame> {
        let Some(incoming) = self.active.get_mut(identity) else {
            // A leftover of an earlier transfer on a reused identity.
            log::debug!(target: target::FILE_JUGGLER, "CHUNK from an unknown peer ignored");
            return Vec::new();
        };
        match incoming.transfer.on_chunk(offset, data.len() as u64) {
            ChunkOutcome::Unexpected => {
                log::debug!(
                    target: target::FILE_JUGGLER,
                    "slave {}: unrequested CHUNK at {offset} ({} bytes) ignored",
                    incoming.slave_id,
                    data.len()
                );
                Vec::new()
            }
            outcome => {
                if incoming.storage_error.is_none() {
                    if let Err(e) = incoming.handle.write_all_at(data, offset) {
                        log::error!(
                            target: target::FILE_JUGGLER,
                            "cannot write {}: {e}",
                            incoming.temp.display()
                        );
                        incoming.storage_error = Some(e);
                    }
                }
                if outcome == ChunkOutcome::Complete || incoming.storage_error.is_some() {
                    // Done (or we cannot go on): tell the peer, wait for VERIFY.
                    let incoming = self.active.remove(identity).expect("looked up above");
                    let slave_id = incoming.slave_id;
                    if let Some(old) = self.complete.insert(slave_id, incoming) {
                        old.discard();
                    }
                    vec![MasterFrame::Done]
                } else {
                    fetches(incoming)
                }
            }
        }
    }

    /// Checks and commits the file `slave_id` finished sending, into
    /// `simple/<package>/` (piwheels' VERIFY). On failure the temp file is
    /// gone and the caller may expect the file again.
    pub fn verify(&mut self, slave_id: u64, package: &str) -> Result<PathBuf, VerifyError> {
        let Some(incoming) = self.complete.remove(&slave_id) else {
            // Anything half-done for this slave is useless now.
            self.abandon(slave_id);
            return Err(VerifyError::NotReceived);
        };
        let result = self.check_and_commit(&incoming, package);
        match &result {
            Ok(_) => drop(incoming.handle),
            Err(_) => incoming.discard(),
        }
        result
    }

    fn check_and_commit(&self, incoming: &Incoming, package: &str) -> Result<PathBuf, VerifyError> {
        if let Some(e) = &incoming.storage_error {
            return Err(VerifyError::Storage(io::Error::new(
                e.kind(),
                e.to_string(),
            )));
        }
        check_dir_name(package).map_err(VerifyError::Mismatch)?;
        let file = &incoming.file;
        let size = incoming
            .handle
            .metadata()
            .map_err(VerifyError::Storage)?
            .len();
        if size != file.filesize {
            return Err(VerifyError::Mismatch(format!(
                "{} is {size} bytes, expected {}",
                file.filename, file.filesize
            )));
        }
        let hash = sha256_of(&incoming.handle).map_err(VerifyError::Storage)?;
        if hash != file.filehash {
            return Err(VerifyError::Mismatch(format!(
                "{} has SHA-256 {hash}, expected {}",
                file.filename, file.filehash
            )));
        }
        // Durable before it becomes visible: a crash must not leave an
        // empty wheel under its real name.
        incoming.handle.sync_data().map_err(VerifyError::Storage)?;
        incoming
            .handle
            .set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(VerifyError::Storage)?;
        let dir = self.simple.join(package);
        mkdir_override_symlink(&dir).map_err(VerifyError::Storage)?;
        let target = dir.join(&file.filename);
        fs::rename(&incoming.temp, &target).map_err(VerifyError::Storage)?;
        if file.platform_tag == "linux_armv7l" {
            if let Some(v6) = armv6l_name(&file.filename) {
                let link = dir.join(&v6);
                if fs::symlink_metadata(&link).is_err() {
                    if let Err(e) = std::os::unix::fs::symlink(&file.filename, &link) {
                        log::warn!(target: target::FILE_JUGGLER, "cannot link {v6}: {e}");
                    }
                }
            }
        }
        write_core_metadata(&target);
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        log::info!(
            target: target::FILE_JUGGLER,
            "verified and stored {}",
            target.display()
        );
        Ok(target)
    }

    /// Drops every transfer of `slave_id` (it went away, or is about to be
    /// asked for the file again), removing the temp files.
    pub fn abandon(&mut self, slave_id: u64) {
        if let Some(i) = self.pending.remove(&slave_id) {
            i.discard();
        }
        if let Some(i) = self.complete.remove(&slave_id) {
            i.discard();
        }
        let ids: Vec<Vec<u8>> = self
            .active
            .iter()
            .filter(|(_, i)| i.slave_id == slave_id)
            .map(|(k, _)| k.clone())
            .collect();
        for id in ids {
            if let Some(i) = self.active.remove(&id) {
                i.discard();
            }
        }
    }

    /// Drops every transfer (shutdown), removing the temp files.
    pub fn clear(&mut self) {
        for (_, i) in self.pending.drain() {
            i.discard();
        }
        for (_, i) in self.active.drain() {
            i.discard();
        }
        for (_, i) in self.complete.drain() {
            i.discard();
        }
    }
}

impl Drop for FileJuggler {
    fn drop(&mut self) {
        self.clear();
    }
}

fn fetches(incoming: &mut Incoming) -> Vec<MasterFrame> {
    std::iter::from_fn(|| incoming.transfer.next_fetch())
        .map(|(offset, length)| MasterFrame::Fetch { offset, length })
        .collect()
}

fn sha256_of(file: &File) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut reader = file;
    use std::io::Seek;
    reader.seek(io::SeekFrom::Start(0))?;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// The armv6l twin of an armv7l wheel name (piwheels: `name[:-16] +
/// "linux_armv6l.whl"`).
pub fn armv6l_name(armv7l: &str) -> Option<String> {
    armv7l
        .strip_suffix("linux_armv7l.whl")
        .map(|stem| format!("{stem}linux_armv6l.whl"))
}

/// Accepts only a plain wheel file name (see [`crate::wheel::validate_filename`]).
pub fn check_wheel_name(name: &str) -> Result<(), String> {
    crate::wheel::validate_filename(name).map_err(|e| format!("{name:?}: {e}"))
}

/// Writes `<wheel>.metadata` beside a stored wheel: its `.dist-info/METADATA`
/// (PEP 658), so pip can resolve without downloading wheels. Best effort: a
/// wheel without readable metadata is still served, just without it.
fn write_core_metadata(wheel: &Path) {
    let name = wheel
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let meta = crate::wheel::WheelName::parse(&name)
        .map_err(|e| e.to_string())
        .and_then(|w| crate::wheel::read_metadata(wheel, &w).map_err(|e| e.to_string()));
    let raw = match meta {
        Ok(m) => m.raw,
        Err(e) => {
            log::warn!(target: target::FILE_JUGGLER, "no core metadata for {name}: {e}");
            return;
        }
    };
    let target = wheel.with_file_name(format!("{name}.metadata"));
    let temp = wheel.with_file_name(format!(".{name}.metadata.tmp"));
    let result = (|| {
        fs::write(&temp, &raw)?;
        fs::set_permissions(&temp, fs::Permissions::from_mode(0o644))?;
        fs::rename(&temp, &target)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&temp);
        log::warn!(target: target::FILE_JUGGLER, "cannot write {}: {e}", target.display());
    }
}

/// A package directory name: one plain path component.
fn check_dir_name(name: &str) -> Result<(), String> {
    // A leading dot also covers "." and "..", and keeps package directories
    // apart from our temporary files (.piw-incoming-*): no PEP 503 name
    // starts with one.
    if name.is_empty() || name.starts_with('.') || name.len() > 255 || name.contains(['/', '\0']) {
        return Err(format!("refused package directory {name:?}"));
    }
    Ok(())
}

/// Creates `dir` (and parents); a symlink standing where the directory
/// must be is replaced by a real directory, as piwheels does.
pub fn mkdir_override_symlink(dir: &Path) -> io::Result<()> {
    for _ in 0..3 {
        match fs::symlink_metadata(dir) {
            Ok(m) if m.file_type().is_symlink() => {
                fs::remove_file(dir)?;
            }
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a directory", dir.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        match fs::create_dir_all(dir) {
            Ok(()) => return Ok(()),
            // Lost a race with someone creating a link; look again.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(format!(
        "{} keeps changing under us",
        dir.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::file::CHUNK_SIZE;

    #[test]
    fn package_directories_with_a_leading_dot_are_refused() {
        // Found by the file_juggler fuzz target: ".piw-incoming-" as a
        // package made a directory that looked like a leaked temp file.
        for bad in ["", ".", "..", ".x", ".piw-incoming-", "a/b", "a\0b"] {
            assert!(check_dir_name(bad).is_err(), "{bad:?}");
        }
        for good in ["foo", "foo-bar", "a.b", "x..y"] {
            assert!(check_dir_name(good).is_ok(), "{good:?}");
        }
    }

    struct Dir(PathBuf);
    impl Dir {
        fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!(
                "piw-juggler-{tag}-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            ));
            fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn file_state(name: &str, content: &[u8]) -> FileState {
        let mut h = Sha256::new();
        h.update(content);
        let platform = name
            .trim_end_matches(".whl")
            .rsplit('-')
            .next()
            .unwrap()
            .to_string();
        FileState {
            filename: name.to_string(),
            filesize: content.len() as u64,
            filehash: hex(&h.finalize()),
            package_tag: "foo".into(),
            package_version_tag: "1.0".into(),
            py_version_tag: "cp311".into(),
            abi_tag: "cp311".into(),
            platform_tag: platform,
            requires_python: None,
            dependencies: vec![],
            location: "/simple".into(),
        }
    }

    /// Plays an honest peer: answers every FETCH from `content` until DONE.
    fn send_all(j: &mut FileJuggler, id: &[u8], slave_id: u64, content: &[u8]) {
        let mut queue = j.on_frames(id, &[b"HELLO".to_vec(), slave_id.to_string().into_bytes()]);
        let mut rounds = 0;
        while let Some(frame) = queue.pop() {
            rounds += 1;
            assert!(rounds < 10_000);
            match frame {
                MasterFrame::Fetch { offset, length } => {
                    let data = &content[offset as usize..(offset + length) as usize];
                    queue.extend(j.on_frames(
                        id,
                        &[
                            b"CHUNK".to_vec(),
                            offset.to_string().into_bytes(),
                            data.to_vec(),
                        ],
                    ));
                }
                MasterFrame::Done => return,
            }
        }
        panic!("no DONE");
    }

    #[test]
    fn a_transfer_lands_in_the_package_directory() {
        let dir = Dir::new("land");
        let mut j = FileJuggler::new(&dir.0).unwrap();
        let content: Vec<u8> = (0..3 * CHUNK_SIZE + 17).map(|i| (i % 251) as u8).collect();
        let fs_ = file_state("foo-1.0-cp311-cp311-linux_armv7l.whl", &content);
        j.expect(1, &fs_).unwrap();
        send_all(&mut j, b"peer1", 1, &content);
        let path = j.verify(1, "foo").unwrap();
        assert_eq!(fs::read(&path).unwrap(), content);
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let v6 = dir
            .0
            .join("simple/foo/foo-1.0-cp311-cp311-linux_armv6l.whl");
        assert_eq!(
            fs::read_link(&v6).unwrap(),
            PathBuf::from("foo-1.0-cp311-cp311-linux_armv7l.whl")
        );
        assert_eq!(fs::read(&v6).unwrap(), content);
        assert_eq!(j.transfers(), 0);
        assert_no_temp_files(&dir.0);
    }

    fn assert_no_temp_files(out: &Path) {
        let left: Vec<_> = fs::read_dir(out.join("simple"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(TEMP_PREFIX))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn a_wrong_hash_or_size_does_not_land() {
        let dir = Dir::new("lie");
        let mut j = FileJuggler::new(&dir.0).unwrap();
        let content = b"not what was announced".to_vec();
        let mut fs_ = file_state("foo-1.0-py3-none-any.whl", &content);
        fs_.filehash = "0".repeat(64);
        j.expect(2, &fs_).unwrap();
        send_all(&mut j, b"peer2", 2, &content);
        assert!(matches!(j.verify(2, "foo"), Err(VerifyError::Mismatch(_))));
        assert!(!dir.0.join("simple/foo/foo-1.0-py3-none-any.whl").exists());
        assert_no_temp_files(&dir.0);
        // Nothing to verify any more.
        assert!(matches!(j.verify(2, "foo"), Err(VerifyError::NotReceived)));
    }

    #[test]
    fn hostile_names_are_refused_before_anything_is_created() {
        let dir = Dir::new("names");
        let mut j = FileJuggler::new(&dir.0).unwrap();
        let long = format!("{}-1.0-py3-none-any.whl", "a".repeat(250));
        for name in [
            "../../etc/passwd",
            "foo-1.0-py3-none-any.whl/../../x.whl",
            "../foo-1.0-py3-none-any.whl",
            "foo-1.0-py3-none-any.tar.gz",
            "foo\0-1.0-py3-none-any.whl",
            ".foo-1.0-py3-none-any.whl",
            "foo.whl",
            "",
            long.as_str(),
            "foo-1.0-py3-none-any .whl",
        ] {
            let fs_ = file_state("foo-1.0-py3-none-any.whl", b"x");
            let fs_ = FileState {
                filename: name.to_string(),
                ..fs_
            };
            assert!(
                matches!(j.expect(3, &fs_), Err(ExpectError::BadName(_))),
                "{name:?}"
            );
        }
        assert_eq!(j.transfers(), 0);
        assert_eq!(fs::read_dir(dir.0.join("simple")).unwrap().count(), 0);
        // A package directory that would escape is refused at verify.
        let fs_ = file_state("foo-1.0-py3-none-any.whl", b"x");
        j.expect(3, &fs_).unwrap();
        send_all(&mut j, b"p3", 3, b"x");
        assert!(j.verify(3, "../escape").is_err());
        assert!(!dir.0.join("escape").exists());
        assert_no_temp_files(&dir.0);
    }

    #[test]
    fn abandoned_and_stale_transfers_leave_no_temp_files() {
        let dir = Dir::new("abandon");
        {
            let mut j = FileJuggler::new(&dir.0).unwrap();
            let content = vec![7u8; (2 * CHUNK_SIZE) as usize];
            j.expect(4, &file_state("foo-1.0-py3-none-any.whl", &content))
                .unwrap();
            // Started, never finished.
            let out = j.on_frames(b"p4", &[b"HELLO".to_vec(), b"4".to_vec()]);
            assert!(!out.is_empty());
            j.abandon(4);
            assert_eq!(j.transfers(), 0);
            assert_no_temp_files(&dir.0);
            // A chunk after abandonment is ignored.
            assert!(
                j.on_frames(b"p4", &[b"CHUNK".to_vec(), b"0".to_vec(), vec![7; 10]])
                    .is_empty()
            );
            // Leave one behind as a crash would.
            j.expect(5, &file_state("foo-1.0-py3-none-any.whl", &content))
                .unwrap();
            std::mem::forget(j);
        }
        let stale = fs::read_dir(dir.0.join("simple")).unwrap().count();
        assert_eq!(stale, 1);
        let _j = FileJuggler::new(&dir.0).unwrap();
        assert_no_temp_files(&dir.0);
    }

    #[test]
    fn zero_length_file_and_garbage_frames() {
        let dir = Dir::new("zero");
        let mut j = FileJuggler::new(&dir.0).unwrap();
        j.expect(6, &file_state("foo-1.0-py3-none-any.whl", b""))
            .unwrap();
        let out = j.on_frames(b"p6", &[b"HELLO".to_vec(), b"6".to_vec()]);
        assert_eq!(out, vec![MasterFrame::Done]);
        assert!(j.verify(6, "foo").is_ok());
        for frames in [
            vec![],
            vec![b"HELLO".to_vec()],
            vec![b"HELLO".to_vec(), b"x".to_vec()],
            vec![b"CHUNK".to_vec(), b"0".to_vec()],
            vec![b"BOGUS".to_vec()],
            vec![b"HELLO".to_vec(), b"99".to_vec()],
        ] {
            assert!(j.on_frames(b"px", &frames).is_empty());
        }
    }

    #[test]
    fn a_symlink_where_the_package_directory_goes_is_replaced() {
        let dir = Dir::new("symlink");
        let mut j = FileJuggler::new(&dir.0).unwrap();
        let elsewhere = dir.0.join("elsewhere");
        fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.0.join("simple/foo")).unwrap();
        let content = b"wheel".to_vec();
        j.expect(7, &file_state("foo-1.0-py3-none-any.whl", &content))
            .unwrap();
        send_all(&mut j, b"p7", 7, &content);
        j.verify(7, "foo").unwrap();
        assert!(
            fs::symlink_metadata(dir.0.join("simple/foo"))
                .unwrap()
                .is_dir()
        );
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    }

    #[test]
    fn a_real_wheel_gets_its_core_metadata_file() {
        use std::io::Write;
        let dir = Dir::new("metadata");
        let mut j = FileJuggler::new(&dir.0).unwrap();
        let meta = b"Metadata-Version: 2.1\nName: foo\nVersion: 1.0\nRequires-Python: >=3.7\n";
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default();
        zip.start_file("foo/__init__.py", opts).unwrap();
        zip.write_all(b"").unwrap();
        zip.start_file("foo-1.0.dist-info/METADATA", opts).unwrap();
        zip.write_all(meta).unwrap();
        let content = zip.finish().unwrap().into_inner();
        let name = "foo-1.0-py3-none-any.whl";
        j.expect(8, &file_state(name, &content)).unwrap();
        send_all(&mut j, b"p8", 8, &content);
        let path = j.verify(8, "foo").unwrap();
        let md = path.with_file_name(format!("{name}.metadata"));
        assert_eq!(fs::read(&md).unwrap(), meta);
        let mode = fs::metadata(&md).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        // A "wheel" that is not a zip lands, without metadata.
        j.expect(9, &file_state("bar-1.0-py3-none-any.whl", b"not a zip"))
            .unwrap();
        send_all(&mut j, b"p9", 9, b"not a zip");
        let path = j.verify(9, "bar").unwrap();
        assert!(path.exists());
        assert!(
            !path
                .with_file_name("bar-1.0-py3-none-any.whl.metadata")
                .exists()
        );
    }

    #[test]
    fn wheel_names() {
        assert!(check_wheel_name("numpy-1.26.4-cp311-cp311-linux_armv7l.whl").is_ok());
        assert!(check_wheel_name("foo-1.0-1build-py3-none-any.whl").is_ok());
        assert!(
            check_wheel_name("zope.interface-6.0rc1+local.2-cp311-cp311-linux_armv7l.whl").is_ok()
        );
        assert!(check_wheel_name("foo-1!2.0-py3-none-any.whl").is_ok());
        assert_eq!(
            armv6l_name("numpy-1.26.4-cp311-cp311-linux_armv7l.whl").as_deref(),
            Some("numpy-1.26.4-cp311-cp311-linux_armv6l.whl")
        );
    }
}
