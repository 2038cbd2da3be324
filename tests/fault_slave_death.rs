//! A slave that dies (stops talking) mid-build, mid-transfer, or after its
//! transfer but before SENT: the real master expires it after its busy
//! timeout, removes the transfer's temp file, records no half build, and
//! hands the job to another slave once the exclusion window (the dead
//! slave's build timeout) has passed.

mod common;
mod rel_support;

use std::time::Duration;

use common::{MasterProcess, SimSlave};
use piwheels::protocol::{SlaveReply, SlaveRequest};
use rel_support::{built, count, hello, seeded_db, stats, wait_for, wheel};

const LONG: Duration = Duration::from_secs(40);

#[derive(Clone, Copy, Debug)]
enum DiesAt {
    MidBuild,
    MidTransfer,
    BetweenTransferAndSent,
}

fn slave_dies(at: DiesAt) {
    // --dev-mode: an idle slave refreshes the build queue after 10 s, not 5 min.
    let master = MasterProcess::start_on(seeded_db(&[("foo", "1.0")]), &["--dev-mode"]);
    let simple = master.dir.path().join("www/simple");
    let temps = || common::transfer_temps(&simple);
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let w = wheel("foo-1.0-py3-none-any.whl", &content);

    // Busy timeout 1 s (expired at the next 10 s sweep); build timeout 2 s
    // (the job is excluded that long).
    let doomed = SimSlave::connect(&master);
    let SlaveReply::Ack { slave_id, .. } = doomed.request(&hello(1, 2, "doomed")) else {
        panic!("no ACK")
    };
    assert!(matches!(
        doomed.idle_until_work(&stats(), LONG),
        SlaveReply::Build { .. }
    ));
    match at {
        DiesAt::MidBuild => {
            assert_eq!(
                doomed.request(&SlaveRequest::Busy(stats())),
                SlaveReply::Cont
            );
        }
        DiesAt::MidTransfer => {
            assert!(matches!(
                doomed.request(&built(vec![w.clone()])),
                SlaveReply::Send { .. }
            ));
            let dealer = doomed.open_transfer(slave_id);
            let fetch = dealer.recv_multipart(0).unwrap();
            assert_eq!(fetch[0], b"FETCH");
            dealer
                .send_multipart([&b"CHUNK"[..], &b"0"[..], &content[..1000]], 0)
                .unwrap();
            assert_eq!(temps(), 1, "the transfer's temp file exists");
        }
        DiesAt::BetweenTransferAndSent => {
            assert!(matches!(
                doomed.request(&built(vec![w.clone()])),
                SlaveReply::Send { .. }
            ));
            doomed.send_file(slave_id, &content, |_, _| {});
            assert_eq!(temps(), 1, "the whole file waits for SENT");
        }
    }
    drop(doomed);

    wait_for(
        Duration::from_secs(25),
        || master.stderr().contains("timed out while building foo 1.0") && temps() == 0,
        || {
            format!(
                "{at:?}: not expired and cleaned up; stderr:\n{}",
                master.stderr()
            )
        },
    );
    assert_eq!(
        count(&master.db, "builds"),
        0,
        "{at:?}: a half build was logged"
    );
    assert_eq!(count(&master.db, "files"), 0);
    assert!(!simple.join("foo").join(&w.filename).exists());

    // Another slave gets the job after the exclusion window and finishes it.
    let rescuer = SimSlave::connect(&master);
    let SlaveReply::Ack { slave_id, .. } = rescuer.request(&hello(300, 10_800, "rescuer")) else {
        panic!("no ACK")
    };
    assert_eq!(
        rescuer.idle_until_work(&stats(), LONG),
        SlaveReply::Build {
            package: "foo".into(),
            version: "1.0".into()
        },
        "{at:?}: the job was not handed out again"
    );
    assert!(matches!(
        rescuer.request(&built(vec![w.clone()])),
        SlaveReply::Send { .. }
    ));
    rescuer.send_file(slave_id, &content, |_, _| {});
    assert_eq!(rescuer.request(&SlaveRequest::Sent), SlaveReply::Done);
    assert_eq!(count(&master.db, "builds"), 1);
    assert_eq!(count(&master.db, "files"), 1);
    assert_eq!(
        std::fs::read(simple.join("foo").join(&w.filename)).unwrap(),
        content
    );
    assert_eq!(temps(), 0);
}

#[test]
fn a_slave_killed_mid_build_is_expired_and_its_job_rebuilt() {
    slave_dies(DiesAt::MidBuild);
}

#[test]
fn a_slave_killed_mid_transfer_leaves_no_temp_file_and_no_build() {
    slave_dies(DiesAt::MidTransfer);
}

#[test]
fn a_slave_killed_between_transfer_and_sent_leaves_no_half_build() {
    slave_dies(DiesAt::BetweenTransferAndSent);
}
