//! Hostile build slaves against the real master over real sockets: file
//! names that try to leave the output path, chunks bigger than asked,
//! chunks and a HELLO for another slave's transfer. Nothing may land
//! outside `simple/<package>/`, nothing unverified may land at all, and an
//! honest slave is still served.

mod common;
mod rel_support;

use std::cell::Cell;
use std::path::Path;
use std::time::Duration;

use common::{MasterProcess, SimSlave};
use piwheels::protocol::{SlaveReply, SlaveRequest};
use rel_support::{built, count, hello, seeded_db, stats, wheel};

const LONG: Duration = Duration::from_secs(30);

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn path_traversal_file_names_get_die_and_write_nothing() {
    let names = [
        "../../evil-1.0-py3-none-any.whl",
        "../foo-1.0-py3-none-any.whl",
        "foo/../../../evil-1.0-py3-none-any.whl",
        "/tmp/evil-1.0-py3-none-any.whl",
        "..",
        ".piw-incoming-1-1-1",
        "foo-1.0-py3-none-any.whl\0.sh",
        "foo-1.0-py3-none-any.whl/",
        "",
    ];
    let jobs: Vec<(String, &str)> = (0..names.len()).map(|i| (format!("p{i}"), "1.0")).collect();
    let jobs: Vec<(&str, &str)> = jobs.iter().map(|(p, v)| (p.as_str(), *v)).collect();
    let master = MasterProcess::start_on(seeded_db(&jobs), &[]);
    let before = tree(master.dir.path());
    let good = wheel("foo-1.0-py3-none-any.whl", b"payload");
    for name in names {
        // Each attempt by a fresh slave, in the middle of a real build.
        let slave = building(&master, "evil");
        let mut w = good.clone();
        w.filename = name.into();
        assert_eq!(slave.request(&built(vec![w])), SlaveReply::Die, "{name:?}");
    }
    // big_brother writes the homepage and packages.json meanwhile.
    let after: Vec<String> = tree(master.dir.path())
        .into_iter()
        .filter(|f| f != "www/index.html" && f != "www/packages.json")
        .collect();
    assert_eq!(after, before, "files appeared");
    assert!(!Path::new("/tmp/evil-1.0-py3-none-any.whl").exists());
    assert!(!master.dir.path().join("evil-1.0-py3-none-any.whl").exists());
    assert_eq!(count(&master.db, "builds"), 0);
    let log = master.stderr();
    assert!(log.contains("../../evil-1.0-py3-none-any.whl"), "{log}");
}

#[test]
fn a_file_name_attack_mid_build_gets_die_before_any_temp_file() {
    let master = MasterProcess::start_on(seeded_db(&[("foo", "1.0")]), &[]);
    let simple = master.dir.path().join("www/simple");
    let slave = building(&master, "evil");
    let mut w = wheel("foo-1.0-py3-none-any.whl", b"payload");
    w.filename = "../../../../tmp/evil-1.0-py3-none-any.whl".into();
    assert_eq!(slave.request(&built(vec![w])), SlaveReply::Die);
    assert_eq!(common::transfer_temps(&simple), 0);
    assert!(!Path::new("/tmp/evil-1.0-py3-none-any.whl").exists());
    assert_eq!(count(&master.db, "builds"), 0);
    assert_eq!(count(&master.db, "files"), 0);
}

#[test]
fn chunks_bigger_than_asked_or_from_strangers_are_ignored_and_a_hijack_cannot_land() {
    let master = MasterProcess::start_on(seeded_db(&[("foo", "1.0")]), &[]);
    let simple = master.dir.path().join("www/simple");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 239) as u8).collect();
    let w = wheel("foo-1.0-py3-none-any.whl", &content);
    let victim = SimSlave::connect(&master);
    let SlaveReply::Ack { slave_id, .. } = victim.request(&hello(300, 10_800, "victim")) else {
        panic!("no ACK")
    };
    assert!(matches!(
        victim.idle_until_work(&stats(), LONG),
        SlaveReply::Build { .. }
    ));
    let send = SlaveReply::Send {
        filename: w.filename.clone(),
    };
    assert_eq!(victim.request(&built(vec![w.clone()])), send);

    // A stranger sends CHUNKs nobody asked for; a thief (a socket of its
    // own) says HELLO with the victim's id first and answers every FETCH
    // with its own bytes.
    let thief = victim.ctx.socket(zmq::DEALER).unwrap();
    thief.set_linger(0).unwrap();
    thief
        .connect(&format!("tcp://127.0.0.1:{}", master.file_port))
        .unwrap();
    thief
        .send_multipart([&b"CHUNK"[..], &b"0"[..], &b"junk"[..]], 0)
        .unwrap();
    victim.send_file(slave_id, &vec![0xEE; content.len()], |_, _| {});
    thief
        .send_multipart([&b"CHUNK"[..], &b"0"[..], &vec![0xEE; 65536][..]], 0)
        .unwrap();
    // SENT: the bytes fail verification, nothing lands, SEND again.
    assert_eq!(victim.request(&SlaveRequest::Sent), send);
    assert!(!simple.join("foo").join(&w.filename).exists());
    // Only the temp file of the transfer expected again.
    assert_eq!(common::transfer_temps(&simple), 1);

    // The victim's honest transfer, whose first answer is 10 bytes too
    // long (ignored; the master asks again after the 5 s nudge).
    let first = Cell::new(true);
    victim.send_file(slave_id, &content, |_, data| {
        if first.replace(false) {
            data.extend_from_slice(&[0xAA; 10]);
        }
    });
    assert_eq!(victim.request(&SlaveRequest::Sent), SlaveReply::Done);
    assert_eq!(
        std::fs::read(simple.join("foo").join(&w.filename)).unwrap(),
        content
    );
    assert_eq!(count(&master.db, "files"), 1);
    assert_eq!(common::transfer_temps(&simple), 0);
}

#[test]
fn an_absurd_announced_size_gets_die_and_no_temp_file() {
    let master = MasterProcess::start_on(seeded_db(&[("foo", "1.0")]), &[]);
    let simple = master.dir.path().join("www/simple");
    let slave = building(&master, "liar");
    // A terabyte "wheel": refused before any temp file is made.
    let mut w = wheel("foo-1.0-py3-none-any.whl", b"small");
    w.filesize = 1 << 40;
    assert_eq!(slave.request(&built(vec![w])), SlaveReply::Die);
    assert_eq!(common::transfer_temps(&simple), 0);
    assert_eq!(count(&master.db, "builds"), 0);
    assert!(
        master
            .stderr()
            .contains("refused file of 1099511627776 bytes")
    );
}

/// A new simulated slave that said HELLO as `label` and was given a build.
fn building(master: &MasterProcess, label: &str) -> SimSlave {
    let slave = SimSlave::connect(master);
    assert!(matches!(
        slave.request(&hello(300, 10_800, label)),
        SlaveReply::Ack { .. }
    ));
    assert!(matches!(
        slave.idle_until_work(&stats(), LONG),
        SlaveReply::Build { .. }
    ));
    slave
}
