//! Bulk reads for the web writer. `get_project_data` costs about 5 ms a
//! call from a client (most of it planning the function's query) but about
//! 0.2 ms a package when one statement runs it for many packages (the plan
//! is kept for the statement), so the scribe asks for projects in batches
//! and streams the documents row by row, never holding more than one.

use postgres::Row;

use super::{Database, DbError, ProjectData};

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
    /// name order (keyset pages for a full rewrite).
    pub fn for_each_project_after(
        &mut self,
        after: &str,
        limit: i64,
        mut each: impl FnMut(ProjectRow),
    ) -> Result<usize, DbError> {
        self.run_stream(
            "SELECT p.package, true, get_project_data(p.package)::text, \
                    ARRAY(SELECT a.name FROM get_package_aliases(p.package) AS a \
                          ORDER BY a.name) \
             FROM packages AS p \
             WHERE p.package > $1 \
             ORDER BY p.package \
             LIMIT $2",
            &[&after, &limit],
            None,
            &mut |r: &Row| {
                each(project_row(r));
                Ok(())
            },
        )
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
