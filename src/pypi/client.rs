//! The PyPI client: HTTP on one small worker thread, results picked up by
//! the poll loop without blocking.
//!
//! The master is one `zmq::poll` loop, so no network call may run on it.
//! [`PypiClient`] owns a worker thread that does the HTTP (ureq, with
//! connection reuse): `changelog_since_serial` over XML-RPC, parsed as it
//! streams in, and project descriptions from the JSON API. The loop hands it
//! work with [`PypiClient::fetch_changelog`] and
//! [`PypiClient::request_description`], both of which return at once, and
//! learns that results are ready when the client's inproc PAIR socket
//! becomes readable in its `zmq::poll` ([`PypiClient::poll_item`]); it then
//! calls [`PypiClient::on_ready`] to take them.
//!
//! Everything is bounded: one changelog request in flight, a queue of
//! descriptions to fetch (full → the request is dropped, with a debug log),
//! an LRU of 100 descriptions, timeouts on every network step, and
//! [`PypiClient::shutdown`] (also on drop) interrupts a request in flight
//! and joins the thread.
//!
//! HTTPS uses the system trust store (`SSL_CERT_FILE` and `SSL_CERT_DIR`
//! are honoured, so a mirror with a site CA works); `ALL_PROXY`,
//! `HTTPS_PROXY`, `HTTP_PROXY` (tried in that order) and `NO_PROXY` are
//! honoured; the URL's scheme is used as given (piwheels forces https for
//! XML-RPC; we do not).

use std::collections::{HashSet, VecDeque};
use std::io::BufReader;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::description::{SummaryError, read_summary};
use super::lru::Lru;
use super::xmlrpc::{ChangelogEntry, XmlRpcError, changelog_request, parse_changelog};
use super::{LOG_TARGET, USER_AGENT};

/// Tunables of a [`PypiClient`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The XML-RPC endpoint (`--pypi-xmlrpc`, e.g. `https://pypi.org/pypi`).
    pub xmlrpc_url: String,
    /// The root of the JSON API (`--pypi-json`, e.g. `https://pypi.org/pypi`);
    /// a description is read from `<root>/<package>/json`.
    pub json_url: String,
    /// Limit on each network step: name lookup, connecting, and every read
    /// or write (piwheels: 10 s).
    pub timeout: Duration,
    /// Limit on a whole request, however steadily the server trickles.
    pub total_timeout: Duration,
    /// Most description requests waiting for the worker.
    pub description_queue: usize,
    /// Descriptions remembered (piwheels: an LRU of 100).
    pub description_cache: usize,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl ClientConfig {
    /// Defaults for the given endpoints: 10 s per step, 120 s per request,
    /// 1000 queued descriptions, 100 cached.
    pub fn new(xmlrpc_url: &str, json_url: &str) -> ClientConfig {
        ClientConfig {
            xmlrpc_url: xmlrpc_url.to_owned(),
            json_url: json_url.to_owned(),
            timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(120),
            description_queue: 1000,
            description_cache: 100,
            user_agent: USER_AGENT.to_owned(),
        }
    }
}

/// Why a request to PyPI gave nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The server answered with an HTTP error status.
    Status(u16),
    /// An XML-RPC fault (PyPI: -32500 when rate limited), with the HTTP
    /// status it came with.
    Fault {
        status: u16,
        code: i64,
        message: String,
    },
    /// A step took longer than its timeout.
    Timeout(String),
    /// Connecting, TLS, a proxy, a redirect loop, or reading the body failed.
    Transport(String),
    /// The answer was not what was asked for (garbage, truncated XML,
    /// invalid JSON).
    Malformed(String),
    /// The client was shut down first.
    Shutdown,
}

impl FetchError {
    /// PyPI is asking us to slow down (HTTP 429 or fault -32500).
    pub fn is_rate_limited(&self) -> bool {
        matches!(
            self,
            FetchError::Status(429)
                | FetchError::Fault { code: -32500, .. }
                | FetchError::Fault { status: 429, .. }
        )
    }

