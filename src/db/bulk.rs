//! Bulk reads for the web writer. `get_project_data` costs about 5 ms a
//! call from a client (most of it planning the function's query) but about
//! 0.2 ms a package when one statement runs it for many packages (the plan
//! is kept for the statement), so the secretary's flushes ask for their
//! projects in one statement and stream the documents row by row, never
//! holding more than one.
//!
//! A full rewrite goes further: it reads a chunk of packages straight from
//! the tables with index range scans ([`CHUNK_SQL`]) and assembles the
//! documents itself, 0.08 ms a package instead of 0.15 (100,000 packages:
//! about 8 s of reading instead of 15). The two paths are held equal by
//! `tests/web_bulk.rs`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDateTime;
use postgres::Row;

use super::{AbiStatus, BuildStatus, Database, DbError, FileInfo, ProjectData, Release};

/// One project as the bulk reads return it.
#[derive(Debug)]
pub struct ProjectRow {
    /// The package's name (as asked for, or as stored).
    pub package: String,
    /// Whether the package is in the `packages` table.
    pub exists: bool,
    /// `get_project_data(package)`, or why it could not be read.
    pub data: Result<ProjectData, String>,
    /// Its other spellings (`get_package_aliases`).
    pub aliases: Vec<String>,
}

fn project_row(r: &Row) -> ProjectRow {
    let json: Option<String> = r.get(2);
    ProjectRow {
        package: r.get(0),
        exists: r.get(1),
        data: json
            .ok_or_else(|| "no document".to_owned())
            .and_then(|j| ProjectData::from_json(&j)),
        aliases: r.get::<_, Option<Vec<String>>>(3).unwrap_or_default(),
    }
}

impl Database {
    /// Streams the projects named in `packages` (in that order) to `each`.
    /// A name that is not a package comes back with `exists == false`.
    pub fn for_each_project_of(
        &mut self,
        packages: &[String],
        mut each: impl FnMut(ProjectRow),
    ) -> Result<usize, DbError> {
        self.run_stream(
            "SELECT r.package, p.package IS NOT NULL, \
                    CASE WHEN p.package IS NOT NULL \
                         THEN get_project_data(r.package)::text END, \
                    ARRAY(SELECT a.name FROM get_package_aliases(r.package) AS a \
                          ORDER BY a.name) \
             FROM unnest($1::text[]) WITH ORDINALITY AS r(package, n) \
             LEFT JOIN packages AS p ON p.package = r.package \
             ORDER BY r.n",
            &[&packages],
            None,
            &mut |r: &Row| {
                each(project_row(r));
                Ok(())
            },
        )
    }

    /// Streams up to `limit` projects whose names sort after `after`, in
    /// name order (keyset pages for a full rewrite); returns how many.
    ///
    /// Unlike [`Database::for_each_project_of`] this does not call
    /// `get_project_data` per package: one statement reads the chunk's
    /// rows from the tables ([`CHUNK_SQL`]) and [`Assembler`] builds the
    /// same documents from them, which is several times faster for a whole
    /// site. `tests/web_bulk.rs` holds the two equal on varied data.
    pub fn for_each_project_after(
        &mut self,
        after: &str,
        limit: i64,
        mut each: impl FnMut(ProjectRow),
    ) -> Result<usize, DbError> {
        let mut assembler = Assembler::default();
        let mut emitted = 0;
        self.run_stream(CHUNK_SQL, &[&after, &limit], None, &mut |r: &Row| {
            if let Some(done) = assembler.row(r) {
                emitted += 1;
                each(done);
            }
            Ok(())
        })?;
        if let Some(done) = assembler.finish() {
            emitted += 1;
            each(done);
        }
        Ok(emitted)
    }

    /// Streams every package name in name order.
    pub fn for_each_package_sorted(
        &mut self,
        mut each: impl FnMut(&str),
    ) -> Result<usize, DbError> {
        self.run_stream(
            "SELECT package FROM packages ORDER BY package",
            &[],
            None,
            &mut |r: &Row| {
                each(r.get(0));
                Ok(())
            },
        )
    }
}

