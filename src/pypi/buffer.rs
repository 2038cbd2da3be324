//! piwheels 0.23's ordering buffer (`PyPIBuffer`), sans-IO.
//!
//! PyPI's changelog is in serial order, but timestamps are not: before
//! serial 628000 (the "epoch") they jump about by days, and after it they
//! can still go back by a few minutes. So the buffer
//!
//! 1. reads from serial 0 when the stored serial is before the epoch, and
//!    otherwise 2000 serials (the margin) before it;
//! 2. keeps every event it reads, ordered by (timestamp, serial);
//! 3. yields nothing until it has read past the epoch;
//! 4. then yields only events more than five minutes older than the newest
//!    one it holds, from the stored serial's place on;
//! 5. and yields at most one network batch per call.
//!
//! [`OrderingBuffer::serial`] is then "the next serial not yet yielded":
//! the value to store, and to resume from.

use super::xmlrpc::ChangelogEntry;

/// Before this serial PyPI's timestamps are unreliable.
pub const EPOCH: i64 = 628_000;
/// How far before the stored serial reading starts again.
pub const MARGIN: i64 = 2000;
/// Events are held until the newest one is this much later (seconds).
pub const WINDOW: i64 = 5 * 60;

/// The ordering buffer.
#[derive(Debug)]
pub struct OrderingBuffer {
    /// The next serial to yield (what is stored).
    serial: i64,
    /// The serial to ask PyPI for events after.
    next_serial: i64,
    /// The timestamp of the event at `serial`, once it has been read.
    serial_timestamp: Option<i64>,
    /// Events read and not yet yielded or dropped, in (timestamp, serial)
    /// order after each batch.
    buffer: Vec<ChangelogEntry>,
}

impl OrderingBuffer {
    /// A buffer that will yield events from `serial` on.
    pub fn new(serial: i64) -> OrderingBuffer {
        let mut b = OrderingBuffer {
            serial: 0,
            next_serial: 0,
            serial_timestamp: None,
            buffer: Vec::new(),
        };
        b.set_serial(serial);
        b
    }

    /// Starts again from `serial` (forgetting what is buffered).
    pub fn set_serial(&mut self, serial: i64) {
        self.serial = serial;
        self.buffer = Vec::new();
        self.next_serial = ((if serial < EPOCH { 0 } else { serial }) - MARGIN).max(0);
        self.serial_timestamp = None;
    }

    /// The next serial not yet yielded: the one to store.
    pub fn serial(&self) -> i64 {
        self.serial
    }

    /// The argument of the next `changelog_since_serial` call.
    pub fn request_serial(&self) -> i64 {
        self.next_serial
    }

