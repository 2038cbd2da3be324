//! the_secretary: the de-duplicating buffer in front of the scribe.
//!
//! A release with many wheels produces bursts of identical rewrite
//! requests; the secretary keeps one entry per package, due a fixed delay
//! after its *first* request (60 s, 3 s in dev mode), so each burst costs
//! one write. `Both` upgrades a buffered `Project`, never the reverse.
//! Entries are due in the order they arrived. The buffer is saved to
//! `rewrites_pending` on shutdown and restored at start with the original
//! request times.
//!
//! Sans-IO: every method takes the time it should consider.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::db::{RewriteCommand, RewritePending};

#[derive(Debug, Clone)]
struct Entry {
    package: String,
    added_at: DateTime<Utc>,
    due: Instant,
}

/// The buffer.
#[derive(Debug)]
pub struct Secretary {
    delay: Duration,
    queue: VecDeque<Entry>,
    commands: HashMap<String, RewriteCommand>,
}

impl Secretary {
    /// An empty buffer holding requests for `delay`.
    pub fn new(delay: Duration) -> Secretary {
        Secretary {
            delay,
            queue: VecDeque::new(),
            commands: HashMap::new(),
        }
    }

    /// Buffers a request made at `now` (`wall` is the same moment in UTC,
    /// kept for saving). Returns true when it added an entry, false when it
    /// merged into one already waiting.
    pub fn add(
        &mut self,
        package: &str,
        command: RewriteCommand,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> bool {
        match self.commands.get_mut(package) {
            Some(c) => {
                if command == RewriteCommand::Both {
                    *c = RewriteCommand::Both;
                }
                false
            }
            None => {
                self.commands.insert(package.to_owned(), command);
                self.queue.push_back(Entry {
                    package: package.to_owned(),
                    added_at: wall,
                    due: now + self.delay,
                });
                true
            }
        }
    }

    /// Forgets any entry for `package` (it is being deleted).
    pub fn remove(&mut self, package: &str) -> bool {
        if self.commands.remove(package).is_none() {
            return false;
        }
        self.queue.retain(|e| e.package != package);
        true
    }

    /// Restores saved entries (oldest first) at start-up: each is due the
    /// delay after its original request, measured on the wall clock.
    pub fn restore(&mut self, rows: Vec<RewritePending>, now: Instant, wall: DateTime<Utc>) {
        for row in rows {
            let age = (wall - row.added_at).to_std().unwrap_or(Duration::ZERO);
            let due = now + self.delay.saturating_sub(age);
            match self.commands.get_mut(&row.package) {
                Some(c) => {
                    if row.command == RewriteCommand::Both {
                        *c = RewriteCommand::Both;
                    }
                }
                None => {
                    self.commands.insert(row.package.clone(), row.command);
                    self.queue.push_back(Entry {
                        package: row.package,
                        added_at: row.added_at,
                        due,
                    });
                }
            }
        }
        // Restored entries come before anything added meanwhile; keep the
        // queue in due order whatever the saved order was.
        self.queue.make_contiguous().sort_by_key(|e| e.due);
    }

    /// When the oldest entry is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|e| e.due)
    }

    /// Takes up to `max` entries due at `now`, oldest first.
    pub fn take_due(&mut self, now: Instant, max: usize) -> Vec<(String, RewriteCommand)> {
        let mut out = Vec::new();
        while out.len() < max && self.queue.front().is_some_and(|e| e.due <= now) {
            let e = self.queue.pop_front().expect("front exists");
            let cmd = self
                .commands
                .remove(&e.package)
                .unwrap_or(RewriteCommand::Both);
            out.push((e.package, cmd));
        }
        out
    }

    /// Puts entries taken by [`Secretary::take_due`] back at the front
    /// (their write failed for a reason that may pass), due at `due`. A
    /// request that arrived meanwhile is merged in.
    pub fn put_back(
        &mut self,
        items: Vec<(String, RewriteCommand)>,
        due: Instant,
        wall: DateTime<Utc>,
    ) {
        for (package, command) in items.into_iter().rev() {
            match self.commands.get_mut(&package) {
                Some(c) => {
                    if command == RewriteCommand::Both {
                        *c = RewriteCommand::Both;
                    }
                }
                None => {
                    self.commands.insert(package.clone(), command);
                    self.queue.push_front(Entry {
                        package,
                        added_at: wall,
                        due,
                    });
                }
            }
        }
    }

