//! The build queues the slave driver hands jobs out of: one FIFO per ABI,
//! replaced wholesale each time the_architect refreshes it, plus the
//! "excluded builds" that keep a job from being handed out twice.
//!
//! piwheels 0.23's rules:
//! - a job handed to a slave is excluded (for that ABI) for the slave's
//!   build timeout, so a crashed build is retried only after that;
//! - a package or version PyPI removed is excluded in every ABI for an hour
//!   (a `(package, None)` entry blocks every version), and purged from the
//!   queues at once;
//! - a refresh prunes expired exclusions of every ABI the database knows,
//!   filters the new queues through the rest, and gives every known ABI a
//!   queue (empty if need be).
//!
//! A queue can hold 100,000 jobs per ABI, so jobs are packed into one
//! string per queue with small offsets rather than two `String`s each:
//! about 30 bytes a job instead of about 80.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How long a removed package or version stays out of the queues.
pub const DELETE_EXCLUSION: Duration = Duration::from_secs(3600);

/// One ABI's jobs, in build order, packed.
#[derive(Debug, Default, Clone)]
pub struct AbiQueue {
    text: String,
    /// (start in `text`, package length, version length).
    jobs: VecDeque<(u32, u16, u16)>,
}

impl AbiQueue {
    pub fn new() -> AbiQueue {
        AbiQueue::default()
    }

    /// Appends a job. Names and versions longer than the database allows
    /// (200 characters) cannot occur; longer ones are skipped.
    pub fn push(&mut self, package: &str, version: &str) {
        let (Ok(p), Ok(v), Ok(start)) = (
            u16::try_from(package.len()),
            u16::try_from(version.len()),
            u32::try_from(self.text.len()),
        ) else {
            return;
        };
        self.text.push_str(package);
        self.text.push_str(version);
        self.jobs.push_back((start, p, v));
    }

    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    fn get(&self, (start, p, v): (u32, u16, u16)) -> (&str, &str) {
        let s = start as usize;
        let (p, v) = (p as usize, v as usize);
        (&self.text[s..s + p], &self.text[s + p..s + p + v])
    }

    /// Takes the job at the front.
    pub fn pop_front(&mut self) -> Option<(String, String)> {
        let job = self.jobs.pop_front()?;
        let (p, v) = self.get(job);
        let out = (p.to_string(), v.to_string());
        if self.jobs.is_empty() {
            self.text.clear();
        }
        Some(out)
    }

    /// Keeps only the jobs for which `keep(package, version)` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) {
        let text = std::mem::take(&mut self.text);
        let jobs = std::mem::take(&mut self.jobs);
        for job in jobs {
            let (s, p, v) = (job.0 as usize, job.1 as usize, job.2 as usize);
            let (pkg, ver) = (&text[s..s + p], &text[s + p..s + p + v]);
            if keep(pkg, ver) {
                self.push(pkg, ver);
            }
        }
    }

    /// The jobs, front first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.jobs.iter().map(|&j| self.get(j))
    }
}

/// What an exclusion covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Excluded {
    package: String,
    /// `None`: every version of the package.
    version: Option<String>,
}

/// Every ABI's queue and exclusions.
#[derive(Debug, Default)]
pub struct BuildQueues {
    queues: HashMap<String, AbiQueue>,
    /// Per ABI: what may not be handed out, and until when.
    excluded: HashMap<String, HashMap<Excluded, Instant>>,
}

impl BuildQueues {
    pub fn new() -> BuildQueues {
        BuildQueues::default()
    }

    fn is_excluded(
        excluded: Option<&HashMap<Excluded, Instant>>,
        pkg: &str,
        ver: &str,
        now: Instant,
    ) -> bool {
        let Some(map) = excluded else { return false };
        let live = |key: &Excluded| map.get(key).is_some_and(|&until| until > now);
        live(&Excluded {
            package: pkg.to_string(),
            version: Some(ver.to_string()),
        }) || live(&Excluded {
            package: pkg.to_string(),
            version: None,
        })
    }

    /// Replaces the queues with `fresh` (from the_architect). `abis` is
    /// every build ABI the database knows, skipped ones included: their
    /// exclusions are pruned and each gets a queue.
    pub fn replace(&mut self, mut fresh: HashMap<String, AbiQueue>, abis: &[String], now: Instant) {
        for abi in abis {
            if let Some(map) = self.excluded.get_mut(abi) {
                map.retain(|_, until| *until > now);
            }
            fresh.entry(abi.clone()).or_default();
        }
        for (abi, queue) in fresh.iter_mut() {
            let excluded = self.excluded.get(abi);
            if excluded.is_some_and(|m| !m.is_empty()) {
                queue.retain(|p, v| !Self::is_excluded(excluded, p, v, now));
            }
        }
        self.queues = fresh;
    }

    /// Hands out the next job for `abi` that is not excluded, excluding it
    /// for `window` (the slave's build timeout).
    pub fn next(&mut self, abi: &str, window: Duration, now: Instant) -> Option<(String, String)> {
        let queue = self.queues.get_mut(abi)?;
        let excluded = self.excluded.entry(abi.to_string()).or_default();
        while let Some((package, version)) = queue.pop_front() {
            if Self::is_excluded(Some(excluded), &package, &version, now) {
                continue;
            }
            excluded.insert(
                Excluded {
                    package: package.clone(),
                    version: Some(version.clone()),
                },
                now + window,
            );
            return Some((package, version));
        }
        None
    }

