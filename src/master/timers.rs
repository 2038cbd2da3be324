//! Periodic work for the poll loop: a handful of named timers, each with its
//! interval and next deadline.
//!
//! piwheels runs each task's periodic handlers from that task's own 1 s
//! poll loop; here one loop serves every task, so it sleeps in `zmq::poll`
//! exactly until the earliest deadline (never busy-polling) and then runs
//! what is due. There are about ten timers, so a linear scan of a small
//! array beats any heap or wheel and allocates nothing after start-up.
//!
//! Semantics follow piwheels' `every()`: a timer is due at once when
//! started, and after each run it is due again one interval later.

use std::time::{Duration, Instant};

/// Every periodic job of the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// Tell systemd we are alive (`WATCHDOG=1`), if the unit asks for it.
    Watchdog,
    /// Check free space on the output path (piwheels: every main-loop cycle).
    DiskCheck,
    /// Forget slaves that went silent (slave_driver, every 10 s).
    ExpireSlaves,
    /// Rebuild the build queues (the_architect, every 60 minutes).
    BuildQueue,
    /// Ask PyPI what changed (cloud_gazer, every 10 s).
    ReadPypi,
    /// Tell big_brother how many downloads were logged (lumberjack, every
    /// minute).
    DownloadCount,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    timer: Timer,
    interval: Duration,
    due: Option<Instant>,
}

/// The set of timers. Invariant: at most one slot per [`Timer`].
#[derive(Debug, Default)]
pub struct Timers {
    slots: Vec<Slot>,
}

impl Timers {
    pub fn new() -> Timers {
        Timers::default()
    }

    /// Starts (or restarts) `timer` every `interval`, first due at `first`.
    pub fn every(&mut self, timer: Timer, interval: Duration, first: Instant) {
        match self.slots.iter_mut().find(|s| s.timer == timer) {
            Some(slot) => {
                slot.interval = interval;
                slot.due = Some(first);
            }
            None => self.slots.push(Slot {
                timer,
                interval,
                due: Some(first),
            }),
        }
    }

    /// Makes `timer` due now (piwheels' `force()`), if it is running.
    pub fn force(&mut self, timer: Timer, now: Instant) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.timer == timer) {
            slot.due = Some(now);
        }
    }

    /// Stops `timer` until `every` starts it again.
    pub fn stop(&mut self, timer: Timer) {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.timer == timer) {
            slot.due = None;
        }
    }

    /// The earliest deadline of any running timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots.iter().filter_map(|s| s.due).min()
    }

    /// How long `zmq::poll` may sleep: until the next deadline, capped at
    /// `cap` (and 0 if something is overdue).
    pub fn poll_timeout_ms(&self, now: Instant, cap: Duration) -> i64 {
        timeout_ms(now, self.next_deadline(), cap)
    }

    /// Pops the earliest timer that is due at `now` and re-arms it one
    /// interval later. Call until it returns `None`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        let slot = self
            .slots
            .iter_mut()
            .filter(|s| s.due.is_some_and(|d| d <= now))
            .min_by_key(|s| s.due)?;
        slot.due = Some(now + slot.interval);
        Some(slot.timer)
    }
}

/// Milliseconds from `now` until `deadline` (or `cap` without one), capped
/// at `cap`, rounded up so a wake-up is never a hair early and then a busy
/// loop.
pub fn timeout_ms(now: Instant, deadline: Option<Instant>, cap: Duration) -> i64 {
    let wait = match deadline {
        Some(d) => d.saturating_duration_since(now).min(cap),
        None => cap,
    };
    let ms = wait.as_micros().div_ceil(1000);
    i64::try_from(ms).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_at_once_then_every_interval() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        timers.every(Timer::DiskCheck, Duration::from_secs(5), t0);
        assert_eq!(timers.pop_due(t0), Some(Timer::DiskCheck));
        assert_eq!(timers.pop_due(t0), None);
        assert_eq!(timers.next_deadline(), Some(t0 + Duration::from_secs(5)));
        assert_eq!(timers.pop_due(t0 + Duration::from_millis(4999)), None);
        assert_eq!(
            timers.pop_due(t0 + Duration::from_secs(5)),
            Some(Timer::DiskCheck)
        );
    }

    #[test]
    fn earliest_first_and_each_once() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        timers.every(
            Timer::DiskCheck,
            Duration::from_secs(5),
            t0 + Duration::from_secs(2),
        );
        timers.every(
            Timer::Watchdog,
            Duration::from_secs(1),
            t0 + Duration::from_secs(1),
        );
        let later = t0 + Duration::from_secs(3);
        assert_eq!(timers.pop_due(later), Some(Timer::Watchdog));
        assert_eq!(timers.pop_due(later), Some(Timer::DiskCheck));
        assert_eq!(timers.pop_due(later), None);
    }

    #[test]
    fn poll_timeout_waits_for_the_deadline() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        let cap = Duration::from_secs(60);
        assert_eq!(timers.poll_timeout_ms(t0, cap), 60_000);
        timers.every(
            Timer::Watchdog,
            Duration::from_secs(10),
            t0 + Duration::from_micros(1500),
        );
        assert_eq!(timers.poll_timeout_ms(t0, cap), 2);
        assert_eq!(timers.poll_timeout_ms(t0 + Duration::from_secs(1), cap), 0);
    }

    #[test]
    fn force_and_stop() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        timers.every(Timer::DiskCheck, Duration::from_secs(60), t0);
        assert!(timers.pop_due(t0).is_some());
        timers.force(Timer::DiskCheck, t0);
        assert_eq!(timers.pop_due(t0), Some(Timer::DiskCheck));
        timers.stop(Timer::DiskCheck);
        assert_eq!(timers.next_deadline(), None);
        assert_eq!(timers.pop_due(t0 + Duration::from_secs(3600)), None);
    }
}
