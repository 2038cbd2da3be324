//! PostgreSQL restarted and stopped under load. The shared test cluster is
//! left alone: the test starts a private server (initdb and pg_ctl as the
//! postgres OS user, a temp data directory, its socket in that directory,
//! a free port) and runs a master on it with slaves finishing builds and a
//! logger sending hits, while the server restarts (`-m fast`) and then is
//! stopped for a few seconds. The master must keep answering slaves, and
//! every build and hit must be in the database exactly once at the end.

mod common;
mod rel_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{MasterProcess, SimSlave, TempDir};
use piwheels::protocol::{LogMessage, PageHit, SlaveReply, SlaveRequest, WireMessage};
use piwheels::testing::TestDb;
use rel_support::{built, count, hello, seed, stats, wait_for, wheel};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A private PostgreSQL server, stopped (immediately) on drop.
struct Cluster {
    data: PathBuf,
    sock: PathBuf,
    port: u16,
}

fn as_postgres(args: &[&str]) -> Result<(), String> {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .args(args)
        .output()
        .map_err(|e| format!("runuser: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl Cluster {
    fn start(dir: &Path) -> Result<Cluster, String> {
        if !Path::new(PG_BIN).join("initdb").exists() {
            return Err(format!("no {PG_BIN}/initdb"));
        }
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir)
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("cannot chown the temp dir to postgres".into());
        }
        let data = dir.join("data");
        let initdb = format!("{PG_BIN}/initdb");
        as_postgres(&[
            &initdb,
            "-D",
            data.to_str().unwrap(),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ])?;
        let cluster = Cluster {
            data,
            sock: dir.to_path_buf(),
            port: common::free_port(),
        };
        cluster.pg_ctl(&["start"])?;
        Ok(cluster)
    }

    fn pg_ctl(&self, what: &[&str]) -> Result<(), String> {
        let pg_ctl = format!("{PG_BIN}/pg_ctl");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.sock.display()
        );
        let log = self.sock.join("server.log");
        let mut args = vec![
            pg_ctl.as_str(),
            "-D",
            self.data.to_str().unwrap(),
            "-o",
            &opts,
            "-l",
            log.to_str().unwrap(),
            "-w",
            "-t",
            "30",
        ];
        args.extend_from_slice(what);
        as_postgres(&args)
    }

    fn admin_dsn(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.sock.display(),
            self.port
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["stop", "-m", "immediate"]);
    }
}

fn page_hit(i: usize) -> Vec<u8> {
    LogMessage::Page(PageHit {
        name: "home".into(),
        host: format!("192.0.2.{}", i % 250),
        timestamp: Utc::now(),
        user_agent: format!("test/{i}"),
    })
    .encode()
}

/// One slave does one whole build of `package` 1.0 (whichever job it is
/// given) and returns the package it built.
fn one_build(slave: &SimSlave, slave_id: u64) -> String {
    let SlaveReply::Build { package, version } =
        slave.idle_until_work(&stats(), Duration::from_secs(30))
    else {
        panic!("no build")
    };
    let content = format!("wheel of {package}").into_bytes();
    let w = wheel(&format!("{package}-{version}-py3-none-any.whl"), &content);
    assert_eq!(
        slave.request(&SlaveRequest::Busy(stats())),
        SlaveReply::Cont
    );
    assert!(matches!(
        slave.request(&built(vec![w])),
        SlaveReply::Send { .. }
    ));
    slave.send_file(slave_id, &content, |_, _| {});
    assert_eq!(slave.request(&SlaveRequest::Sent), SlaveReply::Done);
    package
}

