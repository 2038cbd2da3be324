//! The output disk's guard, sans-IO: fed free-space readings (a `statvfs`
//! every few seconds) and storage failures (ENOSPC while receiving a
//! wheel), it says when the master must pause and when it may resume.
//!
//! piwheels 0.23 pauses once, at 1 GiB free, and waits for a monitor's
//! WAKE. Here the guard also resumes by itself once space has come back,
//! so a full disk at night does not stop the farm until someone looks:
//! - at or below the low-water mark: pause;
//! - after a failed write: pause, whatever the reading said;
//! - resume when free space is above twice the low-water mark and, after a
//!   failed write, at least a low-water mark more than when it failed (the
//!   file that did not fit must fit next time).
//!
//! The master keeps one guard for bytes and one for inodes: 100,000
//! packages' pages alone take about 800,000 inodes, which a default
//! `mkfs.ext4` of a small SD card or USB disk runs out of while gigabytes
//! are free.

/// What a guard counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Inodes,
}

impl Unit {
    /// `n` of them ("4 MiB", "40 inodes").
    fn show(self, n: u64) -> String {
        match self {
            Unit::Bytes => format!("{} MiB", n >> 20),
            Unit::Inodes => format!("{n} inodes"),
        }
    }

    /// The verb after [`Unit::show`]: "4 MiB is", "40 inodes are".
    fn verb(self) -> &'static str {
        match self {
            Unit::Bytes => "is",
            Unit::Inodes => "are",
        }
    }

    /// What the disk is when this runs short.
    fn shortage(self) -> &'static str {
        match self {
            Unit::Bytes => "full",
            Unit::Inodes => "out of inodes",
        }
    }
}

/// The inode guard's low-water mark on a file system of `total` inodes:
/// 1% of them, at most 20,000 (a few thousand packages' pages, or a day
/// of builds and their logs).
pub fn inode_low_water(total: u64) -> u64 {
    (total / 100).min(20_000)
}

/// What the master should do after a reading or a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskAction {
    /// Stop handing out builds; the text says why.
    Pause(String),
    /// Space is back; the text says how much.
    Resume(String),
}

/// The guard's state.
#[derive(Debug)]
pub struct DiskGuard {
    unit: Unit,
    low_water: u64,
    /// Readings may pause (off after a monitor's WAKE overrode the guard,
    /// until space rose above twice the mark).
    armed: bool,
    /// Free bytes we need before resuming, while the guard holds the pause.
    resume_above: Option<u64>,
}

impl DiskGuard {
    /// A guard of free bytes.
    pub fn new(low_water: u64) -> DiskGuard {
        DiskGuard::of(Unit::Bytes, low_water)
    }

    /// A guard of `unit`, pausing at `low_water` of them.
    pub fn of(unit: Unit, low_water: u64) -> DiskGuard {
        DiskGuard {
            unit,
            low_water,
            armed: true,
            resume_above: None,
        }
    }

    /// Whether the guard is what keeps the master paused.
    pub fn is_holding(&self) -> bool {
        self.resume_above.is_some()
    }

    /// A monitor's WAKE: the operator overrides the guard; readings pause
    /// again only after space has been above twice the mark.
    pub fn wake(&mut self) {
        self.resume_above = None;
        self.armed = false;
    }

    /// Moves the low-water mark (the inode guard's depends on the file
    /// system, known at the first reading).
    pub fn set_low_water(&mut self, low_water: u64) {
        self.low_water = low_water;
    }

    /// Where the guard pauses.
    pub fn low_water(&self) -> u64 {
        self.low_water
    }

