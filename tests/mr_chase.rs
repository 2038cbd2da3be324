//! mr_chase without sockets: every request of the import queue with 0.23's
//! replies and error codes, on a real database and real files.

mod common;
mod rel_support;

use std::time::{Duration, Instant};

use chrono::Utc;
use common::TempDir;
use piwheels::db::Database;
use piwheels::master::file_juggler::FileJuggler;
use piwheels::master::mr_chase::{Env, MrChase, Reply};
use piwheels::master::policy::BuildPolicy;
use piwheels::master::tasks::{Skip, Stat, WebRequest};
use piwheels::protocol::file::MasterFrame;
use piwheels::protocol::import::{AddPackage, AddVersion, RemovePackage, RemoveVersion};
use piwheels::protocol::{
    BuildState, FileState, ImportReply, ImportRequest, RebuildPart, TimeDelta, WireMessage,
};
use piwheels::testing::TestDb;
use rel_support::wheel;

struct Rig {
    chase: MrChase,
    db: Database,
    tdb: TestDb,
    files: FileJuggler,
    out: TempDir,
    web: Vec<WebRequest>,
    skips: Vec<Skip>,
    stats: Vec<Stat>,
    policy: BuildPolicy,
    now: Instant,
}

impl Rig {
    fn new() -> Rig {
        let tdb = TestDb::new();
        tdb.admin()
            .batch_execute("INSERT INTO build_abis (abi_tag) VALUES ('cp311')")
            .unwrap();
        let mut db = tdb.database();
        db.add_new_package("foo-bar", "", "Foo").unwrap();
        db.add_new_package_version("foo-bar", "1.0", None, "")
            .unwrap();
        db.add_new_package_version("foo-bar", "2.0", None, "")
            .unwrap();
        let out = TempDir::new("chase");
        let files = FileJuggler::new(out.path()).unwrap();
        Rig {
            chase: MrChase::new(),
            db,
            tdb,
            files,
            out,
            web: vec![],
            skips: vec![],
            stats: vec![],
            policy: BuildPolicy::all(),
            now: Instant::now(),
        }
    }

    fn send(&mut self, client: &[u8], req: &ImportRequest) -> Vec<Reply> {
        let mut env = Env {
            db: &mut self.db,
            files: &mut self.files,
            web: &mut self.web,
            skip: &mut self.skips,
            stats: &mut self.stats,
            policy: &self.policy,
            now: self.now,
            utc: Utc::now(),
        };
        let replies = self.chase.handle(client, &req.encode(), &mut env);
        for (_, r) in &replies {
            assert_eq!(&ImportReply::decode(&r.encode()).unwrap(), r);
        }
        replies
    }

    /// One request, one reply to the same client.
    fn ask(&mut self, client: &[u8], req: &ImportRequest) -> ImportReply {
        let mut replies = self.send(client, req);
        assert_eq!(replies.len(), 1, "{replies:?}");
        let (to, reply) = replies.pop().unwrap();
        assert_eq!(to, client);
        reply
    }

    fn transfer(&mut self, content: &[u8], corrupt: bool) {
        let mut queue = self
            .files
            .on_frames(b"import-dealer", &[b"HELLO".to_vec(), b"0".to_vec()]);
        while let Some(frame) = queue.pop() {
            match frame {
                MasterFrame::Fetch { offset, length } => {
                    let mut data = content[offset as usize..(offset + length) as usize].to_vec();
                    if corrupt {
                        data[0] ^= 1;
                    }
                    queue.extend(self.files.on_frames(
                        b"import-dealer",
                        &[b"CHUNK".to_vec(), offset.to_string().into_bytes(), data],
                    ));
                }
                MasterFrame::Done => return,
            }
        }
        panic!("no DONE");
    }

    fn count(&self, sql: &str) -> i64 {
        self.tdb.admin().query_one(sql, &[]).unwrap().get(0)
    }
}

fn import(package: &str, version: &str, files: Vec<FileState>) -> ImportRequest {
    ImportRequest::Import(BuildState {
        slave_id: 0,
        package: package.into(),
        version: version.into(),
        abi_tag: "cp311".into(),
        status: true,
        duration: TimeDelta::ZERO,
        output: "Imported manually via piw-import".into(),
        files,
    })
}

fn done(s: &str) -> ImportReply {
    ImportReply::Done(s.into())
}

fn err(s: &str) -> ImportReply {
    ImportReply::Error(s.into())
}

