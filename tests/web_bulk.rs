//! The full rewrite reads whole chunks of the site with one statement and
//! assembles the documents itself (`Database::for_each_project_after`); the
//! incremental path asks `get_project_data` per package. Both must give the
//! same documents, aliases and order, whatever the data: this seeds a
//! database with every case the function distinguishes (ABI pairing scores
//! and their ties, retired ABIs, failures, wheels tagged none/abi3/another
//! ABI, builds without wheels, skips, yanks, preinstalled apt packages,
//! names that sort differently under different collations, a padded hash)
//! and compares the two reads package by package, as the unprivileged role.

use std::collections::BTreeMap;

use piwheels::db::ProjectRow;
use piwheels::testing::TestDb;

const SEED: &str = "
INSERT INTO build_abis (abi_tag, skip) VALUES
    ('cp34m', 'retired'), ('cp35m', ''), ('cp37m', ''), ('cp311', '');
INSERT INTO packages (package, skip, description)
    SELECT 'pkg-' || i,
           CASE WHEN i % 17 = 0 THEN 'binary only' ELSE '' END,
           'Package <' || i || '> & \"friends\"'
    FROM generate_series(0, 299) AS i;
INSERT INTO packages (package) VALUES
    ('a.b'), ('a-b'), ('a_b'), ('ab'), ('a0'), ('zz'), ('Z'), ('_x'), ('é');
INSERT INTO versions (package, version) VALUES ('a-b', '1.0'), ('é', '0.1');
INSERT INTO preinstalled_apt_packages (abi_tag, apt_package) VALUES
    ('cp37m', 'libc6'), ('cp35m', 'libfoo0'), ('cp311', 'libbar1');
INSERT INTO package_names (package, name, seen)
    SELECT 'pkg-' || i, 'Pkg_' || i, '2020-01-01'::timestamp + i * interval '1 minute'
    FROM generate_series(0, 299) AS i WHERE i % 3 <> 0;
INSERT INTO package_names (package, name, seen)
    SELECT 'pkg-' || i, 'PKG.' || i, '2020-01-02'::timestamp + i * interval '1 minute'
    FROM generate_series(0, 299) AS i WHERE i % 5 = 0;
INSERT INTO package_names (package, name, seen)
    SELECT 'pkg-' || i, 'pkg-' || i, '2019-01-01'
    FROM generate_series(0, 299) AS i WHERE i % 7 = 0;
-- Between zero and four versions a package; some pre-releases, skips, yanks.
INSERT INTO versions (package, version, released, skip, yanked)
    SELECT 'pkg-' || i, v || '.0' || CASE WHEN v = 3 THEN 'rc1' ELSE '' END,
           '2021-01-01 00:00:00.123456'::timestamp + (i * 10 + v) * interval '1 hour 1.5 second',
           CASE WHEN (i + v) % 11 = 0 THEN 'broken' ELSE '' END,
           (i + v) % 9 = 0
    FROM generate_series(0, 299) AS i, generate_series(0, 3) AS v
    WHERE v < i % 5;
-- Up to three builds a version on any ABI (retired ones too), some failed.
INSERT INTO builds (package, version, built_by, built_at, duration, status, abi_tag)
    SELECT v.package, v.version, 1 + k, '2022-01-01'::timestamp + k * interval '1 hour',
           '1 minute', abs(hashtext(v.package || v.version || k)) % 3 <> 0,
           (ARRAY['cp34m', 'cp35m', 'cp37m', 'cp311'])[1 + abs(hashtext(k || v.package || v.version)) % 4]
    FROM versions AS v, generate_series(0, 2) AS k
    WHERE abs(hashtext(v.package || v.version || 'b' || k)) % 3 <> 0;
-- Wheels: the builder's ABI, none, abi3 or another ABI; a few failed builds
-- have one anyway; some builds have an armv6l twin.
INSERT INTO files (filename, build_id, filesize, filehash, package_tag,
                   package_version_tag, py_version_tag, abi_tag, platform_tag,
                   requires_python, location)
    SELECT replace(b.package, '-', '_') || '-' || b.version || '-' || b.build_id
               || '-cp3-' || t.tag || '-' || p.platform || '.whl',
           b.build_id, 1000 + b.build_id,
           CASE WHEN b.build_id % 13 = 0 THEN 'short' ELSE md5(b.package) || md5(b.version) END,
           replace(b.package, '-', '_'), b.version, 'cp3', t.tag, p.platform,
           CASE WHEN b.build_id % 4 = 0 THEN NULL ELSE '>=3.' || (b.build_id % 10) END,
           CASE WHEN b.build_id % 8 = 0 THEN '/elsewhere' ELSE '/simple' END
    FROM builds AS b
    CROSS JOIN LATERAL (
        SELECT (ARRAY[b.abi_tag, 'none', 'abi3', 'cp35m', b.abi_tag])[1 + b.build_id % 5] AS tag
    ) AS t
    CROSS JOIN LATERAL (
        SELECT 'linux_armv7l' AS platform
        UNION ALL SELECT 'linux_armv6l' WHERE b.build_id % 6 = 0
    ) AS p
    WHERE (b.status AND b.build_id % 7 <> 0) OR b.build_id % 10 = 0;
