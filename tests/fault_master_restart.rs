//! The master SIGKILLed mid-transfer and right after a build, and started
//! again on the same database and output path: slaves reconnect and finish,
//! the killed transfer leaves no temp file, the page rewrites buffered at
//! the kill are done after the restart, and the PyPI serial resumes where
//! it was, never moving backwards, with every event applied.

mod common;
mod rel_support;

use std::time::Duration;

use common::{MasterProcess, SimSlave};
use piwheels::fake_pypi::FakePypi;
use piwheels::protocol::{SlaveReply, SlaveRequest};
use rel_support::{
    built, count, hello, kill_and_restart, seeded_db, stats, stored_serial, wait_for, wheel,
};

const LONG: Duration = Duration::from_secs(30);

#[test]
fn a_master_killed_mid_transfer_and_after_a_build_loses_nothing() {
    let fake = FakePypi::start();
    for i in 0..20 {
        fake.add_release(&format!("early-{i:02}"), "1.0");
    }
    let h1 = fake.flush_window();
    let (xmlrpc, json) = (fake.xmlrpc_url(), fake.json_url());
    // --dev-mode: PyPI's packages are skipped (only foo is built) and the
    // page buffer waits 3 s, not 60.
    let extra = ["--dev-mode", "--pypi-xmlrpc", &xmlrpc, "--pypi-json", &json];
    let mut master = MasterProcess::start_on(seeded_db(&[("foo", "1.0")]), &extra);
    let www = master.dir.path().join("www");
    let simple = www.join("simple");
    wait_for(
        LONG,
        || stored_serial(&master.db) >= h1,
        || format!("serial never reached {h1}; stderr:\n{}", master.stderr()),
    );
    assert_eq!(stored_serial(&master.db), h1);

    let content: Vec<u8> = (0..400_000u32).map(|i| (i % 241) as u8).collect();
    let w = wheel("foo-1.0-py3-none-any.whl", &content);
    let slave = SimSlave::connect(&master);
    let SlaveReply::Ack { slave_id, .. } = slave.request(&hello(300, 10_800, "sim")) else {
        panic!("no ACK")
    };
    assert!(matches!(
        slave.idle_until_work(&stats(), LONG),
        SlaveReply::Build { .. }
    ));
    assert!(matches!(
        slave.request(&built(vec![w.clone()])),
        SlaveReply::Send { .. }
    ));
    let dealer = slave.open_transfer(slave_id);
    assert_eq!(dealer.recv_multipart(0).unwrap()[0], b"FETCH");
    dealer
        .send_multipart([&b"CHUNK"[..], &b"0"[..], &content[..65536]], 0)
        .unwrap();
    assert_eq!(common::transfer_temps(&simple), 1);

    // PyPI moves on while the master is down.
    for i in 0..20 {
        fake.add_release(&format!("late-{i:02}"), "1.0");
    }
    let h2 = fake.flush_window();
    kill_and_restart(&mut master, &extra);
    drop(dealer);
    assert_eq!(
        common::transfer_temps(&simple),
        0,
        "the killed transfer's temp file survived the restart"
    );

    // The slave starts over (as piw-slave does after the master's
    // silence): a fresh socket, HELLO, and the same build again.
    drop(slave);
    let slave = SimSlave::connect(&master);
    let SlaveReply::Ack { slave_id, .. } = slave.request(&hello(300, 10_800, "sim")) else {
        panic!("no ACK after the restart")
    };
    assert_eq!(
        slave.idle_until_work(&stats(), LONG),
        SlaveReply::Build {
            package: "foo".into(),
            version: "1.0".into()
        }
    );
    assert!(matches!(
        slave.request(&built(vec![w.clone()])),
        SlaveReply::Send { .. }
    ));
    slave.send_file(slave_id, &content, |_, _| {});
    assert_eq!(slave.request(&SlaveRequest::Sent), SlaveReply::Done);
    assert_eq!(count(&master.db, "builds"), 1);
    assert_eq!(count(&master.db, "files"), 1);

    // Killed again before the buffer's 3 s are up: the rewrite of foo's
    // pages must survive in rewrites_pending.
    let project = www.join("project/foo/index.html");
    let index = simple.join("foo/index.html");
    let pending: i64 = master
        .db
        .admin()
        .query_one(
            "SELECT count(*) FROM rewrites_pending WHERE package = 'foo'",
            &[],
        )
        .unwrap()
        .get(0);
    let written_before = project.exists();
    kill_and_restart(&mut master, &extra);
    assert!(
        !written_before,
        "the page was written before the kill: too slow to test"
    );
    assert_eq!(pending, 1, "foo's rewrite was not saved before DONE");
    wait_for(
        LONG,
        || {
            std::fs::read_to_string(&index).is_ok_and(|s| s.contains(&w.filename))
                && std::fs::read_to_string(&project).is_ok_and(|s| s.contains(&w.filename))
        },
        || {
            format!(
                "foo's pages were never written; stderr:\n{}",
                master.stderr()
            )
        },
    );

    // The serial resumed from h1 (never lower) and reached h2; every
    // package PyPI announced is there once.
    let mut last = stored_serial(&master.db);
    assert!(last >= h1);
    wait_for(
        LONG,
        || {
            let now = stored_serial(&master.db);
            assert!(now >= last, "the serial went back from {last} to {now}");
            last = now;
            now >= h2
        },
        || format!("serial never reached {h2}; stderr:\n{}", master.stderr()),
    );
    assert_eq!(stored_serial(&master.db), h2);
    assert!(fake.sinces().iter().all(|&s| s <= h2));
    assert_eq!(count(&master.db, "packages"), 41);
    assert_eq!(count(&master.db, "versions"), 41);
    assert_eq!(count(&master.db, "builds"), 1, "a build applied twice");
}