    /// The kind of failure without its details (to log a run of the same
    /// failure once).
    pub fn kind(&self) -> String {
        match self {
            FetchError::Status(s) => format!("HTTP {s}"),
            FetchError::Fault { code, .. } => format!("fault {code}"),
            FetchError::Timeout(_) => "timeout".into(),
            FetchError::Transport(_) => "transport".into(),
            FetchError::Malformed(_) => "malformed".into(),
            FetchError::Shutdown => "shutdown".into(),
        }
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Status(s) => write!(f, "HTTP status {s}"),
            FetchError::Fault {
                status,
                code,
                message,
            } => {
                if self.is_rate_limited() {
                    write!(f, "rate limited: ")?;
                }
                write!(
                    f,
                    "XML-RPC fault {code} (HTTP {status}): {}",
                    super::xmlrpc::shorten(message, 200)
                )
            }
            FetchError::Timeout(what) => write!(f, "timed out: {what}"),
            FetchError::Transport(what) => write!(f, "{what}"),
            FetchError::Malformed(what) => write!(f, "{what}"),
            FetchError::Shutdown => write!(f, "the PyPI client is shutting down"),
        }
    }
}

impl std::error::Error for FetchError {}

/// A finished piece of work, from [`PypiClient::on_ready`].
#[derive(Debug)]
pub enum Reply {
    /// The answer to [`PypiClient::fetch_changelog`]`(since)`.
    Changelog {
        since: i64,
        result: Result<Vec<ChangelogEntry>, FetchError>,
        /// How long the request and parse took.
        elapsed: Duration,
    },
    /// A description fetched for [`PypiClient::request_description`]:
    /// `Err` means "no description" (0.23's None).
    Description {
        package: String,
        result: Result<String, FetchError>,
    },
}

/// What [`PypiClient::request_description`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The description was in the cache: here it is.
    Cached(String),
    /// Queued; it will arrive as a [`Reply::Description`].
    Queued,
    /// Already queued or being fetched.
    Pending,
    /// The queue is full: not fetched.
    Dropped,
}

enum Job {
    Changelog(i64),
    Description(String),
}

#[derive(Default)]
struct Jobs {
    changelog: Option<i64>,
    descriptions: VecDeque<String>,
    stop: bool,
}

struct Shared {
    jobs: Mutex<Jobs>,
    cond: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Jobs> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The PyPI client; see the module documentation.
pub struct PypiClient {
    shared: Arc<Shared>,
    replies: mpsc::Receiver<Reply>,
    /// The loop's end of the wake-up PAIR.
    wake: zmq::Socket,
    agent: ureq::Agent,
    thread: Option<JoinHandle<()>>,
    changelog_in_flight: bool,
    /// Descriptions queued or being fetched.
    pending: HashSet<String>,
    cache: Lru<String, String>,
    queue_limit: usize,
    dropped: u64,
}

impl std::fmt::Debug for PypiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PypiClient")
            .field("changelog_in_flight", &self.changelog_in_flight)
            .field("pending_descriptions", &self.pending.len())
            .finish()
    }
}

/// How long [`PypiClient::shutdown`] waits for the worker.
const JOIN_GRACE: Duration = Duration::from_secs(2);

/// Most bytes read of one project's JSON.
const MAX_JSON_BYTES: u64 = 64 << 20;

fn is_https(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// The system's trust anchors, as rustls-native-certs finds them (it reads
/// `SSL_CERT_FILE` / `SSL_CERT_DIR` when set, else the distribution's
/// bundle).
fn system_roots() -> Vec<ureq::tls::Certificate<'static>> {
    let found = rustls_native_certs::load_native_certs();
    for e in found.errors.iter().take(3) {
        log::warn!(target: LOG_TARGET, "reading the system's CA certificates: {e}");
    }
    if found.certs.is_empty() {
        log::warn!(
            target: LOG_TARGET,
            "no CA certificates found (set SSL_CERT_FILE?): HTTPS to PyPI will fail"
        );
    }
    found
        .certs
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .collect()
}

