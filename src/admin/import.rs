//! piw-import: registers wheels built elsewhere as one build.
//!
//! Every file is read and checked before anything is sent (a name that is
//! not a wheel's, a file that is not a zip with METADATA, wheels of
//! different packages or versions): a bad call changes nothing. Then
//! `IMPORT`, and for each `SEND <file>` the file goes over the master's
//! file queue exactly as a build slave sends it (transfer id 0, the
//! slave's sans-IO [`Transfer`] machine), followed by `SENT`, until `DONE`.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{ImportClient, Outcome, Tool, confirm, unexpected};
use crate::config::import::{Command, ImportConfig};
use crate::config::{ConfigError, LogSettings};
use crate::names::canonicalize;
use crate::protocol::{BuildState, FileState, ImportReply, ImportRequest};
use crate::slave::transfer::{Step, Transfer};
use crate::wheel::{self, WheelName};

const TARGET: &str = "piw-import";

/// The build log recorded when `--output` is not given (piwheels' text).
pub const DEFAULT_OUTPUT: &str = "Imported manually via piw-import";

/// Largest file-queue message accepted (FETCH and DONE are tiny).
const MAX_FILE_FRAME: i64 = 64 << 10;

/// Largest `--output` or `--dependencies` file read.
const MAX_TEXT_FILE: u64 = 16 << 20;

/// A build ready to send: its state and where each file is.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub state: BuildState,
    /// (file name, path) of every wheel.
    pub paths: Vec<(String, PathBuf)>,
}

/// One wheel, read and checked.
struct Wheel {
    path: PathBuf,
    /// Canonical name and version from METADATA.
    name: String,
    version: String,
    state: FileState,
}

