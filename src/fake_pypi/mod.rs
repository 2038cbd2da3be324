//! A fake PyPI on 127.0.0.1, for tests and the local demo.
//!
//! It speaks what the master and the build slaves use of PyPI:
//!
//! * XML-RPC `changelog_since_serial` (POST to `/pypi`, or any path) from
//!   a scripted event list, at most 50,000 events per answer as PyPI does;
//! * the JSON API `/pypi/<project>/json` (`info.summary` and the releases);
//! * a PEP 503 simple index, `/simple/` and `/simple/<project>/`, linking
//!   to real sdists generated on the fly (`/packages/<file>`): setuptools
//!   projects, which build offline with `python3 -m pip wheel --no-deps
//!   --no-build-isolation` where setuptools and wheel are installed, or
//!   (`Builder::sdists(SdistKind::InTree)`) projects with an in-tree
//!   backend that build offline with pip alone, build isolation or not
//!   (see [`sdist`]).
//!
//! It can misbehave on request ([`Misbehaviour`]): HTTP errors, 429 with a
//! rate-limit fault, faults, garbage, truncated bodies and stalls. It serves
//! plain HTTP, or HTTPS with a certificate the caller provides
//! ([`FakePypi::start_tls`]). It stops when dropped.
//!
//! ```no_run
//! use piwheels::fake_pypi::{FakePypi, Misbehaviour};
//! let pypi = FakePypi::start();
//! pypi.add_release("Foo_Bar", "1.0");            // create + new release + add source file
//! pypi.set_summary("foo-bar", Some("A foo"));
//! pypi.misbehave(Misbehaviour::Status(500));     // the next XML-RPC call fails
//! pypi.flush_window();                           // let the 5-minute window pass
//! println!("--pypi-xmlrpc {} --pypi-json {}", pypi.xmlrpc_url(), pypi.json_url());
//! ```

pub mod harness;
mod http;
pub mod sdist;

use std::collections::{BTreeMap, VecDeque};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::json;

pub use http::{Request, Response};
pub use sdist::SdistKind;

use crate::pypi::canonicalize;
use crate::pypi::xmlrpc::{escape, fault_response};

/// The first serial a fresh fake hands out: past piwheels' epoch (628000),
/// so an empty database's first poll yields events at once.
pub const FIRST_SERIAL: i64 = 1_000_001;

/// Where the scripted clock starts (2020-09-13T12:26:40Z).
pub const START_TIME: i64 = 1_600_000_000;

/// Most events in one changelog answer, as on PyPI.
pub const PAGE: usize = 50_000;

/// One changelog event, as `changelog_since_serial` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub version: Option<String>,
    pub timestamp: i64,
    pub action: String,
    pub serial: i64,
}

/// A way to misbehave, for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misbehaviour {
    /// Answer with this HTTP status and a plain-text body.
    Status(u16),
    /// HTTP 429 with the fault PyPI sends when rate limiting (-32500).
    RateLimited,
    /// HTTP 200 with this XML-RPC fault.
    Fault(i64, String),
    /// HTTP 200 with a body that is not XML-RPC at all.
    Garbage,
    /// Announce the whole body, send half of it, close the connection.
    Truncated,
    /// Wait this long before answering (normally). Ends early when the
    /// fake is dropped.
    Stall(Duration),
    /// HTTP 200 with exactly this body.
    Body(String),
}

#[derive(Debug, Clone, Default)]
struct Release {
    yanked: bool,
    sdist: bool,
    uploaded: i64,
}

#[derive(Debug, Clone, Default)]
struct Project {
    /// The name as last given.
    name: String,
    summary: Option<String>,
    releases: BTreeMap<String, Release>,
}

#[derive(Debug, Default)]
struct State {
    sdists: sdist::SdistKind,
    events: Vec<Event>,
    next_serial: i64,
    clock: i64,
    projects: BTreeMap<String, Project>,
    page: usize,
    xmlrpc_faults: VecDeque<Misbehaviour>,
    json_faults: VecDeque<Misbehaviour>,
    last_user_agent: Option<String>,
    /// The argument of every changelog call, in order.
    sinces: Vec<i64>,
}

