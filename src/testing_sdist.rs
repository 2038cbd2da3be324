//! Test support: tiny Python projects that pip can build with no network
//! and nothing installed beyond pip itself, and a local PEP 503 index that
//! serves them. Used by the slave's tests, the end-to-end tests and the
//! local demo.
//!
//! ```no_run
//! use piwheels::testing_sdist::{SdistSpec, SimpleIndex};
//! let root = std::env::temp_dir().join("my-index");
//! let index = SimpleIndex::serve(&root).unwrap();
//! index.add(&SdistSpec::new("Tiny-Pkg", "1.0"), "python3").unwrap();
//! // pip wheel --no-deps --index-url <index.url()> Tiny-Pkg==1.0
//! println!("{}", index.url());
//! ```
//!
//! The sdist has a `pyproject.toml` with `requires = []` and an in-tree
//! build backend (`backend-path = ["."]`) written with the standard library
//! only, so pip's isolated build environment needs nothing from any index:
//! no setuptools, no wheel. The backend implements PEP 517's
//! `build_wheel`, `build_sdist`, `prepare_metadata_for_build_wheel` and the
//! two `get_requires_for_*` hooks; what it builds is described by a JSON
//! file next to it (name, version, Requires-Python, Requires-Dist, tag,
//! an optional delay or deliberate failure).

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::wheel::canonicalize_name;

/// The in-tree PEP 517 backend (standard library only).
pub const BACKEND_PY: &str = r#""""A tiny PEP 517 build backend for piwheels-rs tests (standard library only).

