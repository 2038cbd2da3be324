//! the_architect: works out what to build next, from the `builds_pending`
//! view via `get_build_queue(100000)`, and hands the slave driver one queue
//! per ABI.
//!
//! On a big database the query takes seconds (4.4 s for 500,000 versions
//! on the development machine), so it runs on a small worker thread with
//! its own connection, as piwheels' architect has its own: the poll loop
//! asks for a refresh and keeps serving slaves; the worker wakes the loop
//! through an inproc socket when the queues are ready. The statement
//! timeout bounds the query; shutdown cancels it.
//!
//! piwheels 0.23 refreshes every 60 minutes. A farm whose queues ran dry
//! would then wait up to an hour to start on a new release, so we also
//! refresh when a slave is told there is no work and the last refresh is
//! older than [`STARVED_REFRESH`] (10 s in dev mode).

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::db::{Database, Options};
use crate::logging::target;
use crate::master::slave_driver::queue::AbiQueue;

/// How often the queues are rebuilt (piwheels 0.23: 60 minutes).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(3600);

/// The least time between refreshes triggered by idle slaves.
pub const STARVED_REFRESH: Duration = Duration::from_secs(300);

/// Jobs fetched per ABI (piwheels: 100,000).
pub const QUEUE_LIMIT: i32 = 100_000;

const WAKE_ADDR: &str = "inproc://piw-the-architect";

/// A finished refresh.
#[derive(Debug)]
pub struct Refreshed {
    pub queues: HashMap<String, AbiQueue>,
    /// Every build ABI in the database, skipped ones included.
    pub abis: Vec<String>,
    pub took: Duration,
}

/// The loop's handle on the architect's worker.
pub struct TheArchitect {
    requests: Option<mpsc::Sender<()>>,
    results: mpsc::Receiver<Result<Refreshed, String>>,
    wake: zmq::Socket,
    thread: Option<JoinHandle<()>>,
    cancel: Arc<Mutex<Option<postgres::CancelToken>>>,
    in_flight: bool,
    last_request: Option<Instant>,
    paused: bool,
    starved_after: Duration,
}

impl TheArchitect {
    /// Starts the worker; it connects to `dsn` on its first refresh.
    pub fn start(ctx: &zmq::Context, dsn: &str, dev_mode: bool) -> std::io::Result<TheArchitect> {
        let wake = ctx.socket(zmq::PAIR).map_err(std::io::Error::other)?;
        wake.bind(WAKE_ADDR).map_err(std::io::Error::other)?;
        let poke = ctx.socket(zmq::PAIR).map_err(std::io::Error::other)?;
        poke.connect(WAKE_ADDR).map_err(std::io::Error::other)?;
        let (req_tx, req_rx) = mpsc::channel::<()>();
        let (res_tx, res_rx) = mpsc::channel();
        let cancel = Arc::new(Mutex::new(None));
        let worker_cancel = Arc::clone(&cancel);
        let dsn = dsn.to_string();
        let thread = std::thread::Builder::new()
            .name("the_architect".into())
            .spawn(move || worker(&dsn, req_rx, res_tx, poke, worker_cancel))?;
        Ok(TheArchitect {
            requests: Some(req_tx),
            results: res_rx,
            wake,
            thread: Some(thread),
            cancel,
            in_flight: false,
            last_request: None,
            paused: false,
            starved_after: if dev_mode {
                Duration::from_secs(10)
            } else {
                STARVED_REFRESH
            },
        })
    }

    /// The socket the loop polls for "queues ready".
    pub fn socket(&self) -> &zmq::Socket {
        &self.wake
    }

    /// Asks for a refresh (the hourly timer, or forced). Ignored while one
    /// is running or while paused.
    pub fn refresh(&mut self, now: Instant) {
        if self.in_flight || self.paused {
            return;
        }
        if let Some(tx) = &self.requests {
            if tx.send(()).is_ok() {
                self.in_flight = true;
                self.last_request = Some(now);
            }
        }
    }

    /// A slave found no work: refresh if the last one is old enough.
    pub fn starved(&mut self, now: Instant) {
        if self
            .last_request
            .is_none_or(|t| now.saturating_duration_since(t) >= self.starved_after)
        {
            self.refresh(now);
        }
    }

    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// Collects a finished refresh after the socket became readable.
    pub fn take(&mut self) -> Option<Result<Refreshed, String>> {
        while self.wake.recv_bytes(zmq::DONTWAIT).is_ok() {}
        match self.results.try_recv() {
            Ok(r) => {
                self.in_flight = false;
                Some(r)
            }
            Err(_) => None,
        }
    }

    /// Stops the worker, cancelling a running query.
    pub fn shutdown(&mut self) {
        self.requests = None;
        if let Some(token) = self.cancel.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = token.cancel_query(postgres::NoTls);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TheArchitect {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn worker(
    dsn: &str,
    requests: mpsc::Receiver<()>,
    results: mpsc::Sender<Result<Refreshed, String>>,
    poke: zmq::Socket,
    cancel: Arc<Mutex<Option<postgres::CancelToken>>>,
) {
    let mut db: Option<Database> = None;
    while requests.recv().is_ok() {
        let result = refresh(dsn, &mut db, &cancel);
        *cancel.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if results.send(result).is_err() {
            break;
        }
        let _ = poke.send(&b"!"[..], zmq::DONTWAIT);
    }
}

fn refresh(
    dsn: &str,
    db: &mut Option<Database>,
    cancel: &Mutex<Option<postgres::CancelToken>>,
) -> Result<Refreshed, String> {
    let start = Instant::now();
    if db.is_none() {
        let options = Options {
            queue_timeout: Duration::from_secs(600),
            ..Options::default()
        };
        *db = Some(Database::connect_with(dsn, options).map_err(|e| e.to_string())?);
    }
    let db = db.as_mut().expect("connected above");
    *cancel.lock().unwrap_or_else(|e| e.into_inner()) = db.cancel_token();
    let abis: Vec<String> = db
        .get_build_abis(false)
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect();
    let mut queues: HashMap<String, AbiQueue> = HashMap::new();
    db.get_build_queue(QUEUE_LIMIT, |abi, package, version| {
        queues
            .entry(abi.to_string())
            .or_default()
            .push(package, version);
    })
    .map_err(|e| e.to_string())?;
    let took = start.elapsed();
    log::info!(
        target: target::THE_ARCHITECT,
        "build queue refreshed in {:.1}s: {}",
        took.as_secs_f64(),
        if queues.is_empty() {
            "nothing to build".to_string()
        } else {
            let mut parts: Vec<String> = queues
                .iter()
                .map(|(abi, q)| format!("{abi}: {}", q.len()))
                .collect();
            parts.sort();
            parts.join(", ")
        }
    );
    Ok(Refreshed { queues, abis, took })
}