#[test]
fn postgres_restarted_and_stopped_under_load_loses_and_doubles_nothing() {
    let dir = TempDir::new("pg");
    let cluster = match Cluster::start(dir.path()) {
        Ok(c) => c,
        Err(why) => {
            eprintln!("SKIPPED: cannot start a private PostgreSQL server: {why}");
            return;
        }
    };
    let tdb = TestDb::on_cluster(&cluster.admin_dsn());
    let jobs: Vec<String> = (0..12).map(|i| format!("pkg{i:02}")).collect();
    let pairs: Vec<(&str, &str)> = jobs.iter().map(|p| (p.as_str(), "1.0")).collect();
    seed(&tdb, &pairs);
    let master = MasterProcess::start_on(tdb, &[]);

    let logger = {
        let ctx = zmq::Context::new();
        let s = ctx.socket(zmq::PUSH).unwrap();
        s.set_linger(5000).unwrap();
        s.connect(&master.ipc("logger")).unwrap();
        (ctx, s)
    };
    let mut hits = 0;
    let mut send_hits = |n: usize| {
        for _ in 0..n {
            logger.1.send(page_hit(hits), 0).unwrap();
            hits += 1;
        }
    };
    let slave = SimSlave::connect(&master);
    let SlaveReply::Ack { slave_id, .. } = slave.request(&hello(300, 10_800, "sim")) else {
        panic!("no ACK")
    };
    let mut done = Vec::new();

    // Normal load.
    send_hits(500);
    for _ in 0..3 {
        done.push(one_build(&slave, slave_id));
    }
    // A fast restart in the middle of it.
    send_hits(500);
    cluster.pg_ctl(&["restart", "-m", "fast"]).unwrap();
    for _ in 0..3 {
        done.push(one_build(&slave, slave_id));
    }
    send_hits(500);
    // The server away for a while: builds and hits must wait, not vanish,
    // and the master must keep answering.
    cluster.pg_ctl(&["stop", "-m", "fast"]).unwrap();
    let t = Instant::now();
    for _ in 0..3 {
        done.push(one_build(&slave, slave_id));
    }
    send_hits(500);
    // The next job is taken and never finished (not counted): BUSY for
    // the rest of the outage, timing each reply.
    let mut worst = Duration::ZERO;
    let mut request = SlaveRequest::Idle(stats());
    while t.elapsed() < Duration::from_secs(5) {
        let t = Instant::now();
        let reply = slave.request(&request);
        worst = worst.max(t.elapsed());
        match reply {
            SlaveReply::Build { .. } | SlaveReply::Cont => request = SlaveRequest::Busy(stats()),
            SlaveReply::Sleep { .. } => {}
            other => panic!("{other:?} while the database is down"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(matches!(request, SlaveRequest::Busy(_)));
    cluster.pg_ctl(&["start"]).unwrap();
    send_hits(500);
    // The rest of the builds once it is back (one may still be excluded:
    // it was handed out above and never finished).
    let slave2 = SimSlave::connect(&master);
    let SlaveReply::Ack { slave_id: id2, .. } = slave2.request(&hello(300, 10_800, "sim2")) else {
        panic!("no ACK")
    };
    for _ in 0..2 {
        done.push(one_build(&slave2, id2));
    }
    eprintln!("slowest IDLE reply while the database was down: {worst:?}");
    assert!(worst < Duration::from_secs(2), "{worst:?}");

    let n = done.len() as i64;
    wait_for(
        Duration::from_secs(40),
        || count(&master.db, "builds") >= n && count(&master.db, "web_page_hits") >= hits as i64,
        || {
            format!(
                "builds {}/{n}, hits {}/{hits}; stderr:\n{}",
                count(&master.db, "builds"),
                count(&master.db, "web_page_hits"),
                master.stderr()
            )
        },
    );
    let log = master.stderr();
    assert!(
        log.contains("cannot record the build of"),
        "no build waited for the database:\n{}",
        log.lines()
            .filter(|l| !l.contains("hello") && !l.contains("sleeping") && !l.contains("receiving"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Exactly once: nothing doubled by a retry.
    assert_eq!(count(&master.db, "builds"), n);
    assert_eq!(count(&master.db, "files"), n);
    assert_eq!(count(&master.db, "web_page_hits"), hits as i64);
    let mut built: Vec<String> = master
        .db
        .admin()
        .query("SELECT package FROM builds ORDER BY package", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    built.dedup();
    done.sort();
    assert_eq!(built, done);
    drop(master);
    drop(cluster);
}