    /// The entries as `save_rewrites_pending` stores them, oldest first.
    pub fn pending(&self) -> Vec<RewritePending> {
        self.queue
            .iter()
            .map(|e| RewritePending {
                package: e.package.clone(),
                added_at: e.added_at,
                command: self.commands[&e.package],
            })
            .collect()
    }

    /// Number of packages waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RewriteCommand::{Both, Project};

    fn t0() -> (Instant, DateTime<Utc>) {
        (
            Instant::now(),
            DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        )
    }

    #[test]
    fn bursts_collapse_and_both_wins() {
        let (now, wall) = t0();
        let mut s = Secretary::new(Duration::from_secs(60));
        assert!(s.add("a", Project, now, wall));
        for i in 0..100 {
            let later = now + Duration::from_secs(i % 50);
            assert!(!s.add("a", if i == 7 { Both } else { Project }, later, wall));
        }
        assert!(s.add("b", Both, now + Duration::from_secs(1), wall));
        assert!(!s.add("b", Project, now + Duration::from_secs(2), wall));
        assert_eq!(s.len(), 2);
        // Due 60 s after the first request, not the last.
        assert!(s.take_due(now + Duration::from_secs(59), 10).is_empty());
        assert_eq!(s.next_due(), Some(now + Duration::from_secs(60)));
        assert_eq!(
            s.take_due(now + Duration::from_secs(61), 10),
            [("a".to_owned(), Both), ("b".to_owned(), Both)]
        );
        assert!(s.is_empty());
    }

    #[test]
    fn take_due_respects_order_and_limit() {
        let (now, wall) = t0();
        let mut s = Secretary::new(Duration::from_secs(3));
        for (i, p) in ["a", "b", "c"].iter().enumerate() {
            s.add(p, Project, now + Duration::from_secs(i as u64), wall);
        }
        let at = now + Duration::from_secs(10);
        assert_eq!(s.take_due(at, 2).len(), 2);
        assert_eq!(s.take_due(at, 2), [("c".to_owned(), Project)]);
    }

    #[test]
    fn removal_drops_the_entry() {
        let (now, wall) = t0();
        let mut s = Secretary::new(Duration::from_secs(3));
        s.add("a", Both, now, wall);
        s.add("b", Both, now, wall);
        assert!(s.remove("a"));
        assert!(!s.remove("a"));
        assert_eq!(s.take_due(now + Duration::from_secs(5), 10).len(), 1);
    }

    #[test]
    fn saved_entries_keep_their_age() {
        let (now, wall) = t0();
        let mut s = Secretary::new(Duration::from_secs(60));
        s.add("new", Project, now, wall);
        let saved = vec![
            RewritePending {
                package: "old".into(),
                added_at: wall - chrono::Duration::seconds(50),
                command: Both,
            },
            RewritePending {
                package: "new".into(),
                added_at: wall - chrono::Duration::seconds(100),
                command: Both,
            },
        ];
        s.restore(saved, now, wall);
        assert_eq!(s.len(), 2);
        let due = s.take_due(now + Duration::from_secs(10), 10);
        assert_eq!(due, [("old".to_owned(), Both)]);
        assert_eq!(
            s.take_due(now + Duration::from_secs(60), 10),
            [("new".to_owned(), Both)]
        );
    }

    #[test]
    fn put_back_goes_first() {
        let (now, wall) = t0();
        let mut s = Secretary::new(Duration::from_secs(3));
        s.add("a", Project, now, wall);
        s.add("b", Project, now, wall);
        let taken = s.take_due(now + Duration::from_secs(3), 1);
        s.add("a", Both, now + Duration::from_secs(4), wall);
        s.put_back(taken, now + Duration::from_secs(5), wall);
        assert_eq!(s.len(), 2);
        let pending = s.pending();
        assert_eq!(pending[0].package, "b");
        assert_eq!(pending[1].command, Both);
    }
}