#[test]
fn an_import_lands_and_is_recorded_only_when_complete() {
    let mut r = Rig::new();
    let content = vec![5u8; 100_000];
    let w = wheel("foo_bar-1.0-cp311-cp311-linux_armv7l.whl", &content);
    // The package name is canonicalised, as 0.23 does.
    let reply = r.ask(b"c1", &import("Foo_Bar", "1.0", vec![w.clone()]));
    assert_eq!(reply, ImportReply::Send(w.filename.clone()));
    assert_eq!(
        r.count("SELECT count(*) FROM builds"),
        0,
        "nothing recorded yet"
    );
    r.transfer(&content, false);
    assert_eq!(r.ask(b"c1", &ImportRequest::Sent), done("IMPORT"));
    let dir = r.out.path().join("simple/foo-bar");
    assert_eq!(std::fs::read(dir.join(&w.filename)).unwrap(), content);
    assert!(
        dir.join("foo_bar-1.0-cp311-cp311-linux_armv6l.whl")
            .exists()
    );
    assert_eq!(r.count("SELECT count(*) FROM builds WHERE built_by = 0"), 1);
    assert_eq!(r.count("SELECT count(*) FROM files"), 2);
    assert!(r.web.contains(&WebRequest::Both("foo-bar".into())));
    assert!(!r.chase.importing());
}

#[test]
fn import_refusals_use_0_23_texts() {
    let mut r = Rig::new();
    let w = wheel("foo_bar-1.0-py3-none-any.whl", b"x");
    let mut failed = import("foo-bar", "1.0", vec![w.clone()]);
    if let ImportRequest::Import(s) = &mut failed {
        s.status = false;
    }
    assert_eq!(
        r.ask(b"c", &failed),
        err("importing a failed build is not supported")
    );
    assert_eq!(
        r.ask(b"c", &import("foo-bar", "1.0", vec![])),
        err("no files listed for import")
    );
    let mut bad_abi = import("foo-bar", "1.0", vec![w.clone()]);
    if let ImportRequest::Import(s) = &mut bad_abi {
        s.abi_tag = "cp27mu".into();
    }
    assert_eq!(r.ask(b"c", &bad_abi), err("invalid ABI: cp27mu"));
    assert_eq!(
        r.ask(b"c", &import("foo-bar", "9.9", vec![w.clone()])),
        err("unknown package version foo-bar 9.9")
    );
    let mut hostile = w;
    hostile.filename = "../../x-1.0-py3-none-any.whl".into();
    assert!(matches!(
        r.ask(b"c", &import("foo-bar", "1.0", vec![hostile])),
        ImportReply::Error(e) if e.contains("invalid file name")
    ));
    assert_eq!(r.ask(b"c", &ImportRequest::Sent), err("protocol violation"));
    assert_eq!(r.count("SELECT count(*) FROM builds"), 0);
}

#[test]
fn a_failed_verification_is_expected_again_then_refused() {
    let mut r = Rig::new();
    let content = vec![1u8; 1000];
    let w = wheel("foo_bar-1.0-py3-none-any.whl", &content);
    let send = ImportReply::Send(w.filename.clone());
    assert_eq!(r.ask(b"c", &import("foo-bar", "1.0", vec![w])), send);
    r.transfer(&content, true);
    // Re-expected: the importer can send again (0.23 would hang here).
    assert_eq!(r.ask(b"c", &ImportRequest::Sent), send);
    r.transfer(&content, true);
    assert_eq!(r.ask(b"c", &ImportRequest::Sent), send);
    r.transfer(&content, true);
    assert!(matches!(
        r.ask(b"c", &ImportRequest::Sent),
        ImportReply::Error(e) if e.contains("failed verification")
    ));
    assert_eq!(r.count("SELECT count(*) FROM builds"), 0);
    assert!(!r.out.path().join("simple/foo-bar").exists());
    assert_eq!(r.files.transfers(), 0);
}

#[test]
fn concurrent_imports_take_turns() {
    let mut r = Rig::new();
    let (a, b) = (vec![1u8; 5000], vec![2u8; 7000]);
    let wa = wheel("foo_bar-1.0-py3-none-any.whl", &a);
    let wb = wheel("foo_bar-2.0-py3-none-any.whl", &b);
    assert_eq!(
        r.send(b"A", &import("foo-bar", "1.0", vec![wa.clone()])),
        vec![(b"A".to_vec(), ImportReply::Send(wa.filename.clone()))]
    );
    // B's IMPORT waits: no reply yet.
    assert!(
        r.send(b"B", &import("foo-bar", "2.0", vec![wb.clone()]))
            .is_empty()
    );
    r.transfer(&a, false);
    // A finishes, and B's turn starts in the same breath.
    assert_eq!(
        r.send(b"A", &ImportRequest::Sent),
        vec![
            (b"A".to_vec(), done("IMPORT")),
            (b"B".to_vec(), ImportReply::Send(wb.filename.clone()))
        ]
    );
    r.transfer(&b, false);
    assert_eq!(r.ask(b"B", &ImportRequest::Sent), done("IMPORT"));
    assert_eq!(r.count("SELECT count(*) FROM builds"), 2);
}

