//! Building one package version with pip, as piwheels 0.23 does, in a
//! worker thread so the poll loop keeps talking to the master.
//!
//! - The command is 0.23's (`pip wheel <pkg>==<ver> --wheel-dir … --log …
//!   --no-deps --no-cache-dir --no-binary <pkg> --prefer-binary
//!   --exists-action=w --disable-pip-version-check --index-url <ACK url>`
//!   and any `--extra-index-url`), run as `<python> -m pip` so the
//!   interpreter whose tags the slave announced is the one that builds.
//! - The environment is 0.23's: `GIT_ALLOW_PROTOCOL=file`,
//!   `PIWHEELS_BUILD=1`, `OPENSSL_STATIC=1`, `$HOME/.cargo/bin` first on
//!   `PATH`; stdin/stdout/stderr are not a terminal; the data segment is
//!   limited to 1 GiB (for pip and its children only; piwheels limits the
//!   whole slave).
//! - Unlike piwheels, the build timeout is enforced: pip and everything it
//!   started are killed and the build fails with a line in its log saying
//!   so. Abandoning a build (DONE while busy, DIE, SIGTERM) kills it the
//!   same way: SIGTERM, then SIGKILL 10 s later.
//! - The log is pip's `--log` file (plus pip's stderr if pip never got as
//!   far as writing the log), with our own notes appended, and at most
//!   16 MiB (the end is kept).
//! - Each wheel is checked and described as a [`FileState`]: size, SHA-256,
//!   tags from its name, Requires-Python and the non-extra Requires-Dist
//!   names from its METADATA, and apt dependencies of its libraries. A
//!   wheel with an invalid name or without METADATA fails the build, as in
//!   0.23.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::deps;
use super::process::{self, Doorbell, Ended, StopFlag};
use crate::protocol::{BuildResult, FileState, TimeDelta};
use crate::wheel::{self, WheelName};

/// The data-segment limit for builds (piwheels: 1 GiB).
pub const DATA_LIMIT: u64 = 1 << 30;
/// Build logs longer than this keep only their end.
pub const MAX_OUTPUT: usize = 16 << 20;
/// SIGTERM → SIGKILL grace when a build is stopped or times out.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// What to build, and how.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    pub package: String,
    pub version: String,
    /// The index from ACK.
    pub index_url: String,
    pub extra_index_urls: Vec<String>,
    /// The interpreter (`python3`).
    pub python: String,
    /// Where to make the build's temporary directory.
    pub parent_dir: PathBuf,
    /// pip is killed after this long.
    pub timeout: Duration,
    /// SIGTERM → SIGKILL grace.
    pub grace: Duration,
}

/// pip's arguments after `<python> -m pip`.
pub fn pip_args(spec: &BuildSpec, wheel_dir: &Path, log_file: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "wheel".into(),
        format!("{}=={}", spec.package, spec.version).into(),
        prefixed("--wheel-dir=", wheel_dir.as_os_str()),
        prefixed("--log=", log_file.as_os_str()),
        "--no-deps".into(),
        "--no-cache-dir".into(),
        format!("--no-binary={}", spec.package).into(),
        "--prefer-binary".into(),
        "--exists-action=w".into(),
        "--disable-pip-version-check".into(),
        format!("--index-url={}", spec.index_url).into(),
    ];
    for url in &spec.extra_index_urls {
        args.push(format!("--extra-index-url={url}").into());
    }
    args
}

fn prefixed(prefix: &str, value: &OsStr) -> OsString {
    let mut s = OsString::from(prefix);
    s.push(value);
    s
}

/// The variables piwheels 0.23 sets for a build, given the current
/// environment.
pub fn build_env(
    current: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    let mut home = None;
    let mut path = None;
    for (k, v) in current {
        if k == "HOME" {
            home = Some(v);
        } else if k == "PATH" {
            path = Some(v);
        }
    }
    let mut out: Vec<(OsString, OsString)> = vec![
        ("GIT_ALLOW_PROTOCOL".into(), "file".into()),
        ("PIWHEELS_BUILD".into(), "1".into()),
        ("OPENSSL_STATIC".into(), "1".into()),
    ];
    let path = path.unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let has_cargo = path.to_string_lossy().contains(".cargo/bin");
    if let (false, Some(home)) = (has_cargo, home) {
        let mut p = PathBuf::from(home).join(".cargo/bin").into_os_string();
        p.push(":");
        p.push(&path);
        out.push(("PATH".into(), p));
    }
    out
}