/// One chunk of a full rewrite, as rows of six kinds in one statement (so
/// one snapshot: a document never mixes two states of the database).
///
/// The rows come sorted by package, then kind, then `a`, and every package
/// of the chunk has exactly one kind-0 row, first. Columns: `kind`,
/// `package`, `version`, text columns `a`..`g`, `n` (bigint), `t`
/// (timestamp), `flag` (boolean); per kind:
///
/// | kind | what | columns |
/// |---|---|---|
/// | 0 | the package | a description, b display name (latest seen) |
/// | 1 | an alias (`get_package_aliases`) | a name |
/// | 2 | a release | version, a skip (the version's, else the package's), t released, flag yanked |
/// | 3 | an ABI's status (`abis`) | version, a ABI, b status, n build id |
/// | 4 | a wheel | version, a filename, b location, c hash, d builder's ABI, e file's ABI, f platform, g Requires-Python, n size |
/// | 5 | a wheel's dependency | version, a filename, b tool, c dependency |
///
/// Kinds 2-5 follow `get_project_data` (sql/update_piwheels_0.22_to_0.23.sql)
/// clause by clause: the same pairing scores, the same ranking with its
/// tie-break, the same apt packages left out. The hash goes through
/// `concat` so a CHAR(64) keeps its padding, as the JSON does.
pub(crate) const CHUNK_SQL: &str = "\
WITH chunk AS MATERIALIZED (
    SELECT p.package, p.description, p.skip
    FROM packages AS p
    WHERE p.package > $1
    ORDER BY p.package
    LIMIT $2
),
-- The other tables are read by the chunk's key range, not joined to the
-- chunk, so each is an index range scan whatever the size of the site
-- (their package columns reference packages, so the range holds exactly
-- the chunk's rows).
bounds AS MATERIALIZED (
    SELECT max(c.package) AS last FROM chunk AS c
),
chunk_versions AS MATERIALIZED (
    SELECT v.package, v.version, v.released, v.skip, v.yanked
    FROM versions AS v
    WHERE v.package > $1 AND v.package <= (SELECT b.last FROM bounds AS b)
),
chunk_builds AS MATERIALIZED (
    SELECT b.build_id, b.package, b.version, b.status, b.abi_tag
    FROM builds AS b
    WHERE b.package > $1 AND b.package <= (SELECT b.last FROM bounds AS b)
),
pairings AS (
    SELECT
        v.package,
        v.version,
        b.build_id,
        CASE
            WHEN b.build_id IS NULL THEN 1
            WHEN b.abi_tag = a.abi_tag THEN
                CASE
                    WHEN NOT b.status THEN 2
                    WHEN f.abi_tag IS NULL THEN 1
                    WHEN f.abi_tag = a.abi_tag THEN 5
                    WHEN f.abi_tag IN ('none', 'abi3') THEN 4
                    ELSE -2
                END
            ELSE
                CASE
                    WHEN NOT b.status THEN -1
                    WHEN f.abi_tag = a.abi_tag THEN 4
                    WHEN f.abi_tag IN ('none', 'abi3') THEN 3
                    ELSE -1
                END
        END AS score,
        CASE
            WHEN f.abi_tag IN ('none', 'abi3') THEN a.abi_tag
            ELSE COALESCE(f.abi_tag, b.abi_tag, a.abi_tag)
        END AS report_abi,
        CASE
            WHEN c.skip <> '' OR v.skip <> '' THEN 'skip'
            WHEN b.status AND f.build_id IS NOT NULL THEN 'success'
            WHEN NOT b.status THEN 'fail'
            WHEN b.build_id IS NULL THEN 'pending'
            ELSE 'error'
        END AS status
    FROM chunk AS c
    JOIN chunk_versions AS v ON v.package = c.package
    CROSS JOIN build_abis AS a
    LEFT JOIN chunk_builds AS b
        ON b.package = v.package
        AND b.version = v.version
        AND b.abi_tag <= a.abi_tag
    LEFT JOIN files AS f ON f.build_id = b.build_id
    WHERE a.skip = ''
),
ranked AS (
    SELECT
        pr.*,
        ROW_NUMBER() OVER (
            PARTITION BY pr.package, pr.version, pr.report_abi
            ORDER BY pr.score DESC, pr.build_id DESC NULLS LAST
        ) AS rank
    FROM pairings AS pr
),
chunk_files AS MATERIALIZED (
    SELECT b.package, b.version, b.abi_tag AS abi_builder, f.filename,
           f.location, f.filehash, f.filesize, f.abi_tag, f.platform_tag,
           f.requires_python
    FROM chunk_builds AS b
    JOIN files AS f ON f.build_id = b.build_id
)
SELECT 0 AS kind, c.package::text AS package, NULL::text AS version,
       c.description::text AS a,
       (SELECT n.name FROM package_names AS n
        WHERE n.package = c.package
        ORDER BY n.seen DESC LIMIT 1)::text AS b,
       NULL::text AS c, NULL::text AS d, NULL::text AS e, NULL::text AS f,
       NULL::text AS g, NULL::bigint AS n, NULL::timestamp AS t,
       NULL::boolean AS flag
FROM chunk AS c
UNION ALL
SELECT 1, n.package, NULL, n.name, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL
FROM package_names AS n
WHERE n.package > $1 AND n.package <= (SELECT b.last FROM bounds AS b)
  AND n.name <> n.package
UNION ALL
SELECT 2, v.package, v.version, COALESCE(NULLIF(v.skip, ''), c.skip), NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, v.released, v.yanked
FROM chunk AS c JOIN chunk_versions AS v ON v.package = c.package
UNION ALL
SELECT 3, r.package, r.version, r.report_abi, r.status, NULL, NULL, NULL,
       NULL, NULL, r.build_id, NULL, NULL
FROM ranked AS r
WHERE r.rank = 1 AND r.score >= 0
UNION ALL
SELECT 4, cf.package, cf.version, cf.filename, cf.location,
       concat(cf.filehash), cf.abi_builder, cf.abi_tag, cf.platform_tag,
       cf.requires_python, cf.filesize, NULL, NULL
FROM chunk_files AS cf
UNION ALL
SELECT 5, cf.package, cf.version, cf.filename, d.tool, d.dependency, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL
FROM chunk_files AS cf JOIN dependencies AS d ON d.filename = cf.filename
WHERE d.tool = 'pip'
   OR (d.tool = 'apt' AND NOT EXISTS (
         SELECT 1 FROM preinstalled_apt_packages AS i
         WHERE i.abi_tag = cf.abi_tag AND i.apt_package = d.dependency))
ORDER BY 2, 1, 4";

/// Builds [`ProjectRow`]s from [`CHUNK_SQL`]'s rows, one package at a
/// time: only the package being assembled is held.
#[derive(Default)]
pub(crate) struct Assembler {
    current: Option<Building>,
}

struct Building {
    package: String,
    data: ProjectData,
    aliases: Vec<String>,
    /// The first thing wrong with this package's rows, if any.
    error: Option<String>,
}

impl Building {
    fn done(self) -> ProjectRow {
        ProjectRow {
            package: self.package,
            exists: true,
            data: match self.error {
                None => Ok(self.data),
                Some(e) => Err(e),
            },
            aliases: self.aliases,
        }
    }

    fn release(&mut self, version: Option<String>) -> Result<&mut Release, String> {
        let version = version.ok_or("a row without its version")?;
        // A file of a build whose version row is gone is left out, as the
        // function's join to versions leaves it out.
        self.data
            .releases
            .get_mut(&version)
            .ok_or_else(|| format!("no release {version}"))
    }
}

impl Assembler {
    /// Takes the next row; returns the previous package when this row
    /// starts a new one.
    pub(crate) fn row(&mut self, r: &Row) -> Option<ProjectRow> {
        let kind: i32 = r.try_get(0).unwrap_or(-1);
        let package: String = r.try_get(1).unwrap_or_default();
        let mut finished = None;
        if kind == 0 || self.current.as_ref().is_none_or(|b| b.package != package) {
            finished = self.current.take().map(Building::done);
            self.current = Some(Building {
                package: package.clone(),
                data: ProjectData {
                    name: None,
                    description: None,
                    releases: BTreeMap::new(),
                },
                aliases: Vec::new(),
                error: (kind != 0).then(|| format!("rows of {package} came out of order")),
            });
        }
        let building = self.current.as_mut().expect("set above");
        if building.error.is_none()
            && let Err(e) = Self::apply(building, kind, r)
        {
            building.error = Some(e);
        }
        finished
    }

    /// The last package, once the rows are over.
    pub(crate) fn finish(&mut self) -> Option<ProjectRow> {
        self.current.take().map(Building::done)
    }

    fn apply(b: &mut Building, kind: i32, r: &Row) -> Result<(), String> {
        let text = |i: usize| -> Result<Option<String>, String> {
            r.try_get::<_, Option<String>>(i).map_err(|e| e.to_string())
        };
        let need = |i: usize, what: &str| -> Result<String, String> {
            text(i)?.ok_or_else(|| format!("{what} is null"))
        };
        let version = text(2)?;
        match kind {
            0 => {
                b.data.description = text(3)?;
                b.data.name = text(4)?;
            }
            1 => b.aliases.push(need(3, "an alias")?),
            2 => {
                let version = version.ok_or("a release without its version")?;
                let released: NaiveDateTime = r
                    .try_get::<_, Option<NaiveDateTime>>(11)
                    .map_err(|e| e.to_string())?
                    .ok_or("released is null")?;
                let yanked = r
                    .try_get::<_, Option<bool>>(12)
                    .map_err(|e| e.to_string())?
                    .unwrap_or(false);
                b.data.releases.insert(
                    version,
                    Release {
                        yanked,
                        released: released.and_utc(),
                        skip: text(3)?.unwrap_or_default(),
                        files: BTreeMap::new(),
                        abis: BTreeMap::new(),
                    },
                );
            }
            3 => {
                let abi = need(3, "an ABI")?;
                let status_text = need(4, "a status")?;
                let status = BuildStatus::parse(&status_text)
                    .ok_or_else(|| format!("unknown status {status_text:?}"))?;
                let build_id = r
                    .try_get::<_, Option<i64>>(10)
                    .map_err(|e| e.to_string())?
                    .map(|n| i32::try_from(n).map_err(|_| "build_id is out of range"))
                    .transpose()?;
                b.release(version)?
                    .abis
                    .insert(abi, AbiStatus { status, build_id });
            }
            4 => {
                let filename = need(3, "a filename")?;
                let info = FileInfo {
                    location: need(4, "location")?,
                    hash: need(5, "hash")?,
                    size: r
                        .try_get::<_, Option<i64>>(10)
                        .map_err(|e| e.to_string())?
                        .ok_or("size is null")?,
                    abi_builder: need(6, "abi_builder")?,
                    abi_file: need(7, "abi_file")?,
                    platform: need(8, "platform")?,
                    requires_python: text(9)?,
                    apt_dependencies: BTreeSet::new(),
                    pip_dependencies: BTreeSet::new(),
                };
                if let Ok(release) = b.release(version) {
                    release.files.insert(filename, info);
                }
            }
            5 => {
                let filename = need(3, "a filename")?;
                let tool = need(4, "a tool")?;
                let dependency = need(5, "a dependency")?;
                let file = b
                    .release(version)
                    .ok()
                    .and_then(|r| r.files.get_mut(&filename));
                if let Some(file) = file {
                    match tool.as_str() {
                        "apt" => file.apt_dependencies.insert(dependency),
                        _ => file.pip_dependencies.insert(dependency),
                    };
                }
            }
            other => return Err(format!("a row of unknown kind {other}")),
        }
        Ok(())
    }
}