#[test]
fn a_quiet_importer_is_dropped_and_the_next_one_served() {
    let mut r = Rig::new();
    let w = wheel("foo_bar-1.0-py3-none-any.whl", &[1; 10]);
    r.send(b"A", &import("foo-bar", "1.0", vec![w.clone()]));
    assert!(
        r.send(b"B", &import("foo-bar", "1.0", vec![w.clone()]))
            .is_empty()
    );
    r.now += Duration::from_secs(301);
    let mut env = Env {
        db: &mut r.db,
        files: &mut r.files,
        web: &mut r.web,
        skip: &mut r.skips,
        stats: &mut r.stats,
        policy: &r.policy,
        now: r.now,
        utc: Utc::now(),
    };
    assert_eq!(
        r.chase.expire(&mut env),
        vec![(b"B".to_vec(), ImportReply::Send(w.filename.clone()))]
    );
    let temps = std::fs::read_dir(r.out.path().join("simple"))
        .unwrap()
        .count();
    assert_eq!(temps, 1, "only B's transfer waits");
}

fn add_pkg(name: &str, skip: &str, unskip: bool, aliases: &[&str]) -> ImportRequest {
    ImportRequest::AddPkg(AddPackage {
        package: name.into(),
        description: "A package".into(),
        skip: skip.into(),
        unskip,
        aliases: aliases.iter().map(|s| s.to_string()).collect(),
    })
}

fn add_ver(name: &str, ver: &str, skip: &str, yank: bool, unyank: bool) -> ImportRequest {
    ImportRequest::AddVer(AddVersion {
        package: name.into(),
        version: ver.into(),
        skip: skip.into(),
        unskip: false,
        released: Utc::now(),
        yank,
        unyank,
        aliases: vec![],
    })
}

#[test]
fn add_package_and_version_replies() {
    let mut r = Rig::new();
    assert_eq!(
        r.ask(b"c", &add_pkg("New.Pkg", "", false, &["new_pkg"])),
        done("NEWPKG")
    );
    // The given name is the display name; aliases are recorded.
    let names = r.db.get_package_aliases("new-pkg").unwrap();
    assert!(names.contains(&"New.Pkg".to_string()), "{names:?}");
    assert!(names.contains(&"new_pkg".to_string()), "{names:?}");
    assert_eq!(
        r.ask(b"c", &add_pkg("new-pkg", "", true, &[])),
        done("UPDPKG")
    );
    assert_eq!(
        r.ask(b"c", &add_pkg("new-pkg", "broken", false, &[])),
        err("SKIPPKG")
    );
    assert_eq!(
        r.ask(b"c", &add_ver("nope", "1", "", false, false)),
        err("NOPKG")
    );
    assert_eq!(
        r.ask(b"c", &add_ver("new-pkg", "1.0", "", true, false)),
        done("NEWVER")
    );
    assert_eq!(r.count("SELECT count(*) FROM versions WHERE yanked"), 1);
    assert_eq!(
        r.ask(b"c", &add_ver("new-pkg", "1.0", "", false, true)),
        done("UPDVER")
    );
    assert_eq!(r.count("SELECT count(*) FROM versions WHERE yanked"), 0);
    assert_eq!(
        r.ask(b"c", &add_ver("new-pkg", "1.0", "x", false, false)),
        err("SKIPVER")
    );
    assert_eq!(
        r.ask(b"c", &add_ver("new-pkg", "1.0", "", true, false)),
        err("YANKVER")
    );
}

/// Puts a build with a wheel on disk for foo-bar `version`.
fn built(r: &mut Rig, version: &str) -> std::path::PathBuf {
    let content = version.as_bytes().repeat(100);
    let w = wheel(&format!("foo_bar-{version}-py3-none-any.whl"), &content);
    r.ask(b"seed", &import("foo-bar", version, vec![w.clone()]));
    r.transfer(&content, false);
    assert_eq!(r.ask(b"seed", &ImportRequest::Sent), done("IMPORT"));
    r.web.clear();
    r.out.path().join("simple/foo-bar").join(&w.filename)
}

