//! The slave's side of a file transfer, sans-IO.
//!
//! The shell opens a new DEALER socket to the master's file queue for each
//! file (so the master sees a new identity), and this machine says what to
//! send on it:
//! - `HELLO <slave id>` at once, and again after every 5 s without a word
//!   from the master (the master answers a HELLO by re-issuing its FETCHes,
//!   which is how lost ones are recovered);
//! - for every `FETCH <offset> <length>`, a `CHUNK` whose offset frame is
//!   the FETCH's offset frame, byte for byte, with the file's bytes from
//!   there (fewer at the end of the file; a request past the end gets an
//!   empty chunk, as piwheels' slave sends);
//! - `DONE` ends the transfer.
//!
//! piwheels' slave waits for DONE for ever. Here a master that stays silent
//! for the master timeout (5 min) fails the transfer, and the slave
//! reconnects, as it does when a reply is overdue. A FETCH longer than
//! [`CHUNK_SIZE`] is answered with [`CHUNK_SIZE`] bytes (piwheels' master
//! never asks for more; the master asks again for the rest).

use std::time::{Duration, Instant};

use crate::protocol::file::{CHUNK_SIZE, MasterFrame, parse_master_frames};

/// piwheels' nudge interval.
pub const NUDGE: Duration = Duration::from_secs(5);

/// What to send on the DEALER socket (or how the transfer ended).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `HELLO <slave id>`.
    Hello(Vec<Vec<u8>>),
    /// `CHUNK <offset frame> <bytes offset..offset+length>`: the shell
    /// reads the bytes.
    Chunk {
        /// The FETCH's offset frame, echoed as received.
        offset_frame: Vec<u8>,
        offset: u64,
        length: u64,
    },
    /// The master has every byte.
    Done,
    /// The master went silent.
    Failed(String),
}

/// One file transfer.
#[derive(Debug, Clone)]
pub struct Transfer {
    slave_id: u64,
    size: u64,
    last_heard: Instant,
    last_hello: Instant,
    silence: Duration,
    finished: bool,
    /// Frames that were not FETCH or DONE (for the log).
    pub ignored: u64,
}

impl Transfer {
    /// Starts a transfer of a `size`-byte file; the first step is HELLO.
    pub fn start(slave_id: u64, size: u64, silence: Duration, now: Instant) -> (Transfer, Step) {
        let t = Transfer {
            slave_id,
            size,
            last_heard: now,
            last_hello: now,
            silence,
            finished: false,
            ignored: 0,
        };
        let hello = t.hello();
        (t, hello)
    }

