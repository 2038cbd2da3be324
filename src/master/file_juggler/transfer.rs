//! One file transfer, as a sans-IO state machine: which byte ranges are
//! still missing, which FETCHes are in flight, and how much credit the
//! peer has. It never touches the file or a socket; the file juggler writes
//! the bytes and sends the frames this decides.
//!
//! The wire protocol is piwheels' (protocol.md §5): the master sends
//! `FETCH offset length` (length ≤ 64 KiB) while it has credit, the peer
//! answers each with `CHUNK offset bytes`, every CHUNK earns one credit
//! back, and `DONE` ends the transfer. Initial credit is
//! `max(1, min(10, size / 64 KiB))`; a `HELLO` from the peer during the
//! transfer (its 5 s "are you there?" nudge) resets it.
//!
//! Where we differ from piwheels, deliberately and compatibly:
//! - We remember what is in flight and never FETCH a range twice unless the
//!   peer nudges us, so the tail of a transfer is not sent ten times over.
//!   A lost chunk is asked for again after the nudge (the peer nudges after
//!   5 s of silence, and we go silent when everything missing is in flight).
//! - A CHUNK is accepted only if it answers a FETCH in flight exactly (same
//!   offset, same length). piwheels accepts any range, which lets a hostile
//!   peer fragment the missing-range list with 1-byte chunks until the
//!   master runs out of memory; an honest peer always echoes the FETCH.
//! - A zero-length file completes at once (piwheels loops for ever).
//!
//! Invariants: `missing` is sorted and disjoint and only shrinks; every
//! in-flight range lies inside `missing`; at most [`PIPELINE_SIZE`] ranges
//! are in flight; memory is bounded by the pipeline, not by the file size.

use crate::protocol::file::{CHUNK_SIZE, PIPELINE_SIZE};

/// What a CHUNK did to the transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// The bytes are new: write them at this offset.
    Accepted,
    /// Every byte has now arrived: write them, then send DONE.
    Complete,
    /// A range we did not ask for (or no longer wait for): drop the bytes.
    Unexpected,
}

/// The state of one transfer.
#[derive(Debug, Clone)]
pub struct Transfer {
    size: u64,
    /// Byte ranges not yet received, sorted and disjoint.
    missing: Vec<(u64, u64)>,
    /// FETCHes sent and not yet answered: (offset, length).
    in_flight: Vec<(u64, u64)>,
    credit: u64,
}