    /// How many events are held.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Takes one network batch (the answer to a call with
    /// [`request_serial`](Self::request_serial)) and returns the events
    /// that may now be processed, in (timestamp, serial) order.
    pub fn push(&mut self, mut events: Vec<ChangelogEntry>) -> Vec<ChangelogEntry> {
        // changelog_since_serial is exclusive and in serial order; anything
        // else from the server is not trusted to move us.
        events.retain(|e| e.serial > self.next_serial);
        if events.is_empty() {
            return Vec::new();
        }
        events.sort_by_key(|e| e.serial);
        self.next_serial = events.last().map_or(self.next_serial, |e| e.serial);
        if self.serial_timestamp.is_none() && self.serial <= self.next_serial {
            // The first event at or after the serial we seek.
            let at = events.partition_point(|e| e.serial < self.serial);
            self.serial_timestamp = events.get(at).map(|e| e.timestamp);
        }
        self.buffer.append(&mut events);
        if self.next_serial <= EPOCH {
            return Vec::new();
        }
        let Some(serial_ts) = self.serial_timestamp else {
            return Vec::new();
        };
        self.buffer.sort_by_key(|e| (e.timestamp, e.serial));
        let Some(newest) = self.buffer.last().map(|e| e.timestamp) else {
            return Vec::new();
        };
        let finish_ts = newest - WINDOW;
        if serial_ts >= finish_ts {
            // The serial we seek is within the window: wait for more.
            return Vec::new();
        }
        let mut start = self.buffer.partition_point(|e| e.timestamp < serial_ts);
        let finish = self.buffer.partition_point(|e| e.timestamp < finish_ts);
        // Timestamps have one-second resolution: move forward to the serial
        // we seek among the events of its second.
        while start < finish
            && self.buffer[start].timestamp == serial_ts
            && self.buffer[start].serial < self.serial
        {
            start += 1;
        }
        if start >= finish || finish >= self.buffer.len() {
            // Cannot happen with a consistent buffer; never yield out of order.
            return Vec::new();
        }
        let next = &self.buffer[finish];
        self.serial_timestamp = Some(next.timestamp);
        self.serial = next.serial;
        let rest = self.buffer.split_off(finish);
        let mut out = std::mem::replace(&mut self.buffer, rest);
        out.drain(..start);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::xmlrpc::Action;
    use super::*;

    fn e(serial: i64, ts: i64) -> ChangelogEntry {
        ChangelogEntry {
            name: format!("p{serial}").into(),
            version: None,
            timestamp: ts,
            action: Action::Create,
            serial,
        }
    }

    fn serials(v: &[ChangelogEntry]) -> Vec<i64> {
        v.iter().map(|e| e.serial).collect()
    }

    #[test]
    fn start_points() {
        assert_eq!(OrderingBuffer::new(0).request_serial(), 0);
        assert_eq!(OrderingBuffer::new(627_999).request_serial(), 0);
        assert_eq!(OrderingBuffer::new(628_000).request_serial(), 626_000);
        assert_eq!(OrderingBuffer::new(1_000_000).request_serial(), 998_000);
        assert_eq!(OrderingBuffer::new(1_000_000).serial(), 1_000_000);
    }

    #[test]
    fn nothing_before_the_epoch() {
        let mut b = OrderingBuffer::new(0);
        let out = b.push((1..=100).map(|s| e(s, s * 1000)).collect());
        assert!(out.is_empty());
        assert_eq!(b.request_serial(), 100);
        assert_eq!(b.buffered(), 100);
        // crossing the epoch releases everything but the last five minutes
        let out = b.push(vec![e(EPOCH + 1, 10_000_000)]);
        assert_eq!(out.len(), 100);
        assert_eq!(b.serial(), EPOCH + 1);
    }

    #[test]
    fn holds_the_last_five_minutes_and_reorders() {
        let base = 1_600_000_000;
        let mut b = OrderingBuffer::new(1_000_000);
        assert_eq!(b.request_serial(), 998_000);
        // serials 998001..=1001000, one per second, but 1000003 is stamped
        // two minutes late and 1000004 two seconds early
        let mut batch: Vec<_> = (998_001..=1_001_000)
            .map(|s| e(s, base + (s - 998_000)))
            .collect();
        let late = batch.iter_mut().find(|x| x.serial == 1_000_003).unwrap();
        late.timestamp += 120;
        let early = batch.iter_mut().find(|x| x.serial == 1_000_004).unwrap();
        early.timestamp -= 2;
        let out = b.push(batch);
        let newest = base + 3000;
        assert!(out.iter().all(|x| x.timestamp < newest - WINDOW));
        // starts at the stored serial's place, in time order
        assert_eq!(out.first().unwrap().serial, 1_000_000);
        let ts: Vec<_> = out.iter().map(|x| (x.timestamp, x.serial)).collect();
        let mut sorted = ts.clone();
        sorted.sort();
        assert_eq!(ts, sorted);
        assert_eq!(serials(&out)[1..4], [1_000_001, 1_000_002, 1_000_004]);
        assert!(serials(&out).contains(&1_000_003));
        assert_eq!(out.len(), 700);
        // the next serial to yield is the first event held back
        assert_eq!(b.serial(), 1_000_700);
        // a later event releases the rest, each once
        let out2 = b.push(vec![e(1_001_001, newest + 1000)]);
        assert_eq!(serials(&out2), (1_000_700..=1_001_000).collect::<Vec<_>>());
        assert_eq!(b.serial(), 1_001_001);
        // a batch of nothing new changes nothing
        assert!(b.push(vec![e(1_001_001, newest + 2000)]).is_empty());
        assert_eq!(b.serial(), 1_001_001);
    }

    #[test]
    fn resumes_exactly_from_a_stored_serial() {
        let base = 1_600_000_000;
        let all: Vec<_> = (700_001..=710_000).map(|s| e(s, base + s)).collect();
        let feed = |b: &mut OrderingBuffer| {
            let since = b.request_serial();
            b.push(
                all.iter()
                    .filter(|x| x.serial > since)
                    .take(3000)
                    .cloned()
                    .collect(),
            )
        };
        let mut b = OrderingBuffer::new(0);
        let mut first = Vec::new();
        for _ in 0..2 {
            first.extend(serials(&feed(&mut b)));
        }
        let stored = b.serial();
        // a restart from the stored serial yields exactly what follows
        let mut r = OrderingBuffer::new(stored);
        let mut rest = Vec::new();
        for _ in 0..10 {
            rest.extend(serials(&feed(&mut r)));
        }
        assert_eq!(rest.first(), Some(&stored));
        assert_eq!(*first.last().unwrap() + 1, stored);
        let mut joined = first.clone();
        joined.extend(rest);
        let want: Vec<i64> = (700_001..710_000 - WINDOW).collect();
        assert_eq!(joined, want);
    }

    #[test]
    fn ignores_stale_and_empty_batches() {
        let mut b = OrderingBuffer::new(1_000_000);
        assert!(b.push(vec![]).is_empty());
        assert!(b.push(vec![e(5, 1), e(998_000, 2)]).is_empty());
        assert_eq!(b.request_serial(), 998_000);
        assert_eq!(b.buffered(), 0);
    }
}
