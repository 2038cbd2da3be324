//! piw-logger: an Apache/nginx piped-log program. Reads access-log lines
//! from stdin (or the files given), classifies them as piwheels 0.23 does
//! (`piwheels::logger`) and pushes the hits to the master's log queue.
//!
//! Without `--drop` it first waits (up to 5 s) for the master's log queue,
//! then waits as long as it takes for room in it, as piwheels' logger does;
//! with `--drop` it never waits more than 10 ms for a hit and counts what it
//! drops.
//!
//! Exit status: 0 when every file was read (bad lines are reported and
//! skipped, not fatal); 1 when the log queue cannot be reached (without
//! `--drop`), a file cannot be read, or sending fails; 2 for usage errors.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use piwheels::config::logger::{Command, LoggerConfig};
use piwheels::logger::{LogFormat, Outcome, Tally, excerpt, process_line};
use piwheels::logging;
use piwheels::monitor::client::ConnectWatch;
use piwheels::protocol::{LogMessage, WireMessage};

const TARGET: &str = "piw-logger";

/// Longer lines are skipped (Apache's own request-line and header limits
/// keep real lines far below this).
const MAX_LINE: usize = 64 << 10;

/// `--drop`: how long to wait for room in the queue (piwheels 0.23: 10 ms).
const DROP_WAIT_MS: i64 = 10;

/// Without `--drop`: how long to wait for the master's log queue.
const CONNECT_WAIT: Duration = Duration::from_secs(5);

/// Bad lines shown individually; the rest are counted.
const SHOW_BAD: u64 = 100;

fn main() -> ExitCode {
    let config = match LoggerConfig::from_env() {
        Ok(Command::Run(c)) => c,
        Ok(Command::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version(v)) => {
            println!("{v}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = logging::init(&config.log) {
        logging::eprintln_error(TARGET, &e.to_string());
        return ExitCode::from(2);
    }
    log::info!(target: TARGET, "PiWheels Logger version {}", piwheels::VERSION);
    match run(&config) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            log::error!(target: TARGET, "{e}");
            ExitCode::FAILURE
        }
    }
}

/// Pushes messages to the log queue, counting what happens.
struct Sender {
    queue: zmq::Socket,
    drop: bool,
    tally: Tally,
}

impl Sender {
    fn send(&mut self, msg: &LogMessage) -> Result<(), String> {
        let kind = piwheels::logger::LogType::of(msg).index();
        let bytes = msg.encode();
        if !self.drop {
            // Waits for the master, as piwheels' logger does without --drop.
            self.queue
                .send(bytes, 0)
                .map_err(|e| format!("cannot send to the log queue: {e}"))?;
            self.tally.sent[kind] += 1;
            return Ok(());
        }
        let room = matches!(self.queue.poll(zmq::POLLOUT, DROP_WAIT_MS), Ok(n) if n > 0);
        let sent = room
            && match self.queue.send(bytes, zmq::DONTWAIT) {
                Ok(()) => true,
                Err(zmq::Error::EAGAIN) => false,
                Err(e) => return Err(format!("cannot send to the log queue: {e}")),
            };
        if sent {
            self.tally.sent[kind] += 1;
        } else {
            self.tally.dropped += 1;
            if self.tally.dropped == 1 || self.tally.dropped % 1000 == 0 {
                log::warn!(
                    target: TARGET,
                    "dropping log entries: the master's log queue is full or gone \
                     ({} dropped so far)",
                    self.tally.dropped
                );
            }
        }
        Ok(())
    }
}

fn open(name: &str) -> io::Result<Box<dyn BufRead>> {
    if name == "-" {
        log::info!(target: TARGET, "Processing log entries from stdin");
        return Ok(Box::new(BufReader::with_capacity(64 << 10, io::stdin())));
    }
    let file = File::open(name)?;
    if name.ends_with(".gz") {
        log::info!(target: TARGET, "Processing gzipped log {name}");
        Ok(Box::new(BufReader::with_capacity(
            64 << 10,
            flate2::read::MultiGzDecoder::new(file),
        )))
    } else {
        log::info!(target: TARGET, "Processing log {name}");
        Ok(Box::new(BufReader::with_capacity(64 << 10, file)))
    }
}

