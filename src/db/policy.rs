//! Set-at-a-time reads and skips for the build policy (the allow-list).
//!
//! Re-evaluating an allow-list touches up to every package, so these run
//! one statement for many packages: the stored functions are called once
//! per element of an array parameter (`SELECT skip_package(p, $2) FROM
//! unnest($1)`), which keeps piwheels' schema (no new functions) and the
//! unprivileged role's rights (EXECUTE only) while costing one round trip.

use chrono::{DateTime, NaiveDateTime, Utc};

use super::{Database, DbError, Retry};

impl Database {
    /// Streams every package with its skip reason.
    pub fn for_each_package_skip(
        &mut self,
        mut each: impl FnMut(&str, &str),
    ) -> Result<usize, DbError> {
        self.run_stream(
            "SELECT package::text, skip::text FROM packages",
            &[],
            None,
            &mut |row| {
                each(row.get(0), row.get(1));
                Ok(())
            },
        )
    }

    /// Streams the versions of `packages`, newest release first within each
    /// package: (package, version, released, skip).
    pub fn for_each_version_of(
        &mut self,
        packages: &[String],
        mut each: impl FnMut(&str, &str, DateTime<Utc>, &str),
    ) -> Result<usize, DbError> {
        self.run_stream(
            "SELECT package::text, version::text, released, skip::text FROM versions \
             WHERE package = ANY($1::text[]) \
             ORDER BY package, released DESC, version DESC",
            &[&packages],
            None,
            &mut |row| {
                let released: NaiveDateTime = row.get(2);
                each(row.get(0), row.get(1), released.and_utc(), row.get(3));
                Ok(())
            },
        )
    }

    /// Streams the versions skipped for `reason`: (package, version).
    pub fn for_each_version_skipped(
        &mut self,
        reason: &str,
        mut each: impl FnMut(&str, &str),
    ) -> Result<usize, DbError> {
        self.run_stream(
            "SELECT package::text, version::text FROM versions WHERE skip = $1",
            &[&reason],
            None,
            &mut |row| {
                each(row.get(0), row.get(1));
                Ok(())
            },
        )
    }

    /// `skip_package(p, reason)` for every package in `packages`, in one
    /// statement.
    pub fn skip_packages(&mut self, packages: &[String], reason: &str) -> Result<(), DbError> {
        if packages.is_empty() {
            return Ok(());
        }
        self.run(Retry::Safe, |c| {
            c.execute(
                "SELECT skip_package(p, $2) FROM unnest($1::text[]) AS p",
                &[&packages, &reason],
            )
            .map(drop)
        })
    }

    /// `skip_package_version(p, v, reason)` for every pair, in one
    /// statement.
    pub fn skip_versions(
        &mut self,
        versions: &[(String, String)],
        reason: &str,
    ) -> Result<(), DbError> {
        if versions.is_empty() {
            return Ok(());
        }
        let (packages, vers): (Vec<&str>, Vec<&str>) = versions
            .iter()
            .map(|(p, v)| (p.as_str(), v.as_str()))
            .unzip();
        self.run(Retry::Safe, |c| {
            c.execute(
                "SELECT skip_package_version(p, v, $3) \
                 FROM unnest($1::text[], $2::text[]) AS t(p, v)",
                &[&packages, &vers, &reason],
            )
            .map(drop)
        })
    }
}