fn build_agent(config: &ClientConfig) -> ureq::Agent {
    use ureq::tls::{RootCerts, TlsConfig};
    let mut tls = TlsConfig::builder()
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()));
    if is_https(&config.xmlrpc_url) || is_https(&config.json_url) {
        tls = tls.root_certs(RootCerts::new_with_certs(&system_roots()));
    } else {
        // Plain http: no trust anchors needed (an https redirect fails).
        tls = tls.root_certs(RootCerts::new_with_certs(&[]));
    }
    let t = Some(config.timeout);
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .user_agent(config.user_agent.as_str())
        .timeout_global(Some(config.total_timeout))
        .timeout_resolve(t)
        .timeout_connect(t)
        .timeout_send_request(t)
        .timeout_per_read(t)
        .timeout_per_write(t)
        .max_redirects(10)
        .max_idle_connections(4)
        .max_idle_connections_per_host(2)
        .tls_config(tls.build())
        .build()
        .into()
}

fn transport_error(e: ureq::Error) -> FetchError {
    match e {
        ureq::Error::Timeout(t) => FetchError::Timeout(t.to_string()),
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            FetchError::Timeout(io.to_string())
        }
        other => FetchError::Transport(other.to_string()),
    }
}

fn io_error(e: std::io::Error) -> FetchError {
    if e.kind() == std::io::ErrorKind::TimedOut {
        FetchError::Timeout(e.to_string())
    } else {
        FetchError::Transport(format!("reading the response: {e}"))
    }
}

/// Percent-encodes a package name for a URL path segment.
fn path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `<root>/<package>/json`.
pub fn json_url(root: &str, package: &str) -> String {
    format!(
        "{}/{}/json",
        root.trim_end_matches('/'),
        path_segment(package)
    )
}

struct Worker {
    agent: ureq::Agent,
    xmlrpc_url: String,
    json_url: String,
    shared: Arc<Shared>,
    replies: mpsc::Sender<Reply>,
    wake: zmq::Socket,
}

impl Worker {
    fn run(self) {
        loop {
            let job = {
                let mut jobs = self.shared.lock();
                loop {
                    if jobs.stop {
                        return;
                    }
                    if let Some(since) = jobs.changelog.take() {
                        break Job::Changelog(since);
                    }
                    if let Some(p) = jobs.descriptions.pop_front() {
                        break Job::Description(p);
                    }
                    jobs = self
                        .shared
                        .cond
                        .wait(jobs)
                        .unwrap_or_else(|e| e.into_inner());
                }
            };
            let reply = match job {
                Job::Changelog(since) => {
                    let start = Instant::now();
                    let result = self.changelog(since);
                    Reply::Changelog {
                        since,
                        result,
                        elapsed: start.elapsed(),
                    }
                }
                Job::Description(package) => {
                    let result = self.description(&package);
                    Reply::Description { package, result }
                }
            };
            if self.replies.send(reply).is_err() {
                return;
            }
            // A full pipe means a wake-up is already pending: fine.
            let _ = self.wake.send(&b""[..], zmq::DONTWAIT);
        }
    }

    fn stopping(&self) -> bool {
        self.shared.lock().stop
    }

