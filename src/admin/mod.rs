//! The operator tools piw-import, piw-add, piw-remove and piw-rebuild: each
//! builds one request for the master's import queue (mr_chase), asks the
//! operator first unless `-y`, sends it and turns the reply into a message
//! and an exit status.
//!
//! The tools talk to the master as piwheels' own do (a REQ socket on the
//! import queue, CBOR messages), but never wait for ever: every reply has a
//! deadline (`--reply-timeout`), so a dead master is a clear error.
//!
//! Exit status, as piwheels': 0 done, 1 failed, 2 usage error or the
//! operator said no.

pub mod add;
pub mod import;
pub mod rebuild;
pub mod remove;

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::import::Command;
use crate::config::{ConfigError, LogSettings};
use crate::protocol::{ImportReply, ImportRequest, WireMessage};

/// Replies larger than this are refused (real ones are a few bytes).
const MAX_REPLY: i64 = 1 << 20;

/// How a tool ended when nothing went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The master did what was asked.
    Done,
    /// The operator declined at the prompt.
    Aborted,
}

/// How long an IMPORT may wait for its turn while the master is
/// connected: mr_chase serves one import at a time and drops a silent one
/// after 5 minutes.
pub const IMPORT_PATIENCE: Duration = Duration::from_secs(600);

/// A REQ connection to the master's import queue.
pub struct ImportClient {
    // Dropped before the context (fields drop in order).
    socket: zmq::Socket,
    /// Connection events of `socket`: a master that is there but slow
    /// (another import first) is told apart from one that is not there.
    monitor: zmq::Socket,
    connected: std::cell::Cell<bool>,
    ctx: zmq::Context,
    addr: String,
    timeout: Duration,
}

impl ImportClient {
    /// Connects (which succeeds even if nobody listens yet: ZeroMQ connects
    /// in the background, so a dead master shows as a missing reply).
    pub fn connect(addr: &str, timeout: Duration) -> Result<ImportClient, String> {
        let ctx = zmq::Context::new();
        let (socket, monitor) = (|| -> zmq::Result<(zmq::Socket, zmq::Socket)> {
            let s = ctx.socket(zmq::REQ)?;
            s.set_linger(0)?;
            s.set_sndhwm(10)?;
            s.set_rcvhwm(10)?;
            s.set_maxmsgsize(MAX_REPLY)?;
            s.set_sndtimeo(timeout.as_millis().min(i32::MAX as u128) as i32)?;
            let events =
                zmq::SocketEvent::CONNECTED.to_raw() | zmq::SocketEvent::DISCONNECTED.to_raw();
            s.monitor("inproc://piw-admin-monitor", i32::from(events))?;
            let m = ctx.socket(zmq::PAIR)?;
            m.connect("inproc://piw-admin-monitor")?;
            s.connect(addr)?;
            Ok((s, m))
        })()
        .map_err(|e| format!("cannot connect to the import queue {addr}: {e}"))?;
        Ok(ImportClient {
            socket,
            monitor,
            connected: std::cell::Cell::new(false),
            ctx,
            addr: addr.to_string(),
            timeout,
        })
    }

    /// The context, for the file-transfer socket of an import.
    pub fn context(&self) -> &zmq::Context {
        &self.ctx
    }

    /// The reply deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Reads the connection events that have arrived.
    fn read_events(&self) {
        while let Ok(frames) = self.monitor.recv_multipart(zmq::DONTWAIT) {
            let Some(event) = frames.first().and_then(|f| f.get(..2)) else {
                continue;
            };
            let event = u16::from_ne_bytes([event[0], event[1]]);
            if event == zmq::SocketEvent::CONNECTED.to_raw() {
                self.connected.set(true);
            } else if event == zmq::SocketEvent::DISCONNECTED.to_raw() {
                self.connected.set(false);
            }
        }
    }

    /// Sends `request` and waits for the master's reply, at most the
    /// timeout.
    pub fn request(&self, request: &ImportRequest) -> Result<ImportReply, String> {
        self.request_patiently(request, self.timeout)
    }