/// `3h`, `1h30m`, `45s`, `1.5s`: for log lines.
pub fn human_duration(d: Duration) -> String {
    let total = d.as_secs();
    if d.subsec_millis() != 0 && total < 60 {
        return format!("{:.1}s", d.as_secs_f64());
    }
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// Reads a log file as text, keeping at most `max` bytes (the end).
fn read_text(path: &Path, max: usize) -> String {
    let Ok(mut f) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut prefix = String::new();
    if len > max as u64 {
        use std::io::Seek;
        let skip = len - max as u64;
        let _ = f.seek(io::SeekFrom::Start(skip));
        prefix = format!("[piw-slave: the first {skip} bytes of this log were cut]\n");
    }
    let mut buf = Vec::new();
    let _ = f.take(max as u64).read_to_end(&mut buf);
    prefix + &String::from_utf8_lossy(&buf)
}

/// Why looking at the wheels ended the build.
enum Analysis {
    Bad(String),
    Stopped,
}

/// Describes one built wheel.
fn analyse_wheel(
    path: &Path,
    work: &Path,
    stop: &StopFlag,
) -> Result<(FileState, Vec<String>), Analysis> {
    let filename = path
        .file_name()
        .and_then(OsStr::to_str)
        .ok_or_else(|| Analysis::Bad(format!("{}: not a UTF-8 file name", path.display())))?
        .to_string();
    let name = WheelName::parse(&filename).map_err(|e| {
        Analysis::Bad(format!(
            "pip built {filename:?}, which is not a valid wheel name: {e}"
        ))
    })?;
    let (filesize, filehash) =
        wheel::hash_file(path).map_err(|e| Analysis::Bad(format!("{filename}: {e}")))?;
    let meta = wheel::read_metadata(path, &name)
        .map_err(|e| Analysis::Bad(format!("{filename}: {e}")))?
        .parse();
    let scratch = work.join(&filename);
    std::fs::create_dir_all(&scratch).map_err(|e| Analysis::Bad(format!("{filename}: {e}")))?;
    let apt = deps::apt_dependencies(path, &scratch, stop).map_err(|_| Analysis::Stopped)?;
    let _ = std::fs::remove_dir_all(&scratch);
    let notes = apt
        .notes
        .iter()
        .map(|n| format!("piw-slave: {filename}: {n}"))
        .collect();
    let state = FileState {
        filesize,
        filehash,
        package_tag: name.package,
        package_version_tag: name.version,
        py_version_tag: name.python_tag,
        abi_tag: name.abi_tag,
        platform_tag: name.platform_tag,
        requires_python: meta.requires_python().map(str::to_string),
        dependencies: vec![
            ("apt".to_string(), apt.apt),
            ("pip".to_string(), meta.pip_dependencies()),
            (String::new(), apt.unowned),
        ],
        location: "/simple".to_string(),
        filename,
    };
    Ok((state, notes))
}

/// Describes every wheel in `wheels`, sorted by file name.
fn analyse(
    wheels: &Path,
    work: &Path,
    stop: &StopFlag,
) -> Result<(Vec<FileState>, Vec<String>), Analysis> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(wheels)
        .map_err(|e| Analysis::Bad(format!("cannot list {}: {e}", wheels.display())))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "whl"))
        .collect();
    paths.sort();
    let mut files = Vec::new();
    let mut notes = Vec::new();
    for p in paths {
        let (f, n) = analyse_wheel(&p, work, stop)?;
        files.push(f);
        notes.extend(n);
    }
    Ok((files, notes))
}