    /// A free-space reading of the output path.
    pub fn on_reading(&mut self, free: u64) -> Option<DiskAction> {
        if free > self.low_water.saturating_mul(2) {
            self.armed = true;
        }
        match self.resume_above {
            None if self.armed && free <= self.low_water => {
                self.resume_above = Some(self.low_water.saturating_mul(2));
                Some(DiskAction::Pause(format!(
                    "output disk {}: only {} free, pausing builds",
                    self.unit.shortage(),
                    self.unit.show(free)
                )))
            }
            Some(need) if free > need => {
                self.resume_above = None;
                Some(DiskAction::Resume(format!(
                    "output disk has {} free again, resuming builds",
                    self.unit.show(free)
                )))
            }
            _ => None,
        }
    }

    /// A write to the output path failed for lack of space; `free` is a
    /// reading taken just after (the failed temp file already removed).
    pub fn on_full(&mut self, free: u64, why: &str) -> Option<DiskAction> {
        let need = free
            .saturating_add(self.low_water)
            .max(self.low_water.saturating_mul(2));
        let was_holding = self.resume_above.is_some();
        self.resume_above = Some(self.resume_above.unwrap_or(0).max(need));
        (!was_holding).then(|| {
            DiskAction::Pause(format!(
                "cannot store files ({why}): pausing builds until {} {} free",
                self.unit.show(need),
                self.unit.verb()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inode_guard_speaks_of_inodes() {
        assert_eq!(inode_low_water(786_432), 7_864);
        assert_eq!(inode_low_water(16_000_000), 20_000);
        let mut g = DiskGuard::of(Unit::Inodes, inode_low_water(2_000));
        assert_eq!(g.on_reading(21), None);
        let Some(DiskAction::Pause(why)) = g.on_reading(20) else {
            panic!()
        };
        assert_eq!(
            why,
            "output disk out of inodes: only 20 inodes free, pausing builds"
        );
        let Some(DiskAction::Resume(why)) = g.on_reading(41) else {
            panic!()
        };
        assert!(why.contains("41 inodes free again"), "{why}");
        let Some(DiskAction::Pause(why)) = g.on_full(3, "No space left on device") else {
            panic!()
        };
        assert!(why.ends_with("until 40 inodes are free"), "{why}");
    }

    const MIB: u64 = 1 << 20;

    #[test]
    fn low_water_pauses_once_and_resumes_above_twice_it() {
        let mut g = DiskGuard::new(100 * MIB);
        assert_eq!(g.on_reading(500 * MIB), None);
        assert!(matches!(
            g.on_reading(100 * MIB),
            Some(DiskAction::Pause(_))
        ));
        assert!(g.is_holding());
        assert_eq!(g.on_reading(50 * MIB), None, "one pause, not one a reading");
        assert_eq!(g.on_reading(200 * MIB), None, "no flapping at the mark");
        assert!(matches!(
            g.on_reading(201 * MIB),
            Some(DiskAction::Resume(_))
        ));
        assert!(!g.is_holding());
    }

    #[test]
    fn wake_overrides_until_space_came_back() {
        let mut g = DiskGuard::new(100 * MIB);
        assert!(g.on_reading(10 * MIB).is_some());
        g.wake();
        assert!(!g.is_holding());
        assert_eq!(g.on_reading(10 * MIB), None, "the operator said go on");
        assert_eq!(g.on_reading(300 * MIB), None);
        assert!(matches!(g.on_reading(10 * MIB), Some(DiskAction::Pause(_))));
        g.wake();
        assert!(
            g.on_full(10 * MIB, "ENOSPC").is_some(),
            "failures always pause"
        );
    }

    #[test]
    fn a_failed_write_waits_for_more_space_than_it_had() {
        let mut g = DiskGuard::new(MIB);
        let Some(DiskAction::Pause(why)) = g.on_full(3 * MIB, "No space left on device") else {
            panic!()
        };
        assert!(why.contains("pausing builds until 4 MiB is free"), "{why}");
        assert_eq!(g.on_full(3 * MIB, "again"), None, "already paused");
        assert_eq!(g.on_reading(3 * MIB), None);
        assert_eq!(g.on_reading(4 * MIB), None);
        assert!(matches!(
            g.on_reading(4 * MIB + 1),
            Some(DiskAction::Resume(_))
        ));
    }
}