INSERT INTO dependencies (filename, tool, dependency)
    SELECT filename, 'apt', 'libc6' FROM files WHERE build_id % 2 = 0
    UNION ALL SELECT filename, 'apt', 'libfoo0' FROM files WHERE build_id % 3 = 0
    UNION ALL SELECT filename, 'apt', 'libbar' || (build_id % 3) FROM files
    UNION ALL SELECT filename, 'pip', 'numpy' FROM files WHERE build_id % 5 = 0
    UNION ALL SELECT filename, 'pip', 'libc6' FROM files WHERE build_id % 4 = 1
    UNION ALL SELECT filename, '', 'whatever' FROM files WHERE build_id % 9 = 0;
ANALYZE;
";

fn by_chunks(db: &mut piwheels::db::Database, limit: i64) -> Vec<ProjectRow> {
    let mut rows = Vec::new();
    let mut after = String::new();
    loop {
        let before = rows.len();
        let n = db
            .for_each_project_after(&after, limit, |r| rows.push(r))
            .expect("bulk read");
        assert_eq!(n, rows.len() - before, "the count is of packages, not rows");
        if n < limit as usize {
            return rows;
        }
        after = rows.last().unwrap().package.clone();
    }
}

#[test]
fn bulk_documents_equal_get_project_data() {
    let tdb = TestDb::new();
    tdb.admin().batch_execute(SEED).expect("seed");
    let mut admin = tdb.admin();
    let names: Vec<String> = admin
        .query("SELECT package FROM packages ORDER BY package", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // The seed reaches the cases it is meant to.
    let cases = admin
        .query_one(
            "SELECT (SELECT count(*) FROM builds WHERE NOT status),
                    (SELECT count(*) FROM files WHERE abi_tag IN ('none', 'abi3')),
                    (SELECT count(*) FROM files f JOIN builds b USING (build_id)
                     WHERE f.abi_tag NOT IN ('none', 'abi3', b.abi_tag)),
                    (SELECT count(*) FROM builds b WHERE b.status
                     AND NOT EXISTS (SELECT 1 FROM files f WHERE f.build_id = b.build_id)),
                    (SELECT count(*) FROM dependencies d JOIN files f USING (filename)
                     JOIN preinstalled_apt_packages i
                       ON i.abi_tag = f.abi_tag AND i.apt_package = d.dependency
                     WHERE d.tool = 'apt')",
            &[],
        )
        .unwrap();
    for i in 0..5 {
        assert!(cases.get::<_, i64>(i) > 0, "seed case {i} is empty");
    }

    let mut db = tdb.database();
    let mut reference = BTreeMap::new();
    let mut order = Vec::new();
    db.for_each_project_of(&names, |r| {
        order.push(r.package.clone());
        reference.insert(r.package.clone(), r);
    })
    .expect("get_project_data for every package");
    assert_eq!(order, names);

    // Chunks of 7 cross package boundaries many times; one big chunk too.
    for limit in [7, 1000] {
        let bulk = by_chunks(&mut db, limit);
        let got: Vec<&str> = bulk.iter().map(|r| r.package.as_str()).collect();
        assert_eq!(got, names, "every package once, in the database's order");
        let (mut files, mut abis) = (0, 0);
        for row in &bulk {
            let want = &reference[&row.package];
            assert!(row.exists);
            let data = row.data.as_ref().expect("bulk document");
            let want_data = want.data.as_ref().expect("function document");
            assert_eq!(data, want_data, "document of {}", row.package);
            assert_eq!(row.aliases, want.aliases, "aliases of {}", row.package);
            for r in data.releases.values() {
                files += r.files.len();
                abis += r.abis.len();
            }
        }
        // The seed is rich enough to mean something.
        assert!(
            files > 200 && abis > 500,
            "{files} files, {abis} ABI statuses"
        );
    }
}

#[test]
fn bulk_read_of_an_empty_or_finished_site() {
    let tdb = TestDb::new();
    let mut db = tdb.database();
    assert!(by_chunks(&mut db, 10).is_empty());
    tdb.admin()
        .batch_execute("INSERT INTO packages (package) VALUES ('only')")
        .unwrap();
    let rows = by_chunks(&mut db, 10);
    assert_eq!(rows.len(), 1);
    let data = rows[0].data.as_ref().unwrap();
    assert!(data.releases.is_empty() && data.name.is_none());
    assert_eq!(data.description.as_deref(), Some(""));
    assert_eq!(
        db.for_each_project_after("only", 10, |_| panic!("nothing after the last"))
            .unwrap(),
        0
    );
}