/// Runs the whole build in the calling thread.
pub fn build(spec: &BuildSpec, dir: &Path, stop: &StopFlag) -> BuildResult {
    let wheels = dir.join("wheels");
    let log = dir.join("build.log");
    let stderr_path = dir.join("pip.stderr");
    let mut notes: Vec<String> = Vec::new();
    let mut cmd = Command::new(&spec.python);
    cmd.args(["-m", "pip"])
        .args(pip_args(spec, &wheels, &log))
        .envs(build_env(std::env::vars_os()))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    match std::fs::File::create(&stderr_path) {
        Ok(f) => cmd.stderr(f),
        Err(_) => cmd.stderr(Stdio::null()),
    };
    process::limit_data(&mut cmd, DATA_LIMIT);
    let ran = std::fs::create_dir_all(&wheels)
        .and_then(|_| process::run(&mut cmd, Some(spec.timeout), spec.grace, stop));
    let (mut status, elapsed) = match ran {
        Ok((Ended::Exited(s), took)) => (s.success(), took),
        Ok((Ended::TimedOut, took)) => {
            notes.push(format!(
                "piw-slave: build timed out: pip ran for longer than the build timeout ({}), \
                 so it was killed, with every process it started",
                human_duration(spec.timeout)
            ));
            (false, took)
        }
        Ok((Ended::Stopped, took)) => {
            notes.push("piw-slave: build abandoned; pip was killed".to_string());
            (false, took)
        }
        Err(e) => {
            notes.push(format!("piw-slave: cannot run {} -m pip: {e}", spec.python));
            (false, Duration::ZERO)
        }
    };
    let mut files = Vec::new();
    if status {
        match analyse(&wheels, &dir.join("deps"), stop) {
            Ok((f, n)) => {
                files = f;
                notes.extend(n);
            }
            Err(Analysis::Bad(why)) => {
                notes.push(format!("piw-slave: {why}"));
                status = false;
            }
            Err(Analysis::Stopped) => {
                notes.push("piw-slave: build abandoned while examining its wheels".into());
                status = false;
            }
        }
    }
    let mut output = read_text(&log, MAX_OUTPUT);
    if output.trim().is_empty() {
        output = read_text(&stderr_path, MAX_OUTPUT);
    }
    for n in notes {
        if !output.is_empty() && !output.ends_with('\n') {
            output.push('\n');
        }
        output.push_str(&n);
        output.push('\n');
    }
    BuildResult {
        status,
        duration: TimeDelta::from_std(elapsed).unwrap_or(TimeDelta::ZERO),
        output,
        files,
    }
}

/// Makes a fresh private directory `<parent>/piw-slave-XXXXXX`.
pub fn make_build_dir(parent: &Path) -> io::Result<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let template = parent.join("piw-slave-XXXXXX");
    let mut bytes = template.as_os_str().as_bytes().to_vec();
    bytes.push(0);
    // SAFETY: mkdtemp edits the NUL-terminated buffer we own in place.
    let p = unsafe { libc::mkdtemp(bytes.as_mut_ptr().cast()) };
    if p.is_null() {
        return Err(io::Error::last_os_error());
    }
    bytes.pop();
    Ok(PathBuf::from(OsStr::from_bytes(&bytes)))
}

/// A build running in a worker thread.
#[derive(Debug)]
pub struct BuildJob {
    stop: Arc<StopFlag>,
    bell: Arc<Doorbell>,
    handle: Option<JoinHandle<BuildResult>>,
    dir: PathBuf,
}

impl BuildJob {
    /// Makes the build directory and starts building.
    pub fn start(spec: BuildSpec) -> io::Result<BuildJob> {
        let dir = make_build_dir(&spec.parent_dir)?;
        let stop = Arc::new(StopFlag::new()?);
        let bell = Arc::new(Doorbell::new()?);
        let (s, b, d) = (stop.clone(), bell.clone(), dir.clone());
        let handle = std::thread::Builder::new()
            .name("build".into())
            .spawn(move || {
                let result = build(&spec, &d, &s);
                b.ring();
                result
            })?;
        Ok(BuildJob {
            stop,
            bell,
            handle: Some(handle),
            dir,
        })
    }

    /// Readable when the build has finished.
    pub fn fd(&self) -> RawFd {
        self.bell.fd()
    }

    /// Asks the build to stop (SIGTERM, SIGKILL after the grace period).
    pub fn stop(&self) {
        self.stop.set();
    }

    /// Was [`stop`](Self::stop) called?
    pub fn stopping(&self) -> bool {
        self.stop.is_set()
    }

    pub fn is_finished(&self) -> bool {
        self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// The build's directory (wheels are in `wheels/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Waits for the build (call once [`fd`](Self::fd) is readable) and
    /// returns its result and directory.
    pub fn join(mut self) -> (BuildResult, PathBuf) {
        self.bell.clear();
        let result = match self.handle.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            _ => BuildResult {
                status: false,
                duration: TimeDelta::ZERO,
                output: "piw-slave: the build thread failed".into(),
                files: Vec::new(),
            },
        };
        (result, std::mem::take(&mut self.dir))
    }
}