struct Shared {
    state: Mutex<State>,
    stop: Arc<AtomicBool>,
    /// Stalls wait on this; dropping the fake wakes them.
    stall: Condvar,
    changelog_calls: AtomicU64,
    json_calls: AtomicU64,
    file_calls: AtomicU64,
    connections: Arc<AtomicU64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Options for [`FakePypi::builder`].
#[derive(Debug, Clone)]
pub struct Builder {
    port: u16,
    tls: Option<Arc<rustls::ServerConfig>>,
    first_serial: i64,
    page: usize,
    start_time: i64,
    sdists: sdist::SdistKind,
}

impl Builder {
    /// Which kind of sdists to serve (default: setuptools projects).
    pub fn sdists(mut self, kind: sdist::SdistKind) -> Builder {
        self.sdists = kind;
        self
    }

    /// Listen on this port of 127.0.0.1 (0: any free port, the default).
    pub fn port(mut self, port: u16) -> Builder {
        self.port = port;
        self
    }

    /// Serve HTTPS with this certificate chain and key (DER).
    pub fn tls(mut self, chain: Vec<Vec<u8>>, key: Vec<u8>) -> Result<Builder, String> {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain: Vec<CertificateDer<'static>> =
            chain.into_iter().map(CertificateDer::from).collect();
        let key = PrivateKeyDer::try_from(key).map_err(|e| e.to_string())?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| e.to_string())?;
        self.tls = Some(Arc::new(config));
        Ok(self)
    }

    /// The serial of the first event (default [`FIRST_SERIAL`]).
    pub fn first_serial(mut self, serial: i64) -> Builder {
        self.first_serial = serial;
        self
    }

    /// Most events per changelog answer (default [`PAGE`]).
    pub fn page(mut self, page: usize) -> Builder {
        self.page = page.max(1);
        self
    }

    /// Where the scripted clock starts (default [`START_TIME`]).
    pub fn start_time(mut self, t: i64) -> Builder {
        self.start_time = t;
        self
    }

    /// Binds and starts serving.
    pub fn start(self) -> std::io::Result<FakePypi> {
        let listener = TcpListener::bind(("127.0.0.1", self.port))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_serial: self.first_serial,
                clock: self.start_time,
                page: self.page,
                sdists: self.sdists,
                ..State::default()
            }),
            stop: stop.clone(),
            stall: Condvar::new(),
            changelog_calls: AtomicU64::new(0),
            json_calls: AtomicU64::new(0),
            file_calls: AtomicU64::new(0),
            connections: Arc::new(AtomicU64::new(0)),
        });
        let handler_shared = shared.clone();
        let https = self.tls.is_some();
        let server = http::Server::start(
            listener,
            self.tls,
            Arc::new(move |req: &Request| handle(&handler_shared, req)),
            stop,
            shared.connections.clone(),
        )?;
        Ok(FakePypi {
            shared,
            addr,
            https,
            server: Some(server),
        })
    }
}

/// The fake PyPI; see the module documentation.
pub struct FakePypi {
    shared: Arc<Shared>,
    addr: SocketAddr,
    https: bool,
    server: Option<http::Server>,
}

impl std::fmt::Debug for FakePypi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakePypi")
            .field("url", &self.url())
            .finish()
    }
}

impl FakePypi {
    /// Options: port, TLS, first serial, page size, clock.
    pub fn builder() -> Builder {
        Builder {
            port: 0,
            tls: None,
            first_serial: FIRST_SERIAL,
            page: PAGE,
            start_time: START_TIME,
            sdists: sdist::SdistKind::Setuptools,
        }
    }

    /// A plain-HTTP fake on a free port of 127.0.0.1. Panics if it cannot
    /// bind (it is test support).
    pub fn start() -> FakePypi {
        FakePypi::builder()
            .start()
            .expect("cannot start the fake PyPI on 127.0.0.1")
    }

    /// An HTTPS fake with this certificate chain and key (DER).
    pub fn start_tls(chain: Vec<Vec<u8>>, key: Vec<u8>) -> FakePypi {
        FakePypi::builder()
            .tls(chain, key)
            .expect("invalid certificate or key for the fake PyPI")
            .start()
            .expect("cannot start the fake PyPI on 127.0.0.1")
    }

