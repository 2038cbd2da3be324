//! The build policy of a self-hosted farm: build everything (piwheels'
//! behaviour), or only the packages an allow-list names, optionally only
//! their newest N releases.
//!
//! PyPI is still followed completely, so adding a name later needs no
//! rescan. What the policy rules out is *skipped* in the database with a
//! reason that says why ([`NOT_ALLOWED`], [`NOT_NEWEST`]), which keeps it
//! out of `builds_pending` and shows on the project pages. The policy only
//! ever sets or clears its own reasons: a skip an operator gave, "binary
//! only" or "deleted" is never touched, and built wheels stay where they
//! are when a name leaves the list.
//!
//! The allow-list file has one PEP 503 name or shell pattern a line
//! (`numpy`, `django-*`, `[a-c]*`), `#` comments and blank lines; names are
//! compared in canonical form, so `Django_REST.framework` means
//! `django-rest-framework`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::db::{Database, DbError};
use crate::logging::{fnmatch, target};
use crate::names::canonicalize;

/// Skip reason of a package the allow-list does not name.
pub const NOT_ALLOWED: &str = "not on the allow-list";

/// Skip reason of a release older than the newest N (the reason names N).
pub const NOT_NEWEST: &str = "not among the newest releases";

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildPolicy {
    list: Option<AllowList>,
    /// Build only each package's newest N releases (with an allow-list).
    newest: Option<usize>,
}

#[derive(Debug, Clone)]
struct AllowList {
    path: PathBuf,
    names: HashSet<String>,
    patterns: Vec<String>,
}

/// What a re-evaluation changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Packages skipped or unskipped, whose pages need a rewrite.
    pub packages: Vec<String>,
    /// Versions skipped or unskipped.
    pub versions: usize,
}

impl BuildPolicy {
    /// Build everything (piwheels' behaviour).
    pub fn all() -> BuildPolicy {
        BuildPolicy::default()
    }