    fn hello(&self) -> Step {
        Step::Hello(vec![
            b"HELLO".to_vec(),
            self.slave_id.to_string().into_bytes(),
        ])
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// When [`tick`](Self::tick) is next due.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.finished {
            return None;
        }
        let nudge = self.last_heard.max(self.last_hello) + NUDGE;
        Some(nudge.min(self.last_heard + self.silence))
    }

    /// A message from the master (its frames, no identity: DEALER).
    pub fn on_frames(&mut self, frames: &[Vec<u8>], now: Instant) -> Option<Step> {
        if self.finished {
            return None;
        }
        self.last_heard = now;
        match parse_master_frames(frames) {
            Ok(MasterFrame::Done) => {
                self.finished = true;
                Some(Step::Done)
            }
            Ok(MasterFrame::Fetch { offset, length }) => {
                let length = length.min(CHUNK_SIZE).min(self.size.saturating_sub(offset));
                Some(Step::Chunk {
                    offset_frame: frames[1].clone(),
                    offset,
                    length,
                })
            }
            Err(e) => {
                self.ignored += 1;
                log::debug!(target: "slave", "file transfer: ignored {e}");
                None
            }
        }
    }

    /// The passing of time: a nudge after 5 s of silence, failure after
    /// the master timeout.
    pub fn tick(&mut self, now: Instant) -> Option<Step> {
        if self.finished {
            return None;
        }
        if now >= self.last_heard + self.silence {
            self.finished = true;
            return Some(Step::Failed(format!(
                "no word from the master's file queue for {}",
                super::builder::human_duration(self.silence)
            )));
        }
        if now >= self.last_heard.max(self.last_hello) + NUDGE {
            self.last_hello = now;
            return Some(self.hello());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    fn frames(parts: &[&[u8]]) -> Vec<Vec<u8>> {
        parts.iter().map(|p| p.to_vec()).collect()
    }

    #[test]
    fn hello_then_chunks_then_done() {
        let now = Instant::now();
        let (mut t, first) = Transfer::start(12, 100_000, 300 * SEC, now);
        assert_eq!(first, Step::Hello(frames(&[b"HELLO", b"12"])));
        assert_eq!(
            t.on_frames(&frames(&[b"FETCH", b"0", b"65536"]), now),
            Some(Step::Chunk {
                offset_frame: b"0".to_vec(),
                offset: 0,
                length: 65536
            })
        );
        // The offset frame comes back exactly as sent, and the tail is short.
        assert_eq!(
            t.on_frames(&frames(&[b"FETCH", b"0065536", b"65536"]), now),
            Some(Step::Chunk {
                offset_frame: b"0065536".to_vec(),
                offset: 65536,
                length: 100_000 - 65536
            })
        );
        assert_eq!(t.on_frames(&frames(&[b"DONE"]), now), Some(Step::Done));
        assert!(t.is_finished());
        assert_eq!(t.next_deadline(), None);
        assert_eq!(t.on_frames(&frames(&[b"FETCH", b"0", b"1"]), now), None);
        assert_eq!(t.tick(now + 1000 * SEC), None);
    }

    #[test]
    fn odd_fetches_are_bounded() {
        let now = Instant::now();
        let (mut t, _) = Transfer::start(1, 1000, 300 * SEC, now);
        let chunk = |t: &mut Transfer, off: &[u8], len: &[u8]| match t
            .on_frames(&frames(&[b"FETCH", off, len]), now)
        {
            Some(Step::Chunk { offset, length, .. }) => (offset, length),
            other => panic!("{other:?}"),
        };
        assert_eq!(chunk(&mut t, b"0", b"99999999999"), (0, 1000));
        assert_eq!(chunk(&mut t, b"990", b"65536"), (990, 10));
        assert_eq!(chunk(&mut t, b"5000", b"10"), (5000, 0));
        assert_eq!(chunk(&mut t, b"18446744073709551615", b"1"), (u64::MAX, 0));
        let (mut big, _) = Transfer::start(1, 10 << 20, 300 * SEC, now);
        assert_eq!(chunk(&mut big, b"0", b"1048576"), (0, CHUNK_SIZE));
    }

    #[test]
    fn garbage_is_ignored_but_counts_as_life() {
        let now = Instant::now();
        let (mut t, _) = Transfer::start(1, 1000, 300 * SEC, now);
        for bad in [
            frames(&[]),
            frames(&[b"NOPE"]),
            frames(&[b"FETCH"]),
            frames(&[b"FETCH", b"x", b"1"]),
            frames(&[b"FETCH", b"-1", b"1"]),
        ] {
            assert_eq!(t.on_frames(&bad, now + 4 * SEC), None);
        }
        assert_eq!(t.ignored, 5);
        assert_eq!(t.next_deadline(), Some(now + 9 * SEC));
    }

    #[test]
    fn nudges_every_five_seconds_of_silence() {
        let now = Instant::now();
        let (mut t, _) = Transfer::start(3, 1000, 300 * SEC, now);
        assert_eq!(t.next_deadline(), Some(now + 5 * SEC));
        assert_eq!(t.tick(now + 4 * SEC), None);
        assert_eq!(
            t.tick(now + 5 * SEC),
            Some(Step::Hello(frames(&[b"HELLO", b"3"])))
        );
        assert_eq!(t.next_deadline(), Some(now + 10 * SEC));
        // A FETCH resets the silence.
        t.on_frames(&frames(&[b"FETCH", b"0", b"10"]), now + 7 * SEC);
        assert_eq!(t.tick(now + 10 * SEC), None);
        assert_eq!(t.next_deadline(), Some(now + 12 * SEC));
        assert!(matches!(t.tick(now + 12 * SEC), Some(Step::Hello(_))));
    }

    #[test]
    fn a_silent_master_fails_the_transfer() {
        let now = Instant::now();
        let (mut t, _) = Transfer::start(3, 1000, 12 * SEC, now);
        assert!(matches!(t.tick(now + 5 * SEC), Some(Step::Hello(_))));
        assert!(matches!(t.tick(now + 10 * SEC), Some(Step::Hello(_))));
        assert_eq!(t.next_deadline(), Some(now + 12 * SEC));
        match t.tick(now + 12 * SEC) {
            Some(Step::Failed(why)) => assert!(why.contains("12s"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(t.is_finished());
    }
}