    /// `http://127.0.0.1:PORT` (or `https://localhost:PORT` with TLS, the
    /// name a test certificate is issued for).
    pub fn url(&self) -> String {
        if self.https {
            format!("https://localhost:{}", self.addr.port())
        } else {
            format!("http://127.0.0.1:{}", self.addr.port())
        }
    }

    /// The port served.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// For `--pypi-xmlrpc`.
    pub fn xmlrpc_url(&self) -> String {
        format!("{}/pypi", self.url())
    }

    /// For `--pypi-json`.
    pub fn json_url(&self) -> String {
        format!("{}/pypi", self.url())
    }

    /// For `--pypi-simple` (and pip's `--index-url`).
    pub fn simple_url(&self) -> String {
        format!("{}/simple/", self.url())
    }

    // ---- the scripted clock ------------------------------------------------

    /// The scripted time (Unix seconds) new events get.
    pub fn now(&self) -> i64 {
        self.shared.lock().clock
    }

    /// Sets the scripted time.
    pub fn set_time(&self, t: i64) {
        self.shared.lock().clock = t;
    }

    /// Moves the scripted time on.
    pub fn advance(&self, seconds: i64) {
        self.shared.lock().clock += seconds;
    }

    // ---- raw events --------------------------------------------------------

    /// Appends an event at the scripted time; returns its serial. The
    /// action is free text, so unknown actions and odd names can be
    /// scripted; nothing else (index, JSON) changes.
    pub fn add_event(&self, name: &str, version: Option<&str>, action: &str) -> i64 {
        let mut s = self.shared.lock();
        let t = s.clock;
        push_event(&mut s, name, version, t, action)
    }

    /// Appends an event with its own timestamp; returns its serial.
    pub fn add_event_at(
        &self,
        timestamp: i64,
        name: &str,
        version: Option<&str>,
        action: &str,
    ) -> i64 {
        let mut s = self.shared.lock();
        push_event(&mut s, name, version, timestamp, action)
    }

