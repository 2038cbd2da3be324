//! Drives a [`CloudGazer`] the way the master's poll loop does, for tests
//! and benchmarks: wait in `zmq::poll` on its socket (never sleeping to
//! synchronise), call `on_timer` and `on_ready`, until a condition holds
//! or a deadline passes.

use std::time::{Duration, Instant};

use crate::db::Database;
use crate::master::cloud_gazer::CloudGazer;
use crate::master::tasks::{SkipQueue, WebQueue};

/// Runs the loop until `done` is true (returns true) or `timeout` passes
/// (returns false). `on_timer` is offered on every turn; the gazer's own
/// `poll_interval` decides whether it fetches.
pub fn run_until(
    gazer: &mut CloudGazer,
    db: &mut Database,
    web: &mut impl WebQueue,
    skip: &mut impl SkipQueue,
    timeout: Duration,
    mut done: impl FnMut(&CloudGazer, &mut Database) -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done(gazer, db) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        gazer.on_timer(now, db, web, skip);
        let wait = if gazer.has_backlog() {
            0
        } else {
            (deadline - now).min(Duration::from_millis(20)).as_millis() as i64
        };
        let readable = {
            let mut items = [gazer.poll_item()];
            match zmq::poll(&mut items, wait) {
                Ok(_) => items[0].is_readable(),
                Err(_) => false,
            }
        };
        if readable || gazer.has_backlog() {
            gazer.on_ready(Instant::now(), db, web, skip);
        }
    }
}

/// Runs until the gazer has stored `serial` (or more), is idle, and has no
/// description pending.
pub fn run_to_serial(
    gazer: &mut CloudGazer,
    db: &mut Database,
    web: &mut impl WebQueue,
    skip: &mut impl SkipQueue,
    serial: i64,
    timeout: Duration,
) -> bool {
    run_until(gazer, db, web, skip, timeout, |g, _| {
        g.stored_serial() >= serial && g.is_idle() && g.descriptions_pending() == 0
    })
}