impl Transfer {
    /// A transfer of `size` bytes, nothing received yet.
    pub fn new(size: u64) -> Transfer {
        let missing = if size == 0 { vec![] } else { vec![(0, size)] };
        Transfer {
            size,
            missing,
            in_flight: Vec::new(),
            credit: initial_credit(size),
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// True once every byte has arrived.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.size - self.missing.iter().map(|(s, e)| e - s).sum::<u64>()
    }

    /// The peer said HELLO again: it has heard nothing for a while, so
    /// whatever was in flight is presumed lost. Start the window afresh.
    pub fn on_hello(&mut self) {
        self.in_flight.clear();
        self.credit = initial_credit(self.size);
    }

    /// The next FETCH to send, if there is credit and a missing range not
    /// already asked for. Call until `None`.
    pub fn next_fetch(&mut self) -> Option<(u64, u64)> {
        if self.credit == 0 || self.in_flight.len() >= PIPELINE_SIZE as usize {
            return None;
        }
        let (start, end) = self.first_unrequested()?;
        let len = (end - start).min(CHUNK_SIZE);
        self.in_flight.push((start, len));
        self.credit -= 1;
        Some((start, len))
    }

    /// Handles a CHUNK of `len` bytes at `offset`.
    pub fn on_chunk(&mut self, offset: u64, len: u64) -> ChunkOutcome {
        let Some(pos) = self
            .in_flight
            .iter()
            .position(|&(o, l)| o == offset && l == len)
        else {
            return ChunkOutcome::Unexpected;
        };
        self.in_flight.swap_remove(pos);
        remove_range(&mut self.missing, offset, offset + len);
        // Each answer earns a credit back, as in piwheels; the pipeline
        // bounds it.
        self.credit = (self.credit + 1).min(PIPELINE_SIZE);
        if self.missing.is_empty() {
            self.credit = 0;
            ChunkOutcome::Complete
        } else {
            ChunkOutcome::Accepted
        }
    }

    /// The lowest missing range that is not in flight, clipped to the
    /// first gap.
    fn first_unrequested(&self) -> Option<(u64, u64)> {
        for &(mut start, end) in &self.missing {
            // Advance `start` past in-flight ranges that cover it; stop at
            // the first in-flight range beyond it.
            loop {
                if start >= end {
                    break;
                }
                let covering = self
                    .in_flight
                    .iter()
                    .find(|&&(o, l)| o <= start && start < o + l);
                match covering {
                    Some(&(o, l)) => start = o + l,
                    None => {
                        let next_flight = self
                            .in_flight
                            .iter()
                            .map(|&(o, _)| o)
                            .filter(|&o| o > start && o < end)
                            .min()
                            .unwrap_or(end);
                        return Some((start, next_flight));
                    }
                }
            }
        }
        None
    }
}

fn initial_credit(size: u64) -> u64 {
    (size / CHUNK_SIZE).clamp(1, PIPELINE_SIZE)
}

/// Removes `[start, end)` from a sorted, disjoint list of ranges.
fn remove_range(ranges: &mut Vec<(u64, u64)>, start: u64, end: u64) {
    let mut out = Vec::with_capacity(ranges.len() + 1);
    for &(s, e) in ranges.iter() {
        if e <= start || s >= end {
            out.push((s, e));
            continue;
        }
        if s < start {
            out.push((s, start));
        }
        if e > end {
            out.push((end, e));
        }
    }
    *ranges = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: u64 = CHUNK_SIZE;

    /// Drives a transfer with a peer that answers FETCHes in the order
    /// `order` picks, dropping some; returns the number of FETCHes sent.
    fn drain(t: &mut Transfer) -> Vec<(u64, u64)> {
        std::iter::from_fn(|| t.next_fetch()).collect()
    }

    #[test]
    fn credit_starts_as_piwheels_says() {
        assert_eq!(drain(&mut Transfer::new(1000)), vec![(0, 1000)]);
        // 3 chunks and 5 bytes: three FETCHes at first, the tail later.
        let mut t = Transfer::new(3 * C + 5);
        assert_eq!(drain(&mut t), vec![(0, C), (C, C), (2 * C, C)]);
        // A big file: the window of 10.
        let mut t = Transfer::new(100 * C);
        assert_eq!(drain(&mut t).len(), 10);
    }

    #[test]
    fn in_order_transfer_completes_with_no_duplicate_fetch() {
        let size = 25 * C + 123;
        let mut t = Transfer::new(size);
        let mut pending: std::collections::VecDeque<_> = drain(&mut t).into();
        let mut fetched = 0u64;
        let mut done = false;
        while let Some((o, l)) = pending.pop_front() {
            fetched += l;
            match t.on_chunk(o, l) {
                ChunkOutcome::Complete => {
                    done = true;
                    break;
                }
                ChunkOutcome::Accepted => pending.extend(drain(&mut t)),
                ChunkOutcome::Unexpected => panic!("unexpected {o}"),
            }
        }
        assert!(done && t.is_complete());
        assert_eq!(fetched, size, "every byte fetched exactly once");
        assert_eq!(t.received(), size);
    }

    #[test]
    fn out_of_order_and_duplicate_chunks() {
        let mut t = Transfer::new(4 * C);
        let f = drain(&mut t);
        assert_eq!(f.len(), 4);
        assert_eq!(t.on_chunk(3 * C, C), ChunkOutcome::Accepted);
        assert_eq!(t.on_chunk(3 * C, C), ChunkOutcome::Unexpected, "duplicate");
        assert_eq!(t.on_chunk(C, C), ChunkOutcome::Accepted);
        assert_eq!(t.on_chunk(0, C), ChunkOutcome::Accepted);
        assert_eq!(t.received(), 3 * C);
        assert_eq!(t.on_chunk(2 * C, C), ChunkOutcome::Complete);
    }

    #[test]
    fn a_lost_chunk_is_fetched_again_after_the_nudge() {
        let mut t = Transfer::new(3 * C);
        let f = drain(&mut t);
        assert_eq!(f.len(), 3);
        // The first FETCH is lost; the others arrive.
        assert_eq!(t.on_chunk(C, C), ChunkOutcome::Accepted);
        assert_eq!(t.on_chunk(2 * C, C), ChunkOutcome::Accepted);
        // Everything missing is in flight: nothing to send, so the peer
        // hears nothing and nudges.
        assert_eq!(t.next_fetch(), None);
        t.on_hello();
        assert_eq!(drain(&mut t), vec![(0, C)]);
        assert_eq!(t.on_chunk(0, C), ChunkOutcome::Complete);
    }

    #[test]
    fn a_late_answer_after_the_nudge_is_dropped_and_refetched() {
        let mut t = Transfer::new(2 * C);
        drain(&mut t);
        t.on_hello();
        let again = drain(&mut t);
        assert_eq!(again, vec![(0, C), (C, C)]);
        assert_eq!(t.on_chunk(0, C), ChunkOutcome::Accepted);
        assert_eq!(t.on_chunk(0, C), ChunkOutcome::Unexpected);
        assert_eq!(t.on_chunk(C, C), ChunkOutcome::Complete);
    }

    #[test]
    fn chunks_that_answer_no_fetch_are_refused() {
        let mut t = Transfer::new(3 * C);
        drain(&mut t);
        // Wrong length, wrong offset, beyond the end, 1-byte fragments.
        assert_eq!(t.on_chunk(0, C - 1), ChunkOutcome::Unexpected);
        assert_eq!(t.on_chunk(1, C), ChunkOutcome::Unexpected);
        assert_eq!(t.on_chunk(3 * C, C), ChunkOutcome::Unexpected);
        for i in 0..1000 {
            assert_eq!(t.on_chunk(i * 2, 1), ChunkOutcome::Unexpected);
        }
        assert_eq!(t.received(), 0);
        assert_eq!(t.missing.len(), 1, "no fragmentation");
    }

    #[test]
    fn zero_length_files_complete_at_once() {
        let mut t = Transfer::new(0);
        assert!(t.is_complete());
        assert_eq!(t.next_fetch(), None);
    }

    #[test]
    fn short_last_chunk() {
        let mut t = Transfer::new(C + 1);
        let f = drain(&mut t);
        assert_eq!(f, vec![(0, C)]);
        assert_eq!(t.on_chunk(0, C), ChunkOutcome::Accepted);
        assert_eq!(drain(&mut t), vec![(C, 1)]);
        assert_eq!(t.on_chunk(C, 1), ChunkOutcome::Complete);
    }

    /// A deterministic pseudo-random peer: it answers FETCHes in a shuffled
    /// order, drops some, duplicates some and sometimes nudges. Whatever it
    /// does, the transfer completes, every in-flight range stays inside the
    /// missing set, and no more than the pipeline is ever in flight.
    #[test]
    fn property_any_peer_behaviour_completes() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..200 {
            let size = rand() % (40 * C) + (round % 3);
            let mut t = Transfer::new(size);
            let mut wire: Vec<(u64, u64)> = drain(&mut t);
            let mut steps = 0;
            while !t.is_complete() {
                steps += 1;
                assert!(steps < 100_000, "round {round} did not finish");
                assert!(t.in_flight.len() <= PIPELINE_SIZE as usize);
                for &(o, l) in &t.in_flight {
                    assert!(t.missing.iter().any(|&(s, e)| s <= o && o + l <= e));
                }
                if wire.is_empty() {
                    t.on_hello();
                    wire.extend(drain(&mut t));
                    continue;
                }
                let i = (rand() % wire.len() as u64) as usize;
                let (o, l) = wire.swap_remove(i);
                match rand() % 10 {
                    0 => continue,          // lost
                    1 => wire.push((o, l)), // duplicated
                    _ => {}
                }
                t.on_chunk(o, l);
                wire.extend(drain(&mut t));
            }
            assert_eq!(t.received(), size);
        }
    }
}