    /// Reads an allow-list file.
    pub fn load(path: &Path, newest: Option<usize>) -> Result<BuildPolicy, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the allow-list {}: {e}", path.display()))?;
        let mut list = Self::parse(&text, newest)?;
        if let Some(l) = list.list.as_mut() {
            l.path = path.to_path_buf();
        }
        Ok(list)
    }

    /// Parses allow-list text (for tests and `load`).
    pub fn parse(text: &str, newest: Option<usize>) -> Result<BuildPolicy, String> {
        if newest == Some(0) {
            return Err("the number of newest releases to build must be at least 1".into());
        }
        let mut names = HashSet::new();
        let mut patterns = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            if line.contains(char::is_whitespace) || line.contains('/') {
                return Err(format!(
                    "allow-list line {}: {line:?} is not a package name or pattern",
                    n + 1
                ));
            }
            let canon = canonicalize(line);
            if canon.contains(['*', '?', '[']) {
                patterns.push(canon);
            } else {
                names.insert(canon);
            }
        }
        Ok(BuildPolicy {
            list: Some(AllowList {
                path: PathBuf::new(),
                names,
                patterns,
            }),
            newest,
        })
    }

    /// The allow-list file, if the policy has one.
    pub fn path(&self) -> Option<&Path> {
        self.list.as_ref().map(|l| l.path.as_path())
    }

    /// Whether `package` (canonical) may be built.
    pub fn allows(&self, package: &str) -> bool {
        match &self.list {
            None => true,
            Some(l) => l.names.contains(package) || l.patterns.iter().any(|p| fnmatch(p, package)),
        }
    }

    /// The skip reason for a package seen for the first time: `""` to build
    /// it, [`NOT_ALLOWED`] otherwise.
    pub fn new_package_skip(&self, package: &str) -> &'static str {
        if self.allows(package) {
            ""
        } else {
            NOT_ALLOWED
        }
    }

    /// Whether the newest-releases rule applies.
    pub fn limits_releases(&self) -> bool {
        self.list.is_some() && self.newest.is_some()
    }

    /// A short description for logs.
    pub fn describe(&self) -> String {
        match &self.list {
            None => "build every package".into(),
            Some(l) => format!(
                "build only the {} name(s) and {} pattern(s) of {}{}",
                l.names.len(),
                l.patterns.len(),
                l.path.display(),
                match self.newest {
                    Some(n) => format!(", newest {n} release(s) each"),
                    None => String::new(),
                }
            ),
        }
    }

    /// Brings every package's (and, with a newest-releases limit, every
    /// allowed package's versions') skips in line with the policy, in one
    /// transaction.
    pub fn reevaluate(&self, db: &mut Database) -> Result<Changes, DbError> {
        db.transaction(|db| {
            let mut skip = Vec::new();
            let mut unskip = Vec::new();
            let mut allowed = Vec::new();
            db.for_each_package_skip(|package, reason| {
                let ok = self.allows(package);
                if ok {
                    allowed.push(package.to_string());
                }
                match (ok, reason) {
                    (true, NOT_ALLOWED) => unskip.push(package.to_string()),
                    (false, "") => skip.push(package.to_string()),
                    _ => {}
                }
            })?;
            db.skip_packages(&skip, NOT_ALLOWED)?;
            db.skip_packages(&unskip, "")?;
            let mut changes = Changes {
                packages: skip,
                versions: 0,
            };
            changes.packages.extend(unskip);
            let touched = if self.limits_releases() {
                self.reevaluate_versions(db, &allowed)?
            } else {
                // No limit now: lift the one an earlier policy set.
                let mut lifted: Vec<(String, String)> = Vec::new();
                db.for_each_version_skipped(NOT_NEWEST, |p, v| {
                    lifted.push((p.to_string(), v.to_string()))
                })?;
                db.skip_versions(&lifted, "")?;
                let mut counts: HashMap<String, usize> = HashMap::new();
                for (p, _) in lifted {
                    *counts.entry(p).or_default() += 1;
                }
                counts.into_iter().collect()
            };
            changes.versions = touched.iter().map(|(_, n)| n).sum();
            for (package, _) in touched {
                if !changes.packages.contains(&package) {
                    changes.packages.push(package);
                }
            }
            Ok(changes)
        })
    }

    /// Applies the newest-releases rule to `packages` (canonical names of
    /// allowed packages); returns the packages whose versions changed, with
    /// how many. Call inside a transaction, e.g. after new releases arrive.
    pub fn reevaluate_versions(
        &self,
        db: &mut Database,
        packages: &[String],
    ) -> Result<Vec<(String, usize)>, DbError> {
        let Some(n) = self.newest.filter(|_| self.list.is_some()) else {
            return Ok(Vec::new());
        };
        let mut skip = Vec::new();
        let mut unskip = Vec::new();
        let mut rank: HashMap<String, usize> = HashMap::new();
        db.for_each_version_of(packages, |package, version, _released, reason| {
            let r = rank.entry(package.to_string()).or_insert(0);
            *r += 1;
            let newest = *r <= n;
            match (newest, reason) {
                (true, NOT_NEWEST) => unskip.push((package.to_string(), version.to_string())),
                (false, "") => skip.push((package.to_string(), version.to_string())),
                _ => {}
            }
        })?;
        db.skip_versions(&skip, NOT_NEWEST)?;
        db.skip_versions(&unskip, "")?;
        let mut counts: HashMap<String, usize> = HashMap::new();
        for (p, _) in skip.iter().chain(unskip.iter()) {
            *counts.entry(p.clone()).or_default() += 1;
        }
        Ok(counts.into_iter().collect())
    }
}

/// Logs what a re-evaluation did.
pub fn log_changes(policy: &BuildPolicy, changes: &Changes) {
    log::warn!(
        target: target::MASTER,
        "build policy: {}; {} package(s) and {} version(s) changed",
        policy.describe(),
        changes.packages.len(),
        changes.versions
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_patterns_in_canonical_form() {
        let p = BuildPolicy::parse(
            "# my farm\nnumpy\n\nDjango_REST.framework  # the API one\nscikit-*\n[a-b]?\n",
            None,
        )
        .unwrap();
        assert!(p.allows("numpy"));
        assert!(p.allows("django-rest-framework"));
        assert!(p.allows("scikit-learn"));
        assert!(p.allows("ab"));
        assert!(!p.allows("abc"));
        assert!(!p.allows("scipy"));
        assert_eq!(p.new_package_skip("scipy"), NOT_ALLOWED);
        assert_eq!(p.new_package_skip("numpy"), "");
        assert!(BuildPolicy::all().allows("anything"));
    }

    #[test]
    fn bad_lines_and_zero_are_refused() {
        assert!(BuildPolicy::parse("two words\n", None).is_err());
        assert!(BuildPolicy::parse("../etc\n", None).is_err());
        assert!(BuildPolicy::parse("numpy\n", Some(0)).is_err());
        assert!(BuildPolicy::parse("", None).unwrap().list.is_some());
    }
}