    fn changelog(&self, since: i64) -> Result<Vec<ChangelogEntry>, FetchError> {
        let body = changelog_request(since);
        let response = self
            .agent
            .post(&self.xmlrpc_url)
            .header("Content-Type", "text/xml")
            .send(body.as_bytes())
            .map_err(|e| {
                if self.stopping() {
                    FetchError::Shutdown
                } else {
                    transport_error(e)
                }
            })?;
        let status = response.status().as_u16();
        let reader = BufReader::with_capacity(64 << 10, response.into_body().into_reader());
        let mut entries = Vec::new();
        let parsed = parse_changelog(reader, |e| entries.push(e));
        match (status, parsed) {
            (200, Ok(_)) => Ok(entries),
            (status, Err(XmlRpcError::Fault { code, message })) => Err(FetchError::Fault {
                status,
                code,
                message,
            }),
            (200, Err(XmlRpcError::Io(e))) => Err(if self.stopping() {
                FetchError::Shutdown
            } else {
                io_error(e)
            }),
            (200, Err(e)) => Err(FetchError::Malformed(e.to_string())),
            (status, _) => Err(FetchError::Status(status)),
        }
    }

    fn description(&self, package: &str) -> Result<String, FetchError> {
        description(&self.agent, &self.json_url, package)
    }
}

/// One description, fetched in the calling thread (piw-add's lookup).
pub fn fetch_description(config: &ClientConfig, package: &str) -> Result<String, FetchError> {
    description(&build_agent(config), &config.json_url, package)
}

fn description(agent: &ureq::Agent, json_root: &str, package: &str) -> Result<String, FetchError> {
    let url = json_url(json_root, package);
    let response = agent.get(&url).call().map_err(transport_error)?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(FetchError::Status(status));
    }
    let reader = response
        .into_body()
        .into_with_config()
        .limit(MAX_JSON_BYTES)
        .reader();
    read_summary(reader).map_err(|e| match e {
        SummaryError::Invalid(why) if why.contains("timed out") => FetchError::Timeout(why),
        other => FetchError::Malformed(other.to_string()),
    })
}

static ENDPOINTS: AtomicU64 = AtomicU64::new(0);

impl PypiClient {
    /// Starts the worker thread. `ctx` is the master's context (the wake-up
    /// PAIR is an inproc pair, which must live in the loop's context).
    pub fn new(config: ClientConfig, ctx: &zmq::Context) -> Result<PypiClient, zmq::Error> {
        let endpoint = format!(
            "inproc://piwheels-pypi-{}-{}",
            std::process::id(),
            ENDPOINTS.fetch_add(1, Ordering::Relaxed)
        );
        let wake = ctx.socket(zmq::PAIR)?;
        wake.set_linger(0)?;
        wake.bind(&endpoint)?;
        let worker_wake = ctx.socket(zmq::PAIR)?;
        worker_wake.set_linger(0)?;
        worker_wake.connect(&endpoint)?;
        let agent = build_agent(&config);
        let shared = Arc::new(Shared {
            jobs: Mutex::new(Jobs::default()),
            cond: Condvar::new(),
        });
        let (tx, rx) = mpsc::channel();
        let worker = Worker {
            agent: agent.clone(),
            xmlrpc_url: config.xmlrpc_url.clone(),
            json_url: config.json_url.clone(),
            shared: shared.clone(),
            replies: tx,
            wake: worker_wake,
        };
        let thread = std::thread::Builder::new()
            .name("pypi".into())
            .spawn(move || worker.run())
            .map_err(|_| zmq::Error::EMFILE)?;
        Ok(PypiClient {
            shared,
            replies: rx,
            wake,
            agent,
            thread: Some(thread),
            changelog_in_flight: false,
            pending: HashSet::new(),
            cache: Lru::new(config.description_cache),
            queue_limit: config.description_queue.max(1),
            dropped: 0,
        })
    }

    /// The socket to add to `zmq::poll` (readable: call
    /// [`PypiClient::on_ready`]).
    pub fn socket(&self) -> &zmq::Socket {
        &self.wake
    }