/// Reads the next line into `buf` (without its terminator). `Ok(None)` at
/// the end, `Ok(Some(false))` for a line longer than [`MAX_LINE`] (skipped
/// to its end).
fn next_line(reader: &mut dyn BufRead, buf: &mut Vec<u8>) -> io::Result<Option<bool>> {
    buf.clear();
    let n = io::Read::take(&mut *reader, MAX_LINE as u64 + 1).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        return Ok(Some(true));
    }
    if buf.len() <= MAX_LINE {
        return Ok(Some(true)); // the last line, without a newline
    }
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            break;
        }
        if let Some(p) = available.iter().position(|&b| b == b'\n') {
            reader.consume(p + 1);
            break;
        }
        let len = available.len();
        reader.consume(len);
    }
    Ok(Some(false))
}

/// Why reading a file stopped early.
enum Failure {
    /// The file could not be read (the next one is tried).
    Read(String),
    /// The queue failed (nothing more can be sent).
    Send(String),
}

fn process(
    name: &str,
    reader: &mut dyn BufRead,
    format: &LogFormat,
    sender: &mut Sender,
) -> Result<(), Failure> {
    let mut buf = Vec::with_capacity(4096);
    let mut lineno = 0u64;
    let bad = |tally: &mut Tally, lineno: u64, why: &str, line: &str| {
        tally.bad += 1;
        if tally.bad <= SHOW_BAD {
            log::warn!(
                target: TARGET,
                "{name}:{lineno}: skipped: {why}: {}",
                excerpt(line, 80)
            );
            if tally.bad == SHOW_BAD {
                log::warn!(target: TARGET, "further bad lines are counted, not shown");
            }
        }
    };
    loop {
        let whole = match next_line(reader, &mut buf) {
            Ok(Some(whole)) => whole,
            Ok(None) => return Ok(()),
            Err(e) => return Err(Failure::Read(format!("cannot read {name}: {e}"))),
        };
        lineno += 1;
        sender.tally.lines += 1;
        let line = String::from_utf8_lossy(&buf);
        if !whole {
            bad(
                &mut sender.tally,
                lineno,
                &format!("longer than {MAX_LINE} bytes"),
                &line,
            );
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        match process_line(format, &line) {
            Outcome::Send(msg) => sender.send(&msg).map_err(Failure::Send)?,
            Outcome::Ignored(_) => sender.tally.ignored += 1,
            Outcome::Bad(e) => bad(&mut sender.tally, lineno, &e.to_string(), &line),
        }
    }
}

/// Returns whether every file was read.
fn run(config: &LoggerConfig) -> Result<bool, String> {
    let format = LogFormat::new(&config.format).map_err(|e| e.to_string())?;
    if !format.has_user_agent() {
        log::warn!(
            target: TARGET,
            "the log format has no %{{User-Agent}}i, so no hit will be reported"
        );
    }
    let ctx = zmq::Context::new();
    let queue = ctx.socket(zmq::PUSH).map_err(|e| e.to_string())?;
    // At the end, give queued hits time to reach the master: briefly with
    // --drop (Apache is restarting us), longer for a batch load.
    let linger = if config.drop { 1000 } else { 10_000 };
    queue.set_linger(linger).map_err(|e| e.to_string())?;
    let watch = ConnectWatch::new(&ctx, &queue).ok();
    queue
        .connect(&config.log_queue)
        .map_err(|e| format!("cannot connect to the log queue {}: {e}", config.log_queue))?;
    if !config.drop && watch.is_some_and(|w| !w.wait(CONNECT_WAIT)) {
        return Err(format!(
            "no master at {} after {}s; is piw-master running?",
            config.log_queue,
            CONNECT_WAIT.as_secs()
        ));
    }
    let mut sender = Sender {
        queue,
        drop: config.drop,
        tally: Tally::default(),
    };
    let mut all_read = true;
    for name in &config.files {
        let result = open(name)
            .map_err(|e| Failure::Read(format!("cannot read {name}: {e}")))
            .and_then(|mut reader| process(name, &mut *reader, &format, &mut sender));
        match result {
            Ok(()) => {}
            Err(Failure::Send(e)) => return Err(e),
            Err(Failure::Read(e)) => {
                log::error!(target: TARGET, "{e}");
                all_read = false;
            }
        }
    }
    if let Some(path) = config.log_queue.strip_prefix("ipc://") {
        let limit = Duration::from_millis(linger as u64);
        if !wait_until_read(path, limit) {
            log::warn!(
                target: TARGET,
                "the master has not read the last hits after {}s; they may be lost",
                limit.as_secs()
            );
        }
    }
    log::info!(target: TARGET, "{}", sender.tally.summary());
    if sender.tally.bad > 0 {
        log::warn!(
            target: TARGET,
            "{} lines did not fit the log format and were skipped",
            sender.tally.bad
        );
    }
    if sender.tally.dropped > 0 {
        log::warn!(
            target: TARGET,
            "dropped {} log entries because the master's log queue was full",
            sender.tally.dropped
        );
    }
    Ok(all_read)
}

/// Waits (at most `limit`) until the master has read everything this
/// process sent to the ipc log queue at `path`, i.e. until the unread
/// bytes of our connections to it (SIOCOUTQ) have stayed at zero for a
/// moment.
///
/// Why: when the peer of an ipc connection closes while the reader is
/// holding back (its queue full, as a master busy writing to the database
/// is during a bulk load), libzmq drops what is still in the kernel's
/// socket buffer. ZeroMQ's linger only covers what is still in our own
/// queue. So a logger that read a file faster than the master stores it
/// would lose its last few hundred hits on exit; waiting for the master to
/// read them first closes that gap. (TCP is not affected: there the reader
/// drains the buffer before it sees the close.)
#[cfg(target_os = "linux")]
fn wait_until_read(path: &str, limit: Duration) -> bool {
    const STABLE: Duration = Duration::from_millis(50);
    let deadline = Instant::now() + limit;
    let mut empty_since: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let unread: usize = connections_to(path).into_iter().map(unread_bytes).sum();
        if unread == 0 {
            if now - *empty_since.get_or_insert(now) >= STABLE {
                return true;
            }
        } else {
            empty_since = None;
        }
        if now >= deadline {
            return false;
        }
        // There is no event for "the peer has read"; look again shortly.
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(not(target_os = "linux"))]
fn wait_until_read(_path: &str, _limit: Duration) -> bool {
    true
}

/// Our Unix-domain sockets connected to `path` (libzmq's ipc connections).
#[cfg(target_os = "linux")]
fn connections_to(path: &str) -> Vec<i32> {
    // An address starting with '@' is in the abstract namespace: a NUL first.
    let want: Vec<u8> = match path.strip_prefix('@') {
        Some(name) => std::iter::once(0).chain(name.bytes()).collect(),
        None => path.bytes().collect(),
    };
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&fd| peer_path(fd).is_some_and(|p| p == want))
        .collect()
}

#[cfg(target_os = "linux")]
fn peer_path(fd: i32) -> Option<Vec<u8>> {
    // SAFETY: getpeername writes at most `len` bytes into `addr`, a
    // zeroed sockaddr_un owned by this frame; any fd number is acceptable
    // (a non-socket just fails with ENOTSOCK).
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    let rc = unsafe { libc::getpeername(fd, (&raw mut addr).cast::<libc::sockaddr>(), &mut len) };
    if rc != 0 || i32::from(addr.sun_family) != libc::AF_UNIX {
        return None;
    }
    let offset = std::mem::size_of::<libc::sa_family_t>();
    let n = (len as usize)
        .saturating_sub(offset)
        .min(addr.sun_path.len());
    let mut bytes: Vec<u8> = addr.sun_path[..n].iter().map(|&c| c as u8).collect();
    // Pathname addresses may include their terminating NUL.
    if bytes.first() != Some(&0) {
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
    }
    Some(bytes)
}

/// Bytes sent on `fd` that the peer has not read yet.
#[cfg(target_os = "linux")]
fn unread_bytes(fd: i32) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ writes one int to `n`; fd is a socket we own.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
    if rc == 0 { n.max(0) as usize } else { 0 }
}
