//! The privilege model initdb sets up: the master's role reads tables and
//! runs functions, and can change nothing directly; PUBLIC gets nothing.

use piwheels::db::{Database, DbError};
use piwheels::testing::TestDb;
use postgres::NoTls;

fn tables(db: &TestDb) -> Vec<(String, String)> {
    db.admin()
        .query(
            "SELECT c.relname::text, \
                    (SELECT a.attname::text FROM pg_attribute a \
                     WHERE a.attrelid = c.oid AND a.attnum = 1) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn assert_denied(result: Result<u64, postgres::Error>, what: &str) {
    match result {
        Ok(_) => panic!("{what} was allowed"),
        Err(e) => assert_eq!(
            e.code().map(|c| c.code()),
            Some("42501"),
            "{what}: expected permission denied, got {e}"
        ),
    }
}

#[test]
fn the_master_role_cannot_change_any_table() {
    let db = TestDb::with_initdb();
    let tables = tables(&db);
    assert_eq!(tables.len(), 15, "{tables:?}");
    let mut user = db.user();
    for (table, column) in &tables {
        // Reading is allowed everywhere.
        user.query(&format!("SELECT * FROM {table} LIMIT 1"), &[])
            .unwrap_or_else(|e| panic!("SELECT on {table}: {e}"));
        assert_denied(
            user.execute(&format!("INSERT INTO {table} DEFAULT VALUES"), &[]),
            &format!("INSERT INTO {table}"),
        );
        assert_denied(
            user.execute(&format!("UPDATE {table} SET {column} = {column}"), &[]),
            &format!("UPDATE {table}"),
        );
        assert_denied(
            user.execute(&format!("DELETE FROM {table}"), &[]),
            &format!("DELETE FROM {table}"),
        );
        assert_denied(
            user.execute(&format!("TRUNCATE {table}"), &[]),
            &format!("TRUNCATE {table}"),
        );
    }
    user.query("SELECT * FROM builds_pending", &[]).unwrap();
    assert_denied(
        user.execute("CREATE TABLE sneaky (a int)", &[]),
        "CREATE TABLE in public",
    );
}

/// Every function piwheels 0.23's schema has.
const EXPECTED_FUNCTIONS: [&str; 35] = [
    "add_new_package",
    "add_new_package_version",
    "add_package_name",
    "delete_build",
    "delete_package",
    "delete_version",
    "get_build_queue",
    "get_builds_last_hour",
    "get_initial_statistics",
    "get_package_aliases",
    "get_package_files",
    "get_project_data",
    "get_pypi_serial",
    "get_search_index",
    "get_statistics",
    "get_version_files",
    "get_versions_deleted",
    "load_rewrites_pending",
    "log_build_failure",
    "log_build_success",
    "log_download",
    "log_json",
    "log_page",
    "log_project",
    "log_search",
    "package_marked_deleted",
    "save_rewrites_pending",
    "set_package_description",
    "set_pypi_serial",
    "skip_package",
    "skip_package_version",
    "test_package",
    "test_package_version",
    "unyank_version",
    "yank_version",
];

#[test]
fn the_master_role_can_run_every_function() {
    let db = TestDb::with_initdb();
    let mut admin = db.admin();
    let rows = admin
        .query(
            "SELECT p.proname::text, \
                    has_function_privilege($1, p.oid, 'EXECUTE'), \
                    p.prosecdef, \
                    p.proconfig::text \
             FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace",
            &[&db.username()],
        )
        .unwrap();
    let mut names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    names.sort();
    assert_eq!(names, EXPECTED_FUNCTIONS, "the functions of piwheels 0.23");
    for r in rows {
        let name: String = r.get(0);
        assert!(r.get::<_, bool>(1), "{name}: EXECUTE");
        assert!(r.get::<_, bool>(2), "{name}: SECURITY DEFINER");
        assert_eq!(
            r.get::<_, Option<String>>(3).as_deref(),
            Some("{\"search_path=public, pg_temp\"}"),
            "{name}: pinned search_path"
        );
    }
}

#[test]
fn public_gets_nothing() {
    let db = TestDb::with_initdb();
    let mut admin = db.admin();
    let public_grants: i64 = admin
        .query_one(
            "SELECT \
               (SELECT COUNT(*) FROM pg_proc p, aclexplode(p.proacl) a \
                WHERE p.pronamespace = 'public'::regnamespace AND a.grantee = 0) + \
               (SELECT COUNT(*) FROM pg_proc p \
                WHERE p.pronamespace = 'public'::regnamespace AND p.proacl IS NULL) + \
               (SELECT COUNT(*) FROM pg_namespace n, aclexplode(n.nspacl) a \
                WHERE n.nspname = 'public' AND a.grantee = 0) + \
               (SELECT COUNT(*) FROM pg_database d, aclexplode(d.datacl) a \
                WHERE d.datname = current_database() AND a.grantee = 0) + \
               (SELECT COUNT(*) FROM pg_class c, aclexplode(c.relacl) a \
                WHERE c.relnamespace = 'public'::regnamespace AND a.grantee = 0)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(public_grants, 0);

    // Another role cannot even connect.
    let stranger = format!("{}_x", db.username());
    admin
        .batch_execute(&format!("CREATE ROLE \"{stranger}\" LOGIN"))
        .unwrap();
    let dsn = db.user_dsn().replace(db.username(), &stranger);
    let result = postgres::Client::connect(&dsn, NoTls);
    admin
        .batch_execute(&format!("DROP ROLE \"{stranger}\""))
        .unwrap();
    match result {
        Ok(_) => panic!("a role without CONNECT got in"),
        Err(e) => assert_eq!(e.code().map(|c| c.code()), Some("42501"), "{e}"),
    }
}

#[test]
fn the_data_layer_refuses_a_superuser() {
    let db = TestDb::new();
    match Database::connect(db.admin_dsn()) {
        Err(DbError::Superuser(_)) => {}
        Err(other) => panic!("unexpected {other}"),
        Ok(_) => panic!("connected as a superuser"),
    }
}