    /// A `PollItem` for [`PypiClient::socket`], `POLLIN`.
    pub fn poll_item(&self) -> zmq::PollItem<'_> {
        self.wake.as_poll_item(zmq::POLLIN)
    }

    /// Asks for `changelog_since_serial(since)`. Returns false (and does
    /// nothing) while one is already in flight.
    pub fn fetch_changelog(&mut self, since: i64) -> bool {
        if self.changelog_in_flight {
            return false;
        }
        self.changelog_in_flight = true;
        self.shared.lock().changelog = Some(since);
        self.shared.cond.notify_one();
        true
    }

    /// True while a changelog request is in flight.
    pub fn changelog_in_flight(&self) -> bool {
        self.changelog_in_flight
    }

    /// Asks for the description of `package` (its canonical name).
    pub fn request_description(&mut self, package: &str) -> Lookup {
        if let Some(d) = self.cache.get_mut(&package.to_owned()) {
            return Lookup::Cached(d.clone());
        }
        if self.pending.contains(package) {
            return Lookup::Pending;
        }
        {
            let mut jobs = self.shared.lock();
            if jobs.descriptions.len() >= self.queue_limit {
                self.dropped += 1;
                log::debug!(
                    target: LOG_TARGET,
                    "description queue full ({} waiting): not fetching {package}",
                    jobs.descriptions.len()
                );
                return Lookup::Dropped;
            }
            jobs.descriptions.push_back(package.to_owned());
        }
        self.pending.insert(package.to_owned());
        self.shared.cond.notify_one();
        Lookup::Queued
    }

    /// Descriptions queued or being fetched.
    pub fn descriptions_pending(&self) -> usize {
        self.pending.len()
    }

    /// Description requests dropped because the queue was full.
    pub fn descriptions_dropped(&self) -> u64 {
        self.dropped
    }

    /// Takes every finished result (never blocks). Call when the socket is
    /// readable; calling it at other times is harmless.
    pub fn on_ready(&mut self) -> Vec<Reply> {
        // Drain the wake-ups first: a result sent after the channel is
        // drained below comes with a new wake-up.
        while self.wake.recv_bytes(zmq::DONTWAIT).is_ok() {}
        let mut out = Vec::new();
        while let Ok(reply) = self.replies.try_recv() {
            match &reply {
                Reply::Changelog { .. } => self.changelog_in_flight = false,
                Reply::Description { package, result } => {
                    self.pending.remove(package);
                    if let Ok(d) = result {
                        self.cache.insert(package.clone(), d.clone());
                    }
                }
            }
            out.push(reply);
        }
        out
    }

    /// Stops the worker: interrupts a request in flight and joins the
    /// thread (waiting at most about two seconds: a TCP connect in progress
    /// cannot be interrupted and is left to its own timeout).
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        {
            let mut jobs = self.shared.lock();
            jobs.stop = true;
            jobs.descriptions.clear();
            jobs.changelog = None;
        }
        self.shared.cond.notify_all();
        self.agent.clone().shutdown();
        let deadline = Instant::now() + JOIN_GRACE;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            log::warn!(
                target: LOG_TARGET,
                "the PyPI worker is still connecting; leaving it to its timeout"
            );
        }
    }
}

impl Drop for PypiClient {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_urls() {
        assert_eq!(
            json_url("https://pypi.org/pypi", "foo-bar"),
            "https://pypi.org/pypi/foo-bar/json"
        );
        assert_eq!(
            json_url("http://x/pypi/", "a b/c"),
            "http://x/pypi/a%20b%2Fc/json"
        );
    }

    #[test]
    fn rate_limits_are_recognised() {
        assert!(FetchError::Status(429).is_rate_limited());
        assert!(
            FetchError::Fault {
                status: 200,
                code: -32500,
                message: String::new()
            }
            .is_rate_limited()
        );
        assert!(!FetchError::Status(500).is_rate_limited());
        assert!(
            FetchError::Fault {
                status: 429,
                code: -32500,
                message: "slow".into()
            }
            .to_string()
            .starts_with("rate limited")
        );
    }

    #[test]
    fn schemes() {
        assert!(is_https("HTTPS://pypi.org"));
        assert!(!is_https("http://pypi.org"));
        assert!(!is_https("http"));
    }
}