    /// Appends many events (their serials are assigned in order, the given
    /// ones are ignored); returns the last serial.
    pub fn add_events(&self, events: impl IntoIterator<Item = Event>) -> i64 {
        let mut s = self.shared.lock();
        let mut last = s.next_serial - 1;
        for mut e in events {
            e.serial = s.next_serial;
            s.next_serial += 1;
            last = e.serial;
            s.events.push(e);
        }
        last
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<Event> {
        self.shared.lock().events.clone()
    }

    /// The serial of the latest event (first serial - 1 when none).
    pub fn last_serial(&self) -> i64 {
        self.shared.lock().next_serial - 1
    }

    /// Adds an ignored event ("heartbeat") more than five minutes after the
    /// latest one and moves the clock there, so a follower's ordering
    /// buffer lets every earlier event through.
    pub fn flush_window(&self) -> i64 {
        let mut s = self.shared.lock();
        let latest = s
            .events
            .iter()
            .map(|e| e.timestamp)
            .max()
            .unwrap_or(s.clock);
        let t = latest.max(s.clock) + 301;
        s.clock = t;
        push_event(&mut s, "heartbeat", None, t, "heartbeat")
    }

    // ---- projects and releases (events + index + JSON together) ----------

    /// A new project (a `create` event); returns the serial.
    pub fn create_project(&self, name: &str) -> i64 {
        let mut s = self.shared.lock();
        let t = s.clock;
        ensure_project(&mut s, name);
        push_event(&mut s, name, None, t, "create")
    }

    /// A release with an sdist, as PyPI logs an upload: `create` (if the
    /// project is new), `new release`, `add source file <sdist>`. The sdist
    /// appears in the simple index. Returns the last serial.
    pub fn add_release(&self, name: &str, version: &str) -> i64 {
        let mut s = self.shared.lock();
        let t = s.clock;
        if !s.projects.contains_key(&canonicalize(name)) {
            push_event(&mut s, name, None, t, "create");
        }
        let p = ensure_project(&mut s, name);
        let r = p.releases.entry(version.to_owned()).or_default();
        let new = !r.sdist && r.uploaded == 0;
        r.sdist = true;
        r.uploaded = t;
        if new {
            push_event(&mut s, name, Some(version), t, "new release");
        }
        let file = sdist::sdist_filename(name, version);
        push_event(
            &mut s,
            name,
            Some(version),
            t,
            &format!("add source file {file}"),
        )
    }

    /// A release with only a wheel: `new release`, `add py3 file <wheel>`.
    /// Nothing to build, nothing in the simple index. Returns the serial.
    pub fn add_binary_release(&self, name: &str, version: &str) -> i64 {
        let mut s = self.shared.lock();
        let t = s.clock;
        if !s.projects.contains_key(&canonicalize(name)) {
            push_event(&mut s, name, None, t, "create");
        }
        let p = ensure_project(&mut s, name);
        let r = p.releases.entry(version.to_owned()).or_default();
        r.uploaded = t;
        push_event(&mut s, name, Some(version), t, "new release");
        let wheel = format!("{}-{version}-py3-none-any.whl", sdist::dist_name(name));
        push_event(
            &mut s,
            name,
            Some(version),
            t,
            &format!("add py3 file {wheel}"),
        )
    }

    /// Adds an sdist to an existing (binary-only) release.
    pub fn add_source(&self, name: &str, version: &str) -> i64 {
        let mut s = self.shared.lock();
        let t = s.clock;
        let p = ensure_project(&mut s, name);
        let r = p.releases.entry(version.to_owned()).or_default();
        r.sdist = true;
        r.uploaded = t;
        let file = sdist::sdist_filename(name, version);
        push_event(
            &mut s,
            name,
            Some(version),
            t,
            &format!("add source file {file}"),
        )
    }

    /// `yank release`.
    pub fn yank(&self, name: &str, version: &str) -> i64 {
        self.set_yanked(name, version, true)
    }

    /// `unyank release`.
    pub fn unyank(&self, name: &str, version: &str) -> i64 {
        self.set_yanked(name, version, false)
    }

    fn set_yanked(&self, name: &str, version: &str, yanked: bool) -> i64 {
        let mut s = self.shared.lock();
        let t = s.clock;
        if let Some(r) = s
            .projects
            .get_mut(&canonicalize(name))
            .and_then(|p| p.releases.get_mut(version))
        {
            r.yanked = yanked;
        }
        let action = if yanked {
            "yank release"
        } else {
            "unyank release"
        };
        push_event(&mut s, name, Some(version), t, action)
    }

    /// `remove release`.
    pub fn remove_release(&self, name: &str, version: &str) -> i64 {
        let mut s = self.shared.lock();
        let t = s.clock;
        if let Some(p) = s.projects.get_mut(&canonicalize(name)) {
            p.releases.remove(version);
        }
        push_event(&mut s, name, Some(version), t, "remove release")
    }

    /// `remove project`.
    pub fn remove_project(&self, name: &str) -> i64 {
        let mut s = self.shared.lock();
        let t = s.clock;
        s.projects.remove(&canonicalize(name));
        push_event(&mut s, name, None, t, "remove project")
    }

    /// Sets a project's summary for the JSON API (None: `null`). Creates
    /// the project (without an event) if needed.
    pub fn set_summary(&self, name: &str, summary: Option<&str>) {
        let mut s = self.shared.lock();
        ensure_project(&mut s, name).summary = summary.map(str::to_owned);
    }

    // ---- misbehaviour and observation --------------------------------------

    /// The next XML-RPC request misbehaves (each call queues one more).
    pub fn misbehave(&self, m: Misbehaviour) {
        self.shared.lock().xmlrpc_faults.push_back(m);
    }

    /// The next `n` XML-RPC requests misbehave.
    pub fn misbehave_times(&self, m: Misbehaviour, n: usize) {
        let mut s = self.shared.lock();
        for _ in 0..n {
            s.xmlrpc_faults.push_back(m.clone());
        }
    }

    /// The next JSON API request misbehaves.
    pub fn misbehave_json(&self, m: Misbehaviour) {
        self.shared.lock().json_faults.push_back(m);
    }

    /// Forgets queued misbehaviour.
    pub fn behave(&self) {
        let mut s = self.shared.lock();
        s.xmlrpc_faults.clear();
        s.json_faults.clear();
    }

    /// XML-RPC requests answered so far (misbehaving ones included).
    pub fn changelog_calls(&self) -> u64 {
        self.shared.changelog_calls.load(Ordering::Relaxed)
    }

    /// JSON API requests answered so far.
    pub fn json_calls(&self) -> u64 {
        self.shared.json_calls.load(Ordering::Relaxed)
    }

    /// sdist downloads so far.
    pub fn file_calls(&self) -> u64 {
        self.shared.file_calls.load(Ordering::Relaxed)
    }

    /// The `User-Agent` of the latest XML-RPC request.
    pub fn last_user_agent(&self) -> Option<String> {
        self.shared.lock().last_user_agent.clone()
    }

    /// The argument of the latest `changelog_since_serial` call.
    pub fn last_since(&self) -> Option<i64> {
        self.shared.lock().sinces.last().copied()
    }

    /// The argument of every `changelog_since_serial` call so far.
    pub fn sinces(&self) -> Vec<i64> {
        self.shared.lock().sinces.clone()
    }

    /// TCP connections accepted so far (to see connection reuse).
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }
}

