//! The calls: one method per stored function the master uses (named after
//! it), plus the plain SELECTs. Each is one short transaction. The verb of
//! piwheels' oracle protocol is given for each.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use postgres::Row;

use super::types::sanitize;
use super::{
    AccessLog, BuildLog, Database, DbError, HitLog, ProjectData, Retry, RewriteCommand,
    RewritePending, Statistics,
};

fn naive(t: &DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

fn opt(s: &Option<String>) -> Option<String> {
    s.as_deref().map(|v| sanitize(v).into_owned())
}

impl Database {
    // ---- plain SELECTs ---------------------------------------------------

    /// `configuration.version`.
    pub fn get_version(&mut self) -> Result<String, DbError> {
        self.run(Retry::Safe, |c| {
            Ok(
                c.query_one("SELECT version::text FROM configuration LIMIT 1", &[])?
                    .get(0),
            )
        })
    }

    /// ALLPKGS: every package name, streamed to `each`.
    pub fn for_each_package(&mut self, mut each: impl FnMut(&str)) -> Result<usize, DbError> {
        self.run_stream("SELECT package FROM packages", &[], None, &mut |r: &Row| {
            each(r.get(0));
            Ok(())
        })
    }

    /// ALLPKGS: every package name.
    pub fn get_all_packages(&mut self) -> Result<HashSet<String>, DbError> {
        let mut out = HashSet::new();
        self.for_each_package(|p| {
            out.insert(p.to_owned());
        })?;
        Ok(out)
    }

    /// ALLVERS: every (package, version), streamed to `each`.
    pub fn for_each_package_version(
        &mut self,
        mut each: impl FnMut(&str, &str),
    ) -> Result<usize, DbError> {
        self.run_stream(
            "SELECT package, version FROM versions",
            &[],
            None,
            &mut |r: &Row| {
                each(r.get(0), r.get(1));
                Ok(())
            },
        )
    }

    /// ALLVERS: every (package, version).
    pub fn get_all_package_versions(&mut self) -> Result<HashSet<(String, String)>, DbError> {
        let mut out = HashSet::new();
        self.for_each_package_version(|p, v| {
            out.insert((p.to_owned(), v.to_owned()));
        })?;
        Ok(out)
    }

    /// GETABIS: the build ABIs; with `exclude_skipped`, only active ones.
    pub fn get_build_abis(&mut self, exclude_skipped: bool) -> Result<BTreeSet<String>, DbError> {
        self.run(Retry::Safe, |c| {
            Ok(c.query(
                "SELECT abi_tag FROM build_abis WHERE skip = '' OR NOT $1",
                &[&exclude_skipped],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })
    }

    /// GETSKIP: the skip reason of a version (None if there is no such
    /// version).
    pub fn get_version_skip(
        &mut self,
        package: &str,
        version: &str,
    ) -> Result<Option<String>, DbError> {
        self.run(Retry::Safe, |c| {
            Ok(c.query_opt(
                "SELECT skip FROM versions WHERE package = $1 AND version = $2",
                &[&package, &version],
            )?
            .map(|r| r.get(0)))
        })
    }

    // ---- PyPI serial ------------------------------------------------------

    /// GETPYPI: `get_pypi_serial()`.
    pub fn get_pypi_serial(&mut self) -> Result<i64, DbError> {
        self.run(Retry::Safe, |c| {
            Ok(c.query_one("VALUES (get_pypi_serial())", &[])?.get(0))
        })
    }

    /// SETPYPI: `set_pypi_serial(serial)`. Lowering it is refused by the
    /// database (a [`DbError::Query`]).
    pub fn set_pypi_serial(&mut self, serial: i64) -> Result<(), DbError> {
        self.run(Retry::Safe, |c| {
            c.execute(
                "VALUES (set_pypi_serial(CAST($1::bigint AS integer)))",
                &[&serial],
            )
            .map(drop)
        })
    }

    // ---- packages, names, versions ----------------------------------------

    /// NEWPKG: `add_new_package(package, skip, description)`; true when added.
    pub fn add_new_package(
        &mut self,
        package: &str,
        skip: &str,
        description: &str,
    ) -> Result<bool, DbError> {
        self.run(Retry::Unsafe, |c| {
            Ok(c.query_one(
                "VALUES (add_new_package($1, $2, $3))",
                &[&package, &skip, &description],
            )?
            .get(0))
        })
    }

    /// NEWVER: `add_new_package_version(...)`; true when added. With no
    /// release time, now is used (as piwheels' master does).
    pub fn add_new_package_version(
        &mut self,
        package: &str,
        version: &str,
        released: Option<DateTime<Utc>>,
        skip: &str,
    ) -> Result<bool, DbError> {
        let released = naive(&released.unwrap_or_else(Utc::now));
        self.run(Retry::Unsafe, |c| {
            Ok(c.query_one(
                "VALUES (add_new_package_version($1, $2, $3, $4))",
                &[&package, &version, &released, &skip],
            )?
            .get(0))
        })
    }

    /// NEWPKGNAME: `add_package_name(package, name, seen)`; no time means the
    /// epoch.
    pub fn add_package_name(
        &mut self,
        package: &str,
        name: &str,
        seen: Option<DateTime<Utc>>,
    ) -> Result<(), DbError> {
        let seen = seen.map(|t| naive(&t)).unwrap_or_default();
        self.run(Retry::Safe, |c| {
            c.execute(
                "VALUES (add_package_name($1, $2, $3))",
                &[&package, &name, &seen],
            )
            .map(drop)
        })
    }

    /// GETPKGNAMES: `get_package_aliases(package)`.
    pub fn get_package_aliases(&mut self, package: &str) -> Result<Vec<String>, DbError> {
        self.run(Retry::Safe, |c| {
            Ok(
                c.query("SELECT name FROM get_package_aliases($1)", &[&package])?
                    .iter()
                    .map(|r| r.get(0))
                    .collect(),
            )
        })
    }

    /// SETDESC: `set_package_description(package, description)`.
    pub fn set_package_description(
        &mut self,
        package: &str,
        description: &str,
    ) -> Result<(), DbError> {
        self.run(Retry::Safe, |c| {
            c.execute(
                "VALUES (set_package_description($1, $2))",
                &[&package, &description],
            )
            .map(drop)
        })
    }

    /// SKIPPKG: `skip_package(package, reason)`.
    pub fn skip_package(&mut self, package: &str, reason: &str) -> Result<(), DbError> {
        self.run(Retry::Safe, |c| {
            c.execute("VALUES (skip_package($1, $2))", &[&package, &reason])
                .map(drop)
        })
    }

    /// SKIPVER: `skip_package_version(package, version, reason)`.
    pub fn skip_package_version(
        &mut self,
        package: &str,
        version: &str,
        reason: &str,
    ) -> Result<(), DbError> {
        self.run(Retry::Safe, |c| {
            c.execute(
                "VALUES (skip_package_version($1, $2, $3))",
                &[&package, &version, &reason],
            )
            .map(drop)
        })
    }

    /// DELPKG: `delete_package(package)`.
    pub fn delete_package(&mut self, package: &str) -> Result<(), DbError> {
        self.run(Retry::Safe, |c| {
            c.execute("VALUES (delete_package($1))", &[&package])
                .map(drop)
        })
    }

    /// DELVER: `delete_version(package, version)`.
    pub fn delete_version(&mut self, package: &str, version: &str) -> Result<(), DbError> {
        self.run(Retry::Safe, |c| {
            c.execute("VALUES (delete_version($1, $2))", &[&package, &version])
                .map(drop)
        })
    }

    /// YANKVER: `yank_version(package, version)`.
    pub fn yank_version(&mut self, package: &str, version: &str) -> Result<(), DbError> {
        self.run(Retry::Safe, |c| {
            c.execute("VALUES (yank_version($1, $2))", &[&package, &version])
                .map(drop)
        })
    }

    /// UNYANKVER: `unyank_version(package, version)`.
    pub fn unyank_version(&mut self, package: &str, version: &str) -> Result<(), DbError> {
        self.run(Retry::Safe, |c| {
            c.execute("VALUES (unyank_version($1, $2))", &[&package, &version])
                .map(drop)
        })
    }

    /// PKGEXISTS: `test_package(package)`.
    pub fn test_package(&mut self, package: &str) -> Result<bool, DbError> {
        self.run(Retry::Safe, |c| {
            Ok(c.query_one("VALUES (test_package($1))", &[&package])?
                .get::<_, Option<bool>>(0)
                .unwrap_or(false))
        })
    }

    /// PKGDELETED: `package_marked_deleted(package)`.
    pub fn package_marked_deleted(&mut self, package: &str) -> Result<bool, DbError> {
        self.run(Retry::Safe, |c| {
            Ok(
                c.query_one("VALUES (package_marked_deleted($1))", &[&package])?
                    .get::<_, Option<bool>>(0)
                    .unwrap_or(false),
            )
        })
    }

    /// VEREXISTS: `test_package_version(package, version)`.
    pub fn test_package_version(&mut self, package: &str, version: &str) -> Result<bool, DbError> {
        self.run(Retry::Safe, |c| {
            Ok(c.query_one(
                "VALUES (test_package_version($1, $2))",
                &[&package, &version],
            )?
            .get::<_, Option<bool>>(0)
            .unwrap_or(false))
        })
    }

    /// VERSDELETED: `get_versions_deleted(package)`.
    pub fn get_versions_deleted(&mut self, package: &str) -> Result<BTreeSet<String>, DbError> {
        self.run(Retry::Safe, |c| {
            Ok(
                c.query("SELECT version FROM get_versions_deleted($1)", &[&package])?
                    .iter()
                    .map(|r| r.get(0))
                    .collect(),
            )
        })
    }

    // ---- access logs --------------------------------------------------------

    /// LOGDOWNLOAD: `log_download(...)`.
    pub fn log_download(&mut self, d: &AccessLog) -> Result<(), DbError> {
        self.log_access(
            "VALUES (log_download($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13))",
            d,
        )
    }

    /// LOGSEARCH: `log_search(...)`.
    pub fn log_search(&mut self, s: &AccessLog) -> Result<(), DbError> {
        self.log_access(
            "VALUES (log_search($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13))",
            s,
        )
    }

    fn log_access(&mut self, sql: &'static str, d: &AccessLog) -> Result<(), DbError> {
        let name = sanitize(&d.name).into_owned();
        let at = naive(&d.timestamp);
        let fields: [Option<String>; 10] = [
            opt(&d.arch),
            opt(&d.distro_name),
            opt(&d.distro_version),
            opt(&d.os_name),
            opt(&d.os_version),
            opt(&d.py_name),
            opt(&d.py_version),
            opt(&d.installer_name),
            opt(&d.installer_version),
            opt(&d.setuptools_version),
        ];
        self.run(Retry::Unsafe, |c| {
            c.execute(
                sql,
                &[
                    &name, &d.host, &at, &fields[0], &fields[1], &fields[2], &fields[3],
                    &fields[4], &fields[5], &fields[6], &fields[7], &fields[8], &fields[9],
                ],
            )
            .map(drop)
        })
    }

    /// LOGPROJECT: `log_project(package, host, at, user_agent)`.
    pub fn log_project(&mut self, h: &HitLog) -> Result<(), DbError> {
        self.log_hit("VALUES (log_project($1, $2, $3, $4))", h)
    }

    /// LOGJSON: `log_json(package, host, at, user_agent)`.
    pub fn log_json(&mut self, h: &HitLog) -> Result<(), DbError> {
        self.log_hit("VALUES (log_json($1, $2, $3, $4))", h)
    }

    /// LOGPAGE: `log_page(page, host, at, user_agent)`.
    pub fn log_page(&mut self, h: &HitLog) -> Result<(), DbError> {
        self.log_hit("VALUES (log_page($1, $2, $3, $4))", h)
    }

    fn log_hit(&mut self, sql: &'static str, h: &HitLog) -> Result<(), DbError> {
        let name = sanitize(&h.name).into_owned();
        let at = naive(&h.timestamp);
        let ua = opt(&h.user_agent);
        self.run(Retry::Unsafe, |c| {
            c.execute(sql, &[&name, &h.host, &at, &ua]).map(drop)
        })
    }

    // ---- builds ---------------------------------------------------------------

    /// LOGBUILD: `log_build_success(...)` or `log_build_failure(...)`;
    /// returns the new build_id.
    pub fn log_build(&mut self, b: &BuildLog) -> Result<i32, DbError> {
        let secs = b.duration.as_secs_f64();
        if !b.status {
            return self.run(Retry::Unsafe, |c| {
                Ok(c.query_one(
                    "VALUES (log_build_failure($1, $2, $3, make_interval(secs => $4), $5))",
                    &[&b.package, &b.version, &b.built_by, &secs, &b.abi_tag],
                )?
                .get(0))
            });
        }
        // The composite arrays are assembled server-side from parallel
        // arrays, in order (WITH ORDINALITY).
        let col =
            |f: fn(&super::BuiltFile) -> &str| -> Vec<&str> { b.files.iter().map(f).collect() };
        let filenames = col(|f| &f.filename);
        let sizes: Vec<i64> = b.files.iter().map(|f| f.filesize).collect();
        let hashes = col(|f| &f.filehash);
        let package_tags = col(|f| &f.package_tag);
        let version_tags = col(|f| &f.package_version_tag);
        let py_tags = col(|f| &f.py_version_tag);
        let abi_tags = col(|f| &f.abi_tag);
        let platform_tags = col(|f| &f.platform_tag);
        let requires: Vec<Option<&str>> = b
            .files
            .iter()
            .map(|f| f.requires_python.as_deref())
            .collect();
        let locations = col(|f| &f.location);
        let deps: Vec<(&str, &str, &str)> = b
            .files
            .iter()
            .flat_map(|f| {
                f.dependencies
                    .iter()
                    .map(move |(tool, dep)| (f.filename.as_str(), tool.as_str(), dep.as_str()))
            })
            .collect();
        let dep_files: Vec<&str> = deps.iter().map(|d| d.0).collect();
        let dep_tools: Vec<&str> = deps.iter().map(|d| d.1).collect();
        let dep_names: Vec<&str> = deps.iter().map(|d| d.2).collect();
        self.run(Retry::Unsafe, |c| {
            Ok(c.query_one(
                "VALUES (log_build_success($1, $2, $3, make_interval(secs => $4), $5, \
                   ARRAY(SELECT ROW(f.filename, NULL, f.filesize, f.filehash, f.package_tag, \
                                    f.package_version_tag, f.py_version_tag, f.abi_tag, \
                                    f.platform_tag, f.requires_python, f.location)::files \
                         FROM unnest($6::text[], $7::int8[], $8::text[], $9::text[], \
                                     $10::text[], $11::text[], $12::text[], $13::text[], \
                                     $14::text[], $15::text[]) WITH ORDINALITY \
                              AS f(filename, filesize, filehash, package_tag, \
                                   package_version_tag, py_version_tag, abi_tag, \
                                   platform_tag, requires_python, location, n) \
                         ORDER BY f.n), \
                   ARRAY(SELECT ROW(d.filename, d.tool, d.dependency)::dependencies \
                         FROM unnest($16::text[], $17::text[], $18::text[]) WITH ORDINALITY \
                              AS d(filename, tool, dependency, n) \
                         ORDER BY d.n)))",
                &[
                    &b.package,
                    &b.version,
                    &b.built_by,
                    &secs,
                    &b.abi_tag,
                    &filenames,
                    &sizes,
                    &hashes,
                    &package_tags,
                    &version_tags,
                    &py_tags,
                    &abi_tags,
                    &platform_tags,
                    &requires,
                    &locations,
                    &dep_files,
                    &dep_tools,
                    &dep_names,
                ],
            )?
            .get(0))
        })
    }

    /// DELBUILD: `delete_build(package, version)`.
    pub fn delete_build(&mut self, package: &str, version: &str) -> Result<(), DbError> {
        self.run(Retry::Safe, |c| {
            c.execute("VALUES (delete_build($1, $2))", &[&package, &version])
                .map(drop)
        })
    }

    /// The build queue, `get_build_queue(limit)`: up to `limit` entries per
    /// ABI, streamed to `each(abi, package, version)` in queue order (by
    /// ABI, then position). Runs under [`super::Options::queue_timeout`].
    pub fn get_build_queue(
        &mut self,
        limit: i32,
        mut each: impl FnMut(&str, &str, &str),
    ) -> Result<usize, DbError> {
        let timeout = Some(self.options.queue_timeout);
        self.run_stream(
            "SELECT abi_tag, package, version FROM get_build_queue($1)",
            &[&limit],
            timeout,
            &mut |r: &Row| {
                each(r.get(0), r.get(1), r.get(2));
                Ok(())
            },
        )
    }

    /// [`Database::get_build_queue`] collected per ABI.
    pub fn get_build_queue_map(
        &mut self,
        limit: i32,
    ) -> Result<BTreeMap<String, Vec<(String, String)>>, DbError> {
        let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        self.get_build_queue(limit, |abi, p, v| {
            match out.get_mut(abi) {
                Some(q) => q.push((p.to_owned(), v.to_owned())),
                None => {
                    out.insert(abi.to_owned(), vec![(p.to_owned(), v.to_owned())]);
                }
            };
        })?;
        Ok(out)
    }

    // ---- statistics -----------------------------------------------------------

    /// INITSTATS: `get_initial_statistics()` (the all-time download count).
    pub fn get_initial_statistics(&mut self) -> Result<i64, DbError> {
        self.run(Retry::Safe, |c| {
            Ok(
                c.query_one("SELECT downloads_all FROM get_initial_statistics()", &[])?
                    .get(0),
            )
        })
    }

    /// GETSTATS: `get_statistics()` and `get_builds_last_hour()`, in one
    /// transaction.
    pub fn get_statistics(&mut self) -> Result<Statistics, DbError> {
        self.run(Retry::Safe, |c| {
            c.transaction(|tx| {
                let r = tx.query_one(
                    "SELECT EXTRACT(EPOCH FROM builds_time)::float8, builds_size, \
                            packages_built, files_count, new_last_hour, \
                            downloads_last_month, downloads_last_hour \
                     FROM get_statistics()",
                    &[],
                )?;
                let builds_last_hour = tx
                    .query("SELECT abi_tag, builds FROM get_builds_last_hour()", &[])?
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect();
                Ok(Statistics {
                    builds_time: std::time::Duration::from_secs_f64(r.get::<_, f64>(0).max(0.0)),
                    builds_size: r.get(1),
                    packages_built: r.get(2),
                    files_count: r.get(3),
                    new_last_hour: r.get(4),
                    downloads_last_month: r.get(5),
                    downloads_last_hour: r.get(6),
                    builds_last_hour,
                })
            })
        })
    }

    /// GETSEARCH: `get_search_index()`, streamed to
    /// `each(package, downloads_recent, downloads_all)`.
    pub fn get_search_index(
        &mut self,
        mut each: impl FnMut(&str, i32, i32),
    ) -> Result<usize, DbError> {
        self.run_stream(
            "SELECT package, downloads_recent, downloads_all FROM get_search_index()",
            &[],
            None,
            &mut |r: &Row| {
                each(r.get(0), r.get(1), r.get(2));
                Ok(())
            },
        )
    }

    // ---- files and project pages ------------------------------------------------

    /// PKGFILES: `get_package_files(package)` as filename → hash.
    pub fn get_package_files(
        &mut self,
        package: &str,
    ) -> Result<BTreeMap<String, String>, DbError> {
        self.run(Retry::Safe, |c| {
            Ok(c.query(
                "SELECT filename, filehash FROM get_package_files($1)",
                &[&package],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
        })
    }

    /// VERFILES: `get_version_files(package, version)`.
    pub fn get_version_files(
        &mut self,
        package: &str,
        version: &str,
    ) -> Result<BTreeSet<String>, DbError> {
        self.run(Retry::Safe, |c| {
            Ok(c.query(
                "SELECT filename FROM get_version_files($1, $2)",
                &[&package, &version],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })
    }

    /// `get_project_data(package)` as the JSON text PostgreSQL produced.
    pub fn get_project_data_json(&mut self, package: &str) -> Result<String, DbError> {
        self.run(Retry::Safe, |c| {
            Ok(
                c.query_one("SELECT get_project_data($1)::text", &[&package])?
                    .get(0),
            )
        })
    }

    /// PROJDATA: `get_project_data(package)`, typed.
    pub fn get_project_data(&mut self, package: &str) -> Result<ProjectData, DbError> {
        let text = self.get_project_data_json(package)?;
        ProjectData::from_json(&text).map_err(DbError::Data)
    }

    // ---- the web writer's buffer ------------------------------------------------

    /// SAVERWP: `save_rewrites_pending(rows)` (replaces what was saved).
    pub fn save_rewrites_pending(&mut self, rows: &[RewritePending]) -> Result<(), DbError> {
        let packages: Vec<&str> = rows.iter().map(|r| r.package.as_str()).collect();
        let added: Vec<NaiveDateTime> = rows.iter().map(|r| naive(&r.added_at)).collect();
        let commands: Vec<&str> = rows.iter().map(|r| r.command.as_str()).collect();
        self.run(Retry::Safe, |c| {
            c.execute(
                "VALUES (save_rewrites_pending(ARRAY( \
                   SELECT ROW(r.package, r.added_at, r.command)::rewrites_pending \
                   FROM unnest($1::text[], $2::timestamp[], $3::text[]) WITH ORDINALITY \
                        AS r(package, added_at, command, n) \
                   ORDER BY r.n)))",
                &[&packages, &added, &commands],
            )
            .map(drop)
        })
    }

    /// LOADRWP: `load_rewrites_pending()`, oldest first.
    pub fn load_rewrites_pending(&mut self) -> Result<Vec<RewritePending>, DbError> {
        let rows = self.run(Retry::Safe, |c| {
            c.query(
                "SELECT package, added_at, command FROM load_rewrites_pending()",
                &[],
            )
        })?;
        rows.iter()
            .map(|r| {
                let command: &str = r.get(2);
                Ok(RewritePending {
                    package: r.get(0),
                    added_at: r.get::<_, NaiveDateTime>(1).and_utc(),
                    command: RewriteCommand::parse(command)
                        .ok_or_else(|| DbError::Data(format!("unknown command {command:?}")))?,
                })
            })
            .collect()
    }
}