What it builds is described by piw_test_backend.json next to this file.
"""
import base64
import hashlib
import io
import json
import os
import tarfile
import time
import zipfile

_HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(_HERE, 'piw_test_backend.json'), encoding='utf-8') as _f:
    _CONF = json.load(_f)
_EPOCH = (2020, 6, 1, 0, 0, 0)


def _metadata():
    lines = [
        'Metadata-Version: 2.1',
        'Name: ' + _CONF['name'],
        'Version: ' + _CONF['version'],
        'Summary: A test package for piwheels-rs',
    ]
    if _CONF.get('requires_python'):
        lines.append('Requires-Python: ' + _CONF['requires_python'])
    for req in _CONF.get('requires_dist', []):
        lines.append('Requires-Dist: ' + req)
    return ('\n'.join(lines) + '\n\nBuilt offline by an in-tree backend.\n').encode('utf-8')


def _dist_info():
    return '%s-%s.dist-info' % (_CONF['dist'], _CONF['version'])


def _wheel_file():
    purelib = 'true' if _CONF['tag'].endswith('-none-any') else 'false'
    return ('Wheel-Version: 1.0\nGenerator: piw_test_backend\n'
            'Root-Is-Purelib: %s\nTag: %s\n' % (purelib, _CONF['tag'])).encode('ascii')


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=')
    return '%s,sha256=%s,%d' % (path, digest.decode('ascii'), len(data))


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    path = os.path.join(metadata_directory, _dist_info())
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, 'METADATA'), 'wb') as f:
        f.write(_metadata())
    with open(os.path.join(path, 'WHEEL'), 'wb') as f:
        f.write(_wheel_file())
    return _dist_info()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    if _CONF.get('pid_file'):
        with open(_CONF['pid_file'], 'w') as f:
            f.write(str(os.getpid()))
    if _CONF.get('delay'):
        time.sleep(_CONF['delay'])
    if _CONF.get('fail'):
        raise RuntimeError('piw_test_backend: this build fails on purpose')
    module = _CONF['dist']
    files = []
    for name in sorted(os.listdir(os.path.join(_HERE, module))):
        full = os.path.join(_HERE, module, name)
        if os.path.isfile(full):
            with open(full, 'rb') as f:
                files.append((module + '/' + name, f.read()))
    files.append((_dist_info() + '/METADATA', _metadata()))
    files.append((_dist_info() + '/WHEEL', _wheel_file()))
    record = [_record_line(p, d) for p, d in files] + [_dist_info() + '/RECORD,,']
    files.append((_dist_info() + '/RECORD', ('\n'.join(record) + '\n').encode('utf-8')))
    filename = '%s-%s-%s.whl' % (_CONF['dist'], _CONF['version'], _CONF['tag'])
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), 'w') as whl:
        for path, data in files:
            info = zipfile.ZipInfo(path, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            whl.writestr(info, data, zipfile.ZIP_DEFLATED)
    return filename


def build_sdist(sdist_directory, config_settings=None):
    base = '%s-%s' % (_CONF['dist'], _CONF['version'])
    filename = base + '.tar.gz'
    entries = []
    for dirpath, dirnames, filenames in os.walk(_HERE):
        dirnames[:] = sorted(d for d in dirnames if d != '__pycache__')
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, _HERE)
            if rel != 'PKG-INFO':
                with open(full, 'rb') as f:
                    entries.append((rel, f.read()))
    entries.append(('PKG-INFO', _metadata()))
    with tarfile.open(os.path.join(sdist_directory, filename), 'w:gz',
                      format=tarfile.PAX_FORMAT) as tar:
        for rel, data in sorted(entries):
            info = tarfile.TarInfo(base + '/' + rel)
            info.size = len(data)
            info.mtime = 1590969600
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return filename
"#;

/// The `pyproject.toml` of every generated project.
pub const PYPROJECT_TOML: &str = "[build-system]\n\
requires = []\n\
build-backend = \"piw_test_backend\"\n\
backend-path = [\".\"]\n";

/// What a generated project is and how its build behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdistSpec {
    /// The project name as written (`Tiny-Pkg`).
    pub name: String,
    pub version: String,
    /// `Requires-Python`, if any.
    pub requires_python: Option<String>,
    /// `Requires-Dist` lines.
    pub requires_dist: Vec<String>,
    /// The wheel's tag (default `py3-none-any`).
    pub tag: String,
    /// `build_wheel` sleeps this long first (to test timeouts and BUSY).
    pub delay: Option<Duration>,
    /// `build_wheel` writes its process id here first (to check that a
    /// killed build left nothing running).
    pub pid_file: Option<PathBuf>,
    /// `build_wheel` raises after any delay: pip fails.
    pub fail: bool,
    /// A shared library copied into the package as `_native.so` (to test
    /// the apt dependencies of a wheel).
    pub native_lib: Option<PathBuf>,
}

impl SdistSpec {
    /// A pure-Python project with no requirements.
    pub fn new(name: &str, version: &str) -> SdistSpec {
        SdistSpec {
            name: name.to_string(),
            version: version.to_string(),
            requires_python: None,
            requires_dist: Vec::new(),
            tag: "py3-none-any".to_string(),
            delay: None,
            pid_file: None,
            fail: false,
            native_lib: None,
        }
    }

    /// The escaped name used in file names and as the module name:
    /// canonical, with `_` for `-` (`tiny_pkg`).
    pub fn dist_name(&self) -> String {
        canonicalize_name(&self.name).replace('-', "_")
    }

    /// The sdist's file name.
    pub fn sdist_filename(&self) -> String {
        format!("{}-{}.tar.gz", self.dist_name(), self.version)
    }

    /// The file name of the wheel the backend builds.
    pub fn wheel_filename(&self) -> String {
        format!("{}-{}-{}.whl", self.dist_name(), self.version, self.tag)
    }

    /// The METADATA the backend writes, byte for byte.
    pub fn metadata(&self) -> String {
        let mut lines = vec![
            "Metadata-Version: 2.1".to_string(),
            format!("Name: {}", self.name),
            format!("Version: {}", self.version),
            "Summary: A test package for piwheels-rs".to_string(),
        ];
        if let Some(rp) = &self.requires_python {
            lines.push(format!("Requires-Python: {rp}"));
        }
        for r in &self.requires_dist {
            lines.push(format!("Requires-Dist: {r}"));
        }
        lines.join("\n") + "\n\nBuilt offline by an in-tree backend.\n"
    }

    fn config_json(&self) -> String {
        let json = serde_json::json!({
            "name": self.name,
            "dist": self.dist_name(),
            "version": self.version,
            "requires_python": self.requires_python,
            "requires_dist": self.requires_dist,
            "tag": self.tag,
            "delay": self.delay.map(|d| d.as_secs_f64()),
            "pid_file": self.pid_file.as_ref().map(|p| p.display().to_string()),
            "fail": self.fail,
        });
        format!("{json:#}\n")
    }

    /// Writes the project's source tree into `dir` (which must not exist).
    pub fn write_tree(&self, dir: &Path) -> io::Result<()> {
        let module = dir.join(self.dist_name());
        std::fs::create_dir_all(&module)?;
        std::fs::write(dir.join("pyproject.toml"), PYPROJECT_TOML)?;
        std::fs::write(dir.join("piw_test_backend.py"), BACKEND_PY)?;
        std::fs::write(dir.join("piw_test_backend.json"), self.config_json())?;
        std::fs::write(
            module.join("__init__.py"),
            format!("__version__ = {:?}\n", self.version),
        )?;
        if let Some(lib) = &self.native_lib {
            std::fs::copy(lib, module.join("_native.so"))?;
        }
        Ok(())
    }
}

/// Generates the project and has its own backend make the sdist, with
/// `python`; returns the sdist's path (in `out_dir`).
pub fn build_sdist(spec: &SdistSpec, python: &str, out_dir: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(out_dir)?;
    let tree = out_dir.join(format!(".src-{}-{}", spec.dist_name(), spec.version));
    let _ = std::fs::remove_dir_all(&tree);
    spec.write_tree(&tree)?;
    let out = Command::new(python)
        .current_dir(&tree)
        .arg("-c")
        .arg("import sys, piw_test_backend as b; print(b.build_sdist(sys.argv[1]))")
        .arg(out_dir)
        .stdin(Stdio::null())
        .output()?;
    let _ = std::fs::remove_dir_all(&tree);
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "building the sdist failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let name = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Ok(out_dir.join(name))
}

/// A PEP 503 simple index on 127.0.0.1, serving the files under
/// `root/<canonical project name>/`, in a background thread.
///
/// - `GET /simple/` lists the projects;
/// - `GET /simple/<name>/` lists a project's files, with `#sha256=`;
/// - `GET /files/<name>/<file>` serves a file;
/// - everything else is 404. Each response closes its connection.
pub struct SimpleIndex {
    root: PathBuf,
    port: u16,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl SimpleIndex {
    /// Starts serving `root` (created if missing) on a free port.
    pub fn serve(root: &Path) -> io::Result<SimpleIndex> {
        std::fs::create_dir_all(root)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (r, s, q) = (root.to_path_buf(), stop.clone(), requests.clone());
        let thread = std::thread::Builder::new()
            .name("simple-index".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if s.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = conn {
                        let _ = serve_one(stream, &r, &q);
                    }
                }
            })?;
        Ok(SimpleIndex {
            root: root.to_path_buf(),
            port,
            stop,
            requests,
            thread: Some(thread),
        })
    }

    /// The index URL to give pip (or the master's `--pypi-simple`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/simple", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Generates `spec`'s sdist and publishes it; returns its path.
    pub fn add(&self, spec: &SdistSpec, python: &str) -> io::Result<PathBuf> {
        build_sdist(spec, python, &self.root.join(canonicalize_name(&spec.name)))
    }

    /// Every request path served so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for SimpleIndex {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
) -> io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    stream.flush()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn serve_one(mut stream: TcpStream, root: &Path, log: &Mutex<Vec<String>>) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split(['?', '#']).next().unwrap_or("");
    if let Ok(mut l) = log.lock() {
        l.push(path.to_string());
    }
    if method != "GET" && method != "HEAD" {
        return respond(&mut stream, "405 Method Not Allowed", "text/plain", b"");
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let safe = |s: &str| !s.starts_with('.') && !s.contains('\\');
    if !segments.iter().all(|s| safe(s)) {
        return respond(&mut stream, "404 Not Found", "text/plain", b"not found");
    }
    let page = |title: &str, links: Vec<(String, String)>| -> Vec<u8> {
        let mut html = format!(
            "<!DOCTYPE html>\n<html><head><title>{t}</title></head><body>\n",
            t = html_escape(title)
        );
        for (href, text) in links {
            html.push_str(&format!(
                "<a href=\"{}\">{}</a><br>\n",
                html_escape(&href),
                html_escape(&text)
            ));
        }
        html.push_str("</body></html>\n");
        html.into_bytes()
    };
    let listing = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    match segments.as_slice() {
        ["simple"] => {
            let links = listing(root)
                .into_iter()
                .filter(|n| root.join(n).is_dir())
                .map(|n| (format!("/simple/{n}/"), n))
                .collect();
            let body = page("Simple index", links);
            respond(&mut stream, "200 OK", "text/html", &body)
        }
        ["simple", project] => {
            let canon = canonicalize_name(project);
            let dir = root.join(&canon);
            if !dir.is_dir() {
                return respond(&mut stream, "404 Not Found", "text/plain", b"not found");
            }
            let links = listing(&dir)
                .into_iter()
                .filter(|n| dir.join(n).is_file())
                .map(|n| {
                    let hash = crate::wheel::hash_file(&dir.join(&n))
                        .map(|(_, h)| h)
                        .unwrap_or_default();
                    (format!("/files/{canon}/{n}#sha256={hash}"), n)
                })
                .collect();
            let body = page(&format!("Links for {canon}"), links);
            respond(&mut stream, "200 OK", "text/html", &body)
        }
        ["files", project, file] => match std::fs::read(root.join(project).join(file)) {
            Ok(data) => {
                let body = if method == "HEAD" { &[][..] } else { &data[..] };
                respond(&mut stream, "200 OK", "application/octet-stream", body)
            }
            Err(_) => respond(&mut stream, "404 Not Found", "text/plain", b"not found"),
        },
        _ => respond(&mut stream, "404 Not Found", "text/plain", b"not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(port: u16, path: &str) -> (String, Vec<u8>) {
        use std::io::Read;
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap();
        let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&buf[..split]).into_owned();
        (head, buf[split + 4..].to_vec())
    }

    #[test]
    fn names_and_metadata() {
        let mut s = SdistSpec::new("Tiny.Pkg_X", "1.0");
        assert_eq!(s.dist_name(), "tiny_pkg_x");
        assert_eq!(s.sdist_filename(), "tiny_pkg_x-1.0.tar.gz");
        assert_eq!(s.wheel_filename(), "tiny_pkg_x-1.0-py3-none-any.whl");
        s.requires_python = Some(">=3.7".into());
        s.requires_dist = vec!["foo>=1".into()];
        let md = crate::wheel::Metadata::parse(s.metadata().as_bytes());
        assert_eq!(md.name(), Some("Tiny.Pkg_X"));
        assert_eq!(md.requires_python(), Some(">=3.7"));
        assert_eq!(md.requires_dist(), ["foo>=1"]);
        let json: serde_json::Value = serde_json::from_str(&s.config_json()).unwrap();
        assert_eq!(json["dist"], "tiny_pkg_x");
        assert_eq!(json["delay"], serde_json::Value::Null);
    }

    #[test]
    fn the_index_serves_pages_and_files() {
        let root = std::env::temp_dir().join(format!("piw-index-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let index = SimpleIndex::serve(&root).unwrap();
        std::fs::create_dir_all(root.join("tiny-pkg")).unwrap();
        std::fs::write(root.join("tiny-pkg/tiny_pkg-1.0.tar.gz"), b"abc").unwrap();
        let (head, body) = get(index.port(), "/simple/");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(String::from_utf8_lossy(&body).contains("href=\"/simple/tiny-pkg/\""));
        let (_, body) = get(index.port(), "/simple/Tiny_Pkg/");
        let body = String::from_utf8_lossy(&body).into_owned();
        assert!(
            body.contains(
                "/files/tiny-pkg/tiny_pkg-1.0.tar.gz#sha256=\
                 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            ),
            "{body}"
        );
        let (_, body) = get(index.port(), "/files/tiny-pkg/tiny_pkg-1.0.tar.gz");
        assert_eq!(body, b"abc");
        for missing in [
            "/simple/nope/",
            "/files/../etc/passwd",
            "/x",
            "/files/tiny-pkg/nope",
        ] {
            let (head, _) = get(index.port(), missing);
            assert!(head.starts_with("HTTP/1.1 404"), "{missing}: {head}");
        }
        assert_eq!(index.requests().len(), 7);
        assert!(index.url().starts_with("http://127.0.0.1:"));
        drop(index);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