impl Drop for FakePypi {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        {
            let _guard = self.shared.lock();
            self.shared.stall.notify_all();
        }
        drop(self.server.take());
    }
}

fn push_event(s: &mut State, name: &str, version: Option<&str>, t: i64, action: &str) -> i64 {
    let serial = s.next_serial;
    s.next_serial += 1;
    s.events.push(Event {
        name: name.to_owned(),
        version: version.map(str::to_owned),
        timestamp: t,
        action: action.to_owned(),
        serial,
    });
    serial
}

fn ensure_project<'a>(s: &'a mut State, name: &str) -> &'a mut Project {
    let p = s.projects.entry(canonicalize(name)).or_default();
    p.name = name.to_owned();
    p
}

// ---- request handling ------------------------------------------------------

fn handle(shared: &Shared, req: &Request) -> Response {
    let path = req.path.as_str();
    if req.method == "POST" {
        return changelog(shared, req);
    }
    if req.method != "GET" && req.method != "HEAD" {
        return Response::text(405, "method not allowed");
    }
    if let Some(rest) = path.strip_prefix("/pypi/") {
        if let Some(project) = rest.strip_suffix("/json") {
            return project_json(shared, &percent_decode(project));
        }
    }
    if path == "/simple" || path == "/simple/" {
        return simple_index(shared);
    }
    if let Some(rest) = path.strip_prefix("/simple/") {
        return simple_project(shared, &percent_decode(rest.trim_end_matches('/')));
    }
    if let Some(file) = path.strip_prefix("/packages/") {
        return package_file(shared, &percent_decode(file));
    }
    Response::text(404, "not found")
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Applies the next queued misbehaviour; `Some` is the response to send
/// instead of the real one (after a stall, `None`: answer normally).
fn misbehaviour(
    shared: &Shared,
    m: Option<Misbehaviour>,
    normal: impl FnOnce() -> Response,
) -> Response {
    let xml = "text/xml";
    match m {
        None => normal(),
        Some(Misbehaviour::Status(code)) => Response::text(code, format!("fake PyPI error {code}")),
        Some(Misbehaviour::RateLimited) => Response::new(
            429,
            xml,
            fault_response(
                -32500,
                "HTTPTooManyRequests: The action could not be performed because there were too \
                 many requests by the client. Limit may reset in 1 seconds.",
            ),
        ),
        Some(Misbehaviour::Fault(code, message)) => {
            Response::new(200, xml, fault_response(code, &message))
        }
        Some(Misbehaviour::Garbage) => Response::new(
            200,
            xml,
            "<html><head><title>Oops</title></head><body>\u{0}\u{1}<<< not XML-RPC &&& </body>",
        ),
        Some(Misbehaviour::Body(body)) => Response::new(200, xml, body),
        Some(Misbehaviour::Truncated) => {
            let mut r = normal();
            r.truncate_at = Some(r.body.len() / 2);
            r
        }
        Some(Misbehaviour::Stall(d)) => {
            let deadline = std::time::Instant::now() + d;
            let mut guard = shared.lock();
            while !shared.stop.load(Ordering::Relaxed) {
                let now = std::time::Instant::now();
                if now >= deadline {
                    break;
                }
                guard = shared
                    .stall
                    .wait_timeout(guard, deadline - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            drop(guard);
            normal()
        }
    }
}

/// The method and first integer argument of an XML-RPC call.
fn parse_call(body: &[u8]) -> Result<(String, Option<i64>), String> {
    use quick_xml::events::Event as X;
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut buf = Vec::new();
    let mut method = None;
    let mut arg = None;
    let mut in_method = false;
    let mut in_int = false;
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(X::Start(e)) => match e.local_name().as_ref() {
                b"methodName" => in_method = true,
                b"int" | b"i4" | b"i8" => in_int = true,
                _ => {}
            },
            Ok(X::End(_)) => {
                in_method = false;
                in_int = false;
            }
            Ok(X::Text(t)) => {
                let text = t.decode().map_err(|e| e.to_string())?.trim().to_owned();
                if in_method {
                    method = Some(text);
                } else if in_int && arg.is_none() {
                    arg = text.parse().ok();
                }
            }
            Ok(X::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
        buf.clear();
    }
    method
        .map(|m| (m, arg))
        .ok_or_else(|| "no methodName".to_owned())
}

fn changelog(shared: &Shared, req: &Request) -> Response {
    shared.changelog_calls.fetch_add(1, Ordering::Relaxed);
    let m = {
        let mut s = shared.lock();
        s.last_user_agent = req.header("user-agent").map(str::to_owned);
        s.xmlrpc_faults.pop_front()
    };
    misbehaviour(shared, m, || {
        let (method, since) = match parse_call(&req.body) {
            Ok(c) => c,
            Err(e) => {
                return Response::new(
                    200,
                    "text/xml",
                    fault_response(1, &format!("bad call: {e}")),
                );
            }
        };
        if method != "changelog_since_serial" {
            return Response::new(
                200,
                "text/xml",
                fault_response(1, &format!("method {method:?} is not supported")),
            );
        }
        let Some(since) = since else {
            return Response::new(
                200,
                "text/xml",
                fault_response(1, "serial argument missing"),
            );
        };
        let s = &mut *shared.lock();
        s.sinces.push(since);
        let start = s.events.partition_point(|e| e.serial <= since);
        let end = (start + s.page).min(s.events.len());
        Response::new(200, "text/xml", changelog_xml(&s.events[start..end]))
    })
}

/// The XML Python's xmlrpc.server writes for a list of 5-tuples.
pub fn changelog_xml(events: &[Event]) -> Vec<u8> {
    use std::fmt::Write;
    let mut out = String::with_capacity(64 + events.len() * 300);
    out.push_str(
        "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><array><data>\n",
    );
    for e in events {
        out.push_str("<value><array><data>\n");
        let _ = writeln!(out, "<value><string>{}</string></value>", escape(&e.name));
        match &e.version {
            Some(v) => {
                let _ = writeln!(out, "<value><string>{}</string></value>", escape(v));
            }
            None => out.push_str("<value><nil/></value>\n"),
        }
        let _ = writeln!(out, "<value><int>{}</int></value>", e.timestamp);
        let _ = writeln!(out, "<value><string>{}</string></value>", escape(&e.action));
        let _ = writeln!(out, "<value><int>{}</int></value>", e.serial);
        out.push_str("</data></array></value>\n");
    }
    out.push_str("</data></array></value>\n</param>\n</params>\n</methodResponse>\n");
    out.into_bytes()
}

fn project_json(shared: &Shared, name: &str) -> Response {
    shared.json_calls.fetch_add(1, Ordering::Relaxed);
    let m = shared.lock().json_faults.pop_front();
    misbehaviour(shared, m, || {
        let s = shared.lock();
        let Some(p) = s.projects.get(&canonicalize(name)) else {
            return Response::new(404, "application/json", r#"{"message": "Not Found"}"#);
        };
        let mut releases = serde_json::Map::new();
        for (v, r) in &p.releases {
            let files = if r.sdist {
                let file = sdist::sdist_filename(&p.name, v);
                vec![json!({
                    "filename": file,
                    "packagetype": "sdist",
                    "url": format!("/packages/{file}"),
                    "yanked": r.yanked,
                })]
            } else {
                vec![]
            };
            releases.insert(v.clone(), json!(files));
        }
        let doc = json!({
            "info": {
                "name": p.name,
                "summary": p.summary,
                "version": p.releases.keys().next_back(),
            },
            "releases": releases,
            "urls": [],
        });
        Response::new(200, "application/json", doc.to_string())
    })
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn simple_index(shared: &Shared) -> Response {
    let s = shared.lock();
    let mut html = String::from(
        "<!DOCTYPE html>\n<html>\n<head><meta name=\"pypi:repository-version\" content=\"1.0\">\
         <title>Simple index</title></head>\n<body>\n",
    );
    for canon in s.projects.keys() {
        let c = html_escape(canon);
        html.push_str(&format!("<a href=\"/simple/{c}/\">{c}</a><br/>\n"));
    }
    html.push_str("</body>\n</html>\n");
    Response::new(200, "text/html; charset=utf-8", html)
}

fn simple_project(shared: &Shared, name: &str) -> Response {
    let canon = canonicalize(name);
    if canon != name {
        let mut r = Response::text(301, "moved");
        r.headers.push(("Location", format!("/simple/{canon}/")));
        return r;
    }
    let s = shared.lock();
    let Some(p) = s.projects.get(&canon) else {
        return Response::text(404, "not found");
    };
    let mut html = format!(
        "<!DOCTYPE html>\n<html>\n<head><meta name=\"pypi:repository-version\" content=\"1.0\">\
         <title>Links for {0}</title></head>\n<body>\n<h1>Links for {0}</h1>\n",
        html_escape(&canon)
    );
    for (v, r) in &p.releases {
        if !r.sdist {
            continue;
        }
        let file = html_escape(&sdist::sdist_filename(&p.name, v));
        let yanked = if r.yanked { " data-yanked=\"\"" } else { "" };
        html.push_str(&format!(
            "<a href=\"/packages/{file}\"{yanked}>{file}</a><br/>\n"
        ));
    }
    html.push_str("</body>\n</html>\n");
    Response::new(200, "text/html; charset=utf-8", html)
}

fn package_file(shared: &Shared, file: &str) -> Response {
    shared.file_calls.fetch_add(1, Ordering::Relaxed);
    let s = shared.lock();
    for p in s.projects.values() {
        for (v, r) in &p.releases {
            if r.sdist && sdist::sdist_filename(&p.name, v) == file {
                let summary = p.summary.clone().unwrap_or_default();
                let bytes = sdist::sdist_of(s.sdists, &p.name, v, &summary, r.uploaded);
                return Response::new(200, "application/gzip", bytes);
            }
        }
    }
    Response::text(404, "not found")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_calls() {
        let body = crate::pypi::xmlrpc::changelog_request(42);
        assert_eq!(
            parse_call(body.as_bytes()).unwrap(),
            ("changelog_since_serial".to_owned(), Some(42))
        );
        assert!(parse_call(b"<methodCall></methodCall>").is_err());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2Fc"), "a b/c");
        assert_eq!(percent_decode("bad%zz%"), "bad%zz%");
        assert_eq!(percent_decode("%41"), "A");
        assert_eq!(percent_decode("%\u{e9}x"), "%\u{e9}x");
    }

    #[test]
    fn changelog_xml_round_trips_through_our_parser() {
        let events = vec![
            Event {
                name: "A&B<c>".into(),
                version: None,
                timestamp: 5,
                action: "create".into(),
                serial: 9,
            },
            Event {
                name: "x".into(),
                version: Some("1.0".into()),
                timestamp: 6,
                action: "yank release".into(),
                serial: 10,
            },
        ];
        let xml = changelog_xml(&events);
        let mut got = Vec::new();
        crate::pypi::xmlrpc::parse_changelog(&xml[..], |e| got.push(e)).unwrap();
        assert_eq!(&*got[0].name, "A&B<c>");
        assert_eq!(got[1].version.as_deref(), Some("1.0"));
        assert_eq!(got[1].serial, 10);
    }
}