    /// Keeps `package` (or one `version` of it) out of every queue for an
    /// hour, and drops it from the queues now.
    pub fn exclude(&mut self, package: &str, version: Option<&str>, now: Instant) {
        let key = Excluded {
            package: package.to_string(),
            version: version.map(str::to_string),
        };
        let abis: Vec<String> = self
            .queues
            .keys()
            .chain(self.excluded.keys())
            .cloned()
            .collect();
        for abi in abis {
            self.excluded
                .entry(abi)
                .or_default()
                .insert(key.clone(), now + DELETE_EXCLUSION);
        }
        for queue in self.queues.values_mut() {
            queue.retain(|p, v| !(p == package && version.is_none_or(|ver| ver == v)));
        }
    }

    /// Queue length per ABI, sorted by ABI (piwheels' STATBQ).
    pub fn lengths(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = self
            .queues
            .iter()
            .map(|(abi, q)| (abi.clone(), q.len() as u64))
            .collect();
        out.sort();
        out
    }

    /// The queue of one ABI (for tests and the monitor).
    pub fn queue(&self, abi: &str) -> Option<&AbiQueue> {
        self.queues.get(abi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(jobs: &[(&str, &str)]) -> AbiQueue {
        let mut q = AbiQueue::new();
        for (p, v) in jobs {
            q.push(p, v);
        }
        q
    }

    fn fresh(abi: &str, jobs: &[(&str, &str)]) -> HashMap<String, AbiQueue> {
        HashMap::from([(abi.to_string(), q(jobs))])
    }

    const H: Duration = Duration::from_secs(3 * 3600);

    #[test]
    fn packed_queue_round_trips() {
        let mut a = q(&[
            ("numpy", "1.26.4"),
            ("zope-interface", "6.0rc1+local.2"),
            ("", ""),
        ]);
        assert_eq!(a.len(), 3);
        a.retain(|p, _| p != "numpy");
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            vec![("zope-interface", "6.0rc1+local.2"), ("", "")]
        );
        assert_eq!(
            a.pop_front(),
            Some(("zope-interface".into(), "6.0rc1+local.2".into()))
        );
        assert_eq!(a.pop_front(), Some((String::new(), String::new())));
        assert_eq!(a.pop_front(), None);
    }

    #[test]
    fn a_job_is_handed_out_once_per_window() {
        let t0 = Instant::now();
        let mut b = BuildQueues::new();
        let abis = ["cp311".to_string()];
        b.replace(fresh("cp311", &[("a", "1"), ("b", "1")]), &abis, t0);
        assert_eq!(b.next("cp311", H, t0), Some(("a".into(), "1".into())));
        // The architect re-sends the same queue (the build is not logged yet).
        b.replace(fresh("cp311", &[("a", "1"), ("b", "1")]), &abis, t0);
        assert_eq!(b.next("cp311", H, t0), Some(("b".into(), "1".into())));
        assert_eq!(b.next("cp311", H, t0), None);
        // After the window the job may go out again.
        let later = t0 + H + Duration::from_secs(1);
        b.replace(fresh("cp311", &[("a", "1")]), &abis, later);
        assert_eq!(b.next("cp311", H, later), Some(("a".into(), "1".into())));
        // An unknown ABI has no queue.
        assert_eq!(b.next("cp39", H, later), None);
    }

    #[test]
    fn every_known_abi_gets_a_queue() {
        let t0 = Instant::now();
        let mut b = BuildQueues::new();
        b.replace(
            HashMap::new(),
            &["cp39".to_string(), "cp311".to_string()],
            t0,
        );
        assert_eq!(b.lengths(), vec![("cp311".into(), 0), ("cp39".into(), 0)]);
    }

    #[test]
    fn removals_purge_and_exclude_for_an_hour() {
        let t0 = Instant::now();
        let mut b = BuildQueues::new();
        let abis = ["cp311".to_string(), "cp39".to_string()];
        let mut f = fresh("cp311", &[("a", "1"), ("a", "2"), ("b", "1")]);
        f.insert("cp39".into(), q(&[("a", "1"), ("b", "1")]));
        b.replace(f, &abis, t0);
        b.exclude("a", Some("1"), t0);
        assert_eq!(b.lengths(), vec![("cp311".into(), 2), ("cp39".into(), 1)]);
        b.exclude("b", None, t0);
        assert_eq!(b.lengths(), vec![("cp311".into(), 1), ("cp39".into(), 0)]);
        // A refresh within the hour still leaves them out...
        let mut f = fresh("cp311", &[("a", "1"), ("a", "2"), ("b", "1"), ("b", "7")]);
        f.insert("cp39".into(), q(&[("b", "3")]));
        b.replace(f, &abis, t0 + Duration::from_secs(60));
        assert_eq!(
            b.queue("cp311").unwrap().iter().collect::<Vec<_>>(),
            vec![("a", "2")]
        );
        assert!(b.queue("cp39").unwrap().is_empty());
        // ...and after it, they are back.
        let later = t0 + DELETE_EXCLUSION + Duration::from_secs(1);
        b.replace(fresh("cp311", &[("a", "1"), ("b", "1")]), &abis, later);
        assert_eq!(b.lengths(), vec![("cp311".into(), 2), ("cp39".into(), 0)]);
    }

    #[test]
    fn packing_is_compact() {
        let mut a = AbiQueue::new();
        for i in 0..100_000 {
            a.push(&format!("package-{i}"), "1.0.0");
        }
        let bytes = a.text.capacity() + a.jobs.capacity() * 8;
        assert!(bytes < 100_000 * 40, "{bytes} bytes for 100,000 jobs");
    }
}