    /// [`request`](Self::request), but while the master is connected, wait
    /// up to `patience` (at least the timeout) for its reply.
    pub fn request_patiently(
        &self,
        request: &ImportRequest,
        patience: Duration,
    ) -> Result<ImportReply, String> {
        let silent = |waited: Duration| {
            let waited = crate::slave::builder::human_duration(waited);
            if self.connected.get() {
                format!(
                    "no reply from the master on {} within {waited}, although it is connected; \
                     it may be stuck or busy: see its log",
                    self.addr
                )
            } else {
                format!(
                    "no reply from the master on {} within {waited}; is piw-master running \
                     there? (if it is busy, try again or raise --reply-timeout)",
                    self.addr
                )
            }
        };
        match self.socket.send(request.encode(), 0) {
            Ok(()) => {}
            Err(zmq::Error::EAGAIN) => return Err(silent(self.timeout)),
            Err(e) => return Err(format!("cannot send to {}: {e}", self.addr)),
        }
        let start = std::time::Instant::now();
        let mut told = false;
        loop {
            self.read_events();
            let limit = if self.connected.get() {
                patience.max(self.timeout)
            } else {
                self.timeout
            };
            let now = std::time::Instant::now();
            let left = (start + limit).saturating_duration_since(now);
            if left.is_zero() {
                return Err(silent(limit));
            }
            if !told && now.duration_since(start) >= self.timeout {
                log::warn!(
                    target: "piw-admin",
                    "the master is there but has not answered yet (another import may be \
                     in progress); waiting up to {}",
                    crate::slave::builder::human_duration(limit)
                );
                told = true;
            }
            // Wake at the plain timeout too, to tell the operator.
            let wake = if told { left } else { left.min(self.timeout) };
            let ms = wake.as_millis().min(i64::MAX as u128) as i64 + 1;
            // The monitor wakes the poll too; its events are read above.
            let mut items = [
                self.socket.as_poll_item(zmq::POLLIN),
                self.monitor.as_poll_item(zmq::POLLIN),
            ];
            match zmq::poll(&mut items, ms) {
                Ok(_) | Err(zmq::Error::EINTR) => {}
                Err(e) => return Err(format!("cannot wait for the master: {e}")),
            }
            if items[0].is_readable() {
                break;
            }
        }
        let bytes = self
            .socket
            .recv_bytes(0)
            .map_err(|e| format!("cannot receive from {}: {e}", self.addr))?;
        ImportReply::decode(&bytes).map_err(|e| format!("invalid reply from the master: {e}"))
    }
}

/// Asks `question` on the terminal; true for yes (or just Enter, as in
/// piwheels). End of input is no.
pub fn confirm(question: &str) -> bool {
    let stdin = std::io::stdin();
    println!();
    loop {
        print!("{question} [Y/n] ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => {
                println!();
                return false;
            }
            Ok(_) => {}
        }
        match line.trim().to_ascii_lowercase().as_str() {
            "" | "y" | "yes" => return true,
            "n" | "no" => return false,
            _ => println!("Please answer y or n"),
        }
    }
}

/// What each tool provides to [`main`].
pub trait Tool: Sized {
    /// The program name, which is also its log target.
    const NAME: &'static str;
    /// Parses the arguments (without the program name).
    fn parse(args: Vec<OsString>, default_files: &[PathBuf]) -> Result<Command<Self>, ConfigError>;
    fn log(&self) -> &LogSettings;
    /// Does the work.
    fn run(&self) -> Result<Outcome, String>;
}

/// A tool's whole life: options, logging, the work, the exit status.
pub fn main<T: Tool>() -> ExitCode {
    let args = std::env::args_os().skip(1).collect();
    ExitCode::from(main_with::<T>(args, &crate::config::default_config_files()))
}

/// [`main`] on given arguments; returns the exit status.
pub fn main_with<T: Tool>(args: Vec<OsString>, default_files: &[PathBuf]) -> u8 {
    let tool = match T::parse(args, default_files) {
        Ok(Command::Run(t)) => t,
        Ok(Command::Help(text)) => {
            print!("{text}");
            return 0;
        }
        Ok(Command::Version(v)) => {
            println!("{v}");
            return 0;
        }
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    if let Err(e) = crate::logging::init(tool.log()) {
        crate::logging::eprintln_error(T::NAME, &e.to_string());
        return 2;
    }
    match tool.run() {
        Ok(Outcome::Done) => 0,
        Ok(Outcome::Aborted) => 2,
        Err(e) => {
            // Not through the log: the console cuts long lines, and this
            // one is the answer the operator needs whole.
            crate::logging::eprintln_error(T::NAME, &e);
            1
        }
    }
}

/// A reply the tool did not expect at this point.
fn unexpected(reply: &ImportReply) -> String {
    format!("unexpected reply from the master: {reply:?}")
}