fn read_text(path: &Path, what: &str) -> Result<String, String> {
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    if meta.len() > MAX_TEXT_FILE {
        return Err(format!(
            "{what} {} is {} bytes (at most {MAX_TEXT_FILE})",
            path.display(),
            meta.len()
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn read_wheel(path: &Path, apt: &[String]) -> Result<Wheel, String> {
    let shown = path.display();
    let filename = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{shown}: not a wheel file name"))?
        .to_string();
    let name =
        WheelName::parse(&filename).map_err(|e| format!("{shown}: not a wheel file name: {e}"))?;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown}: not a regular file"));
    }
    let (filesize, filehash) =
        wheel::hash_file(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let metadata = wheel::read_metadata(path, &name)
        .map_err(|e| format!("{shown}: {e}"))?
        .parse();
    let (Some(meta_name), Some(meta_version)) = (metadata.name(), metadata.version()) else {
        return Err(format!("{shown}: METADATA has no Name or Version"));
    };
    if canonicalize(meta_name) != name.canonical_package()
        || canonicalize(meta_version) != canonicalize(&name.version)
    {
        return Err(format!(
            "{shown}: the file name says {} {} but METADATA says {meta_name} {meta_version}",
            name.package, name.version
        ));
    }
    let mut dependencies = Vec::new();
    if !apt.is_empty() {
        dependencies.push(("apt".to_string(), apt.to_vec()));
    }
    dependencies.push(("pip".to_string(), metadata.pip_dependencies()));
    let state = FileState {
        filename,
        filesize,
        filehash,
        package_tag: name.package,
        package_version_tag: name.version,
        py_version_tag: name.python_tag,
        abi_tag: name.abi_tag,
        platform_tag: name.platform_tag,
        requires_python: metadata.requires_python().map(str::to_string),
        dependencies,
        location: "/simple".to_string(),
    };
    Ok(Wheel {
        path: path.to_path_buf(),
        name: canonicalize(meta_name),
        version: meta_version.to_string(),
        state,
    })
}

/// Reads and checks every file and builds the IMPORT's build state.
pub fn prepare(config: &ImportConfig) -> Result<Prepared, String> {
    let apt: Vec<String> = match &config.dependencies {
        Some(p) => read_text(p, "dependencies file")?
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    };
    let output = match &config.output {
        Some(p) => read_text(p, "output file")?,
        None => DEFAULT_OUTPUT.to_string(),
    };
    let mut wheels: Vec<Wheel> = Vec::new();
    let mut seen = HashSet::new();
    for path in &config.files {
        let w = read_wheel(path, &apt)?;
        if !seen.insert(w.state.filename.clone()) {
            return Err(format!("{} is given twice", w.state.filename));
        }
        wheels.push(w);
    }
    let Some(first) = wheels.first() else {
        return Err("no files given".to_string());
    };
    if config.package.is_none() {
        if let Some(w) = wheels.iter().find(|w| w.name != first.name) {
            return Err(format!(
                "{} is of package {} but {} is of {}: one import is one build of one \
                 package (give --package to import them together anyway)",
                w.path.display(),
                w.name,
                first.path.display(),
                first.name
            ));
        }
    }
    if config.version.is_none() {
        if let Some(w) = wheels
            .iter()
            .find(|w| canonicalize(&w.version) != canonicalize(&first.version))
        {
            return Err(format!(
                "{} is of version {} but {} is of {}: one import is one build of one \
                 version (give --package-version to import them together anyway)",
                w.path.display(),
                w.version,
                first.path.display(),
                first.version
            ));
        }
    }
    let abi_tag = match &config.abi {
        Some(abi) => abi.clone(),
        None if first.state.abi_tag != "none" => first.state.abi_tag.clone(),
        None => return Err("couldn't determine builder ABI; re-run with --abi".to_string()),
    };
    let mut files: Vec<FileState> = wheels.iter().map(|w| w.state.clone()).collect();
    files.sort_by(|a, b| a.filename.cmp(&b.filename));
    let state = BuildState {
        slave_id: 0,
        package: canonicalize(config.package.as_deref().unwrap_or(&first.name)),
        version: config
            .version
            .clone()
            .unwrap_or_else(|| first.version.clone()),
        abi_tag,
        status: true,
        duration: config.duration,
        output,
        files,
    };
    let paths = wheels
        .into_iter()
        .map(|w| (w.state.filename, w.path))
        .collect();
    Ok(Prepared { state, paths })
}

/// Byte counts for people: 1.5 MB, as piwheels' `format_size`.
fn format_size(size: u64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut value = size as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{size} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

/// Describes the build about to be imported (before the prompt).
fn print_state(state: &BuildState) {
    let apt = state
        .files
        .first()
        .and_then(|f| f.dependencies.iter().find(|(tool, _)| tool == "apt"))
        .map_or(0, |(_, deps)| deps.len());
    let w = |line: String| log::warn!(target: TARGET, "{line}");
    w("Preparing to import build".into());
    w(format!("Package:  {}", state.package));
    w(format!("Version:  {}", state.version));
    w(format!("ABI:      {}", state.abi_tag));
    w("Status:   successful".into());
    w(format!(
        "Duration: {}",
        crate::slave::builder::human_duration(
            state.duration.to_chrono().to_std().unwrap_or_default()
        )
    ));
    w(format!(
        "Output:   {} line(s)",
        state.output.lines().count()
    ));
    w(format!("Files:    {}", state.files.len()));
    w(format!("Dependencies: {apt}"));
    for f in &state.files {
        w(String::new());
        w(format!("Filename: {}", f.filename));
        w(format!("  Size:         {}", format_size(f.filesize)));
        w(format!("  Hash:         {}", f.filehash));
        w(format!("  Package tag:  {}", f.package_tag));
        w(format!("  Version tag:  {}", f.package_version_tag));
        w(format!("  ABI tag:      {}", f.abi_tag));
        w(format!("  Python tag:   {}", f.py_version_tag));
        w(format!("  Platform tag: {}", f.platform_tag));
        w(format!(
            "  Requires-Python: {}",
            f.requires_python.as_deref().unwrap_or("")
        ));
    }
}

/// Sends one file to the master's file queue as a slave does (transfer id
/// 0): HELLO, a CHUNK for every FETCH, until DONE; fails after `client`'s
/// timeout of silence.
pub fn send_file(client: &ImportClient, addr: &str, path: &Path) -> Result<(), String> {
    let shown = path.display();
    let file = File::open(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
    let size = file
        .metadata()
        .map_err(|e| format!("cannot read {shown}: {e}"))?
        .len();
    let socket = (|| -> zmq::Result<zmq::Socket> {
        let s = client.context().socket(zmq::DEALER)?;
        s.set_ipv6(true)?;
        s.set_sndhwm(50)?;
        s.set_rcvhwm(50)?;
        s.set_linger(0)?;
        s.set_maxmsgsize(MAX_FILE_FRAME)?;
        s.connect(addr)?;
        Ok(s)
    })()
    .map_err(|e| format!("cannot connect to the file queue {addr}: {e}"))?;
    let (mut machine, first) = Transfer::start(0, size, client.timeout(), Instant::now());
    let act = |step: Step| -> Option<Result<(), String>> {
        match step {
            Step::Hello(frames) => {
                let _ = socket.send_multipart(frames, zmq::DONTWAIT);
                None
            }
            Step::Chunk {
                offset_frame,
                offset,
                length,
            } => {
                let mut data = vec![0u8; length as usize];
                let mut got = 0;
                while got < data.len() {
                    match file.read_at(&mut data[got..], offset.saturating_add(got as u64)) {
                        Ok(0) => break,
                        Ok(n) => got += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Some(Err(format!("cannot read {shown}: {e}"))),
                    }
                }
                data.truncate(got);
                // A CHUNK that does not fit is asked for again by the master.
                let _ =
                    socket.send_multipart([b"CHUNK".to_vec(), offset_frame, data], zmq::DONTWAIT);
                None
            }
            Step::Done => Some(Ok(())),
            Step::Failed(why) => Some(Err(format!("sending {shown} to {addr}: {why}"))),
        }
    };
    if let Some(end) = act(first) {
        return end;
    }
    loop {
        let now = Instant::now();
        let wait = machine
            .next_deadline()
            .map_or(std::time::Duration::ZERO, |d| {
                d.saturating_duration_since(now)
            });
        let ms = wait.as_millis().min(60_000) as i64 + 1;
        let readable = match socket.poll(zmq::POLLIN, ms) {
            Ok(n) => n > 0,
            Err(zmq::Error::EINTR) => false,
            Err(e) => return Err(format!("cannot wait for the file queue: {e}")),
        };
        if readable {
            loop {
                let frames = match socket.recv_multipart(zmq::DONTWAIT) {
                    Ok(f) => f,
                    Err(zmq::Error::EAGAIN) => break,
                    Err(e) => return Err(format!("file queue {addr}: {e}")),
                };
                if let Some(end) = machine.on_frames(&frames, Instant::now()).and_then(&act) {
                    return end;
                }
            }
        }
        if let Some(end) = machine.tick(Instant::now()).and_then(&act) {
            return end;
        }
    }
}

/// Sends IMPORT and every file the master asks for, until DONE.
pub fn do_import(config: &ImportConfig, prepared: &Prepared) -> Result<(), String> {
    log::info!(target: TARGET, "Connecting to master at {}", config.import_queue);
    let client = ImportClient::connect(&config.import_queue, config.reply_timeout)?;
    // The master serves one import at a time: ours may wait its turn.
    let mut reply = client.request_patiently(
        &ImportRequest::Import(prepared.state.clone()),
        super::IMPORT_PATIENCE,
    )?;
    let mut registered = false;
    loop {
        match reply {
            ImportReply::Send(filename) => {
                if !registered {
                    log::info!(target: TARGET, "Registered build successfully");
                    registered = true;
                }
                let Some((_, path)) = prepared.paths.iter().find(|(n, _)| *n == filename) else {
                    return Err(format!(
                        "the master asked for {filename:?}, which is not part of this import"
                    ));
                };
                log::info!(target: TARGET, "Sending {filename} to master on {}", config.file_queue);
                send_file(&client, &config.file_queue, path)?;
                // Verifying a big file takes the master a while.
                reply = client.request_patiently(&ImportRequest::Sent, super::IMPORT_PATIENCE)?;
            }
            ImportReply::Done(ref what) if what == "IMPORT" => return Ok(()),
            ImportReply::Error(msg) => return Err(format!("the master refused the import: {msg}")),
            other => return Err(unexpected(&other)),
        }
    }
}

impl Tool for ImportConfig {
    const NAME: &'static str = TARGET;

    fn parse(args: Vec<OsString>, default_files: &[PathBuf]) -> Result<Command<Self>, ConfigError> {
        ImportConfig::parse(args, default_files)
    }

    fn log(&self) -> &LogSettings {
        &self.log
    }

    fn run(&self) -> Result<Outcome, String> {
        log::info!(target: TARGET, "PiWheels Importer version {}", crate::VERSION);
        let prepared = prepare(self)?;
        if !self.yes {
            print_state(&prepared.state);
            if !confirm("Proceed?") {
                log::warn!(target: TARGET, "User aborted import");
                return Ok(Outcome::Aborted);
            }
        }
        do_import(self, &prepared)?;
        log::info!(
            target: TARGET,
            "Imported {} {} ({} file(s))",
            prepared.state.package,
            prepared.state.version,
            prepared.paths.len()
        );
        if self.delete {
            let mut failed = Vec::new();
            for (_, path) in &prepared.paths {
                if let Err(e) = std::fs::remove_file(path) {
                    failed.push(format!("{}: {e}", path.display()));
                }
            }
            if !failed.is_empty() {
                return Err(format!("imported, but cannot delete {}", failed.join("; ")));
            }
        }
        Ok(Outcome::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("piw-admin-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn wheel(dir: &Path, dist: &str, version: &str, tags: &str) -> PathBuf {
        let path = dir.join(format!("{dist}-{version}-{tags}.whl"));
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let opts = zip::write::SimpleFileOptions::default();
        zip.start_file(format!("{dist}-{version}.dist-info/METADATA"), opts)
            .unwrap();
        write!(
            zip,
            "Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n\
             Requires-Dist: numpy>=1\nRequires-Dist: pytest; extra == 'test'\n"
        )
        .unwrap();
        zip.finish().unwrap();
        path
    }

    fn config(args: &[&Path], extra: &[&str]) -> ImportConfig {
        let mut all: Vec<OsString> = extra.iter().map(OsString::from).collect();
        all.extend(args.iter().map(|p| p.as_os_str().to_owned()));
        match ImportConfig::parse(all, &[]).unwrap() {
            Command::Run(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_build_state_from_wheels() {
        let d = dir("state");
        let b = wheel(&d.0, "Foo_Bar", "1.0", "cp311-cp311-linux_armv7l");
        let a = wheel(&d.0, "Foo_Bar", "1.0", "cp311-abi3-linux_armv7l");
        let p = prepare(&config(&[&b, &a], &[])).unwrap();
        let s = &p.state;
        assert_eq!((s.package.as_str(), s.version.as_str()), ("foo-bar", "1.0"));
        // The first file named decides the ABI; the files are sorted.
        assert_eq!(s.abi_tag, "cp311");
        assert!(s.files[0].filename < s.files[1].filename);
        assert_eq!(s.output, DEFAULT_OUTPUT);
        assert_eq!(s.slave_id, 0);
        let f = &s.files[0];
        assert_eq!(f.package_tag, "Foo_Bar");
        assert_eq!(f.location, "/simple");
        assert_eq!(
            f.dependencies,
            vec![("pip".to_string(), vec!["numpy".to_string()])]
        );
        assert_eq!(
            (f.filesize, f.filehash.clone()),
            wheel::hash_file(&a).unwrap()
        );
    }

    #[test]
    fn overrides_allow_what_piwheels_allows() {
        let d = dir("override");
        let one = wheel(&d.0, "foo", "1.0", "py3-none-any");
        let two = wheel(&d.0, "bar", "2.0", "py3-none-any");
        assert!(prepare(&config(&[&one, &two], &["--abi", "cp311"])).is_err());
        let p = prepare(&config(
            &[&one, &two],
            &[
                "--abi",
                "cp39",
                "--package",
                "Baz",
                "--package-version",
                "3",
            ],
        ))
        .unwrap();
        assert_eq!(
            (p.state.package.as_str(), p.state.version.as_str()),
            ("baz", "3")
        );
        assert_eq!(p.state.abi_tag, "cp39");
        // The same file twice is one file too many.
        let e = prepare(&config(&[&one, &one], &["--abi", "cp39"])).unwrap_err();
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(format_size(10), "10 B");
        assert_eq!(format_size(1536), "1.5 KB");
        assert_eq!(format_size(3 << 20), "3.0 MB");
    }
}