/// Where a build's wheels are.
pub fn wheel_dir(build_dir: &Path) -> PathBuf {
    build_dir.join("wheels")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> BuildSpec {
        BuildSpec {
            package: "Foo.Bar".into(),
            version: "1.0".into(),
            index_url: "https://pypi.org/simple".into(),
            extra_index_urls: vec!["https://www.piwheels.org/simple".into()],
            python: "python3".into(),
            parent_dir: std::env::temp_dir(),
            timeout: Duration::from_secs(3 * 3600),
            grace: STOP_GRACE,
        }
    }

    #[test]
    fn the_pip_command_is_piwheels_0_23s() {
        let args = pip_args(&spec(), Path::new("/b/wheels"), Path::new("/b/build.log"));
        let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "wheel",
                "Foo.Bar==1.0",
                "--wheel-dir=/b/wheels",
                "--log=/b/build.log",
                "--no-deps",
                "--no-cache-dir",
                "--no-binary=Foo.Bar",
                "--prefer-binary",
                "--exists-action=w",
                "--disable-pip-version-check",
                "--index-url=https://pypi.org/simple",
                "--extra-index-url=https://www.piwheels.org/simple",
            ]
        );
        let mut s = spec();
        s.extra_index_urls.clear();
        assert!(
            !pip_args(&s, Path::new("/w"), Path::new("/l"))
                .iter()
                .any(|a| a.to_string_lossy().starts_with("--extra-index-url"))
        );
    }

    #[test]
    fn the_environment_is_piwheels_0_23s() {
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            build_env(
                pairs
                    .iter()
                    .map(|(k, v)| (OsString::from(k), OsString::from(v))),
            )
            .into_iter()
            .map(|(k, v)| (k.into_string().unwrap(), v.into_string().unwrap()))
            .collect()
        };
        let got = env(&[("HOME", "/home/piwheels"), ("PATH", "/usr/bin:/bin")]);
        assert_eq!(
            got,
            [
                ("GIT_ALLOW_PROTOCOL".into(), "file".into()),
                ("PIWHEELS_BUILD".into(), "1".into()),
                ("OPENSSL_STATIC".into(), "1".into()),
                (
                    "PATH".into(),
                    "/home/piwheels/.cargo/bin:/usr/bin:/bin".into()
                ),
            ]
        );
        // Already on PATH (anyone's .cargo/bin): left alone; no HOME: no change.
        let got = env(&[("HOME", "/h"), ("PATH", "/opt/.cargo/bin:/bin")]);
        assert_eq!(got.len(), 3);
        let got = env(&[("PATH", "/bin")]);
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn durations_for_humans() {
        assert_eq!(human_duration(Duration::from_secs(10800)), "3h");
        assert_eq!(human_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(human_duration(Duration::from_secs(3661)), "1h1m1s");
        assert_eq!(human_duration(Duration::from_secs(2)), "2s");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn long_logs_keep_their_end() {
        let dir = make_build_dir(&std::env::temp_dir()).unwrap();
        assert!(
            dir.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("piw-slave-")
        );
        let p = dir.join("log");
        std::fs::write(&p, b"0123456789").unwrap();
        assert_eq!(read_text(&p, 100), "0123456789");
        let cut = read_text(&p, 4);
        assert!(cut.starts_with("[piw-slave: the first 6 bytes"), "{cut}");
        assert!(cut.ends_with("\n6789"));
        assert_eq!(read_text(&dir.join("missing"), 10), "");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_interpreter_fails_the_build_with_a_reason() {
        let parent = make_build_dir(&std::env::temp_dir()).unwrap();
        let mut s = spec();
        s.python = "/nonexistent/python3".into();
        s.parent_dir = parent.clone();
        let job = BuildJob::start(s).unwrap();
        let mut p = libc::pollfd {
            fd: job.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; wait up to 30 s for the doorbell.
        assert_eq!(unsafe { libc::poll(&mut p, 1, 30_000) }, 1);
        // (The thread rings the doorbell just before it ends, so it may
        // not have ended yet; join waits for it.)
        assert!(!job.stopping());
        let (r, dir) = job.join();
        assert!(!r.status);
        assert!(r.files.is_empty());
        assert!(
            r.output.contains("cannot run /nonexistent/python3"),
            "{}",
            r.output
        );
        assert!(dir.starts_with(&parent));
        std::fs::remove_dir_all(&parent).unwrap();
    }
}