#[test]
fn remove_package_replies_and_ordering() {
    let mut r = Rig::new();
    built(&mut r, "1.0");
    let rem = |builds: bool, skip: &str| {
        ImportRequest::RemPkg(RemovePackage {
            package: "Foo.Bar".into(),
            builds,
            skip: skip.into(),
        })
    };
    assert_eq!(
        r.ask(
            b"c",
            &ImportRequest::RemPkg(RemovePackage {
                package: "nope".into(),
                builds: false,
                skip: String::new()
            })
        ),
        err("NOPKG")
    );
    // Skip only: skipped, builds cancelled, nothing deleted.
    assert_eq!(r.ask(b"c", &rem(false, "licence")), done("SKIPPKG"));
    assert_eq!(r.skips, vec![Skip::Package("foo-bar".into())]);
    assert_eq!(r.count("SELECT count(*) FROM builds"), 1);
    assert!(
        !r.web
            .iter()
            .any(|w| matches!(w, WebRequest::DelPkg(_) | WebRequest::DelVer(..)))
    );
    // Builds: each version's wheels go (while the rows name them), then the rows.
    r.web.clear();
    assert_eq!(r.ask(b"c", &rem(true, "")), done("DELPKGBLD"));
    assert_eq!(r.count("SELECT count(*) FROM builds"), 0);
    assert!(
        r.web
            .contains(&WebRequest::DelVer("foo-bar".into(), "1.0".into()))
    );
    assert_eq!(r.web.last(), Some(&WebRequest::Both("foo-bar".into())));
    // Neither: the whole package, web first.
    r.web.clear();
    assert_eq!(r.ask(b"c", &rem(false, "")), done("DELPKG"));
    assert_eq!(r.web, vec![WebRequest::DelPkg("foo-bar".into())]);
    assert_eq!(r.count("SELECT count(*) FROM packages"), 0);
}

#[test]
fn remove_version_replies() {
    let mut r = Rig::new();
    built(&mut r, "1.0");
    let rem = |ver: &str, builds: bool, skip: &str, yank: bool| {
        ImportRequest::RemVer(RemoveVersion {
            package: "foo-bar".into(),
            version: ver.into(),
            builds,
            skip: skip.into(),
            yank,
        })
    };
    assert_eq!(r.ask(b"c", &rem("9.9", false, "", false)), err("NOVER"));
    assert_eq!(
        r.ask(b"c", &rem("1.0", false, "bad", false)),
        done("SKIPVER")
    );
    assert_eq!(r.ask(b"c", &rem("1.0", false, "", true)), done("YANKVER"));
    // Several actions: the last of skip, yank, builds decides the reply.
    assert_eq!(
        r.ask(b"c", &rem("1.0", true, "again", true)),
        done("DELVERBLD")
    );
    assert_eq!(r.count("SELECT count(*) FROM builds"), 0);
    assert_eq!(r.ask(b"c", &rem("2.0", false, "", false)), done("DELVER"));
    assert_eq!(r.count("SELECT count(*) FROM versions"), 1);
    assert!(
        r.web
            .contains(&WebRequest::DelVer("foo-bar".into(), "2.0".into()))
    );
    assert!(
        r.skips
            .contains(&Skip::Version("foo-bar".into(), "2.0".into()))
    );
}

#[test]
fn rebuild_requests() {
    let mut r = Rig::new();
    let rebuild = |p: RebuildPart| ImportRequest::Rebuild(p);
    assert_eq!(r.ask(b"c", &rebuild(RebuildPart::Home)), done("REBUILD"));
    assert_eq!(r.ask(b"c", &rebuild(RebuildPart::Search)), done("REBUILD"));
    assert_eq!(r.stats, vec![Stat::ForceHome, Stat::ForceHome]);
    assert_eq!(
        r.ask(b"c", &rebuild(RebuildPart::Project(Some("Foo_Bar".into())))),
        done("REBUILD")
    );
    assert_eq!(r.web, vec![WebRequest::Project("foo-bar".into())]);
    assert_eq!(
        r.ask(b"c", &rebuild(RebuildPart::Both(Some("nope".into())))),
        err("unknown package nope")
    );
    r.db.add_new_package("other", "", "").unwrap();
    r.web.clear();
    assert_eq!(
        r.ask(b"c", &rebuild(RebuildPart::Both(None))),
        done("REBUILD")
    );
    assert_eq!(r.web.len(), 2);
}

#[test]
fn garbage_gets_no_reply() {
    let mut r = Rig::new();
    let mut env = Env {
        db: &mut r.db,
        files: &mut r.files,
        web: &mut r.web,
        skip: &mut r.skips,
        stats: &mut r.stats,
        policy: &r.policy,
        now: r.now,
        utc: Utc::now(),
    };
    for junk in [&b""[..], b"\xff", b"\x82\x66IMPORT\x80", b"\x63BYE"] {
        assert!(r.chase.handle(b"c", junk, &mut env).is_empty());
    }
}
