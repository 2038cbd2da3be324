//! The real master binary with simulated slaves speaking piwheels' wire
//! protocol byte for byte over real sockets, on a real database: a build
//! goes through HELLO, IDLE, BUSY, BUILT, the file transfer and SENT; a
//! lying slave, a hostile one and a vanishing one get what they deserve;
//! garbage never stops the master.

mod common;
mod rel_support;

use std::time::{Duration, Instant};

use common::{MasterProcess, Monitor, SimSlave, unhex};
use piwheels::protocol::{ControlMessage, SlaveReply, SlaveRequest, StatusMessage, WireMessage};
use rel_support::{built, seeded_db, stats, wheel};

const LONG: Duration = Duration::from_secs(30);

fn hello(busy_secs: i64) -> SlaveRequest {
    rel_support::hello(busy_secs, 10_800, "sim-slave")
}

#[test]
fn a_build_goes_from_hello_to_a_wheel_on_disk() {
    let master = MasterProcess::start_on(seeded_db(&[("foo", "1.0")]), &[]);
    let monitor = Monitor::connect(&master);
    let slave = SimSlave::connect(&master);
    let SlaveReply::Ack { slave_id, pypi_url } = slave.request(&hello(300)) else {
        panic!("no ACK");
    };
    assert_eq!(
        (slave_id, pypi_url.as_str()),
        (1, "https://pypi.org/simple")
    );
    assert_eq!(
        slave.idle_until_work(&stats(), LONG),
        SlaveReply::Build {
            package: "foo".into(),
            version: "1.0".into()
        }
    );
    assert_eq!(
        slave.request(&SlaveRequest::Busy(stats())),
        SlaveReply::Cont
    );
    // A wheel of several chunks and a ragged tail.
    let content: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    let w = wheel("foo-1.0-cp311-cp311-linux_armv7l.whl", &content);
    assert_eq!(
        slave.request(&built(vec![w.clone()])),
        SlaveReply::Send {
            filename: w.filename.clone()
        }
    );
    slave.send_file(slave_id, &content, |_, _| {});
    assert_eq!(slave.request(&SlaveRequest::Sent), SlaveReply::Done);

    let dir = master.dir.path().join("www/simple/foo");
    assert_eq!(std::fs::read(dir.join(&w.filename)).unwrap(), content);
    assert!(dir.join("foo-1.0-cp311-cp311-linux_armv6l.whl").exists());
    let rows = master
        .db
        .admin()
        .query("SELECT package, version, status FROM builds", &[])
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].get::<_, bool>(2));

    // A monitor that says HELLO gets the master's HELLO and then the
    // slave's story: HELLO, its stats, its last reply. (Live messages may
    // arrive first, and an early HELLO may be lost before the subscription
    // is in place, so collect from a master HELLO on.)
    let hello = ControlMessage::Hello.encode();
    let mut seen: Option<Vec<String>> = None;
    monitor.request_until(&hello, LONG, |f| match StatusMessage::decode(f) {
        Ok(StatusMessage::Hello(_)) => {
            seen = Some(Vec::new());
            false
        }
        Ok(StatusMessage::Slave(s)) => match seen.as_mut() {
            Some(seen) => {
                seen.push(s.msg.clone());
                s.msg == "DONE"
            }
            None => false,
        },
        _ => false,
    });
    let seen = seen.expect("no replay after a master HELLO");
    assert_eq!(seen.first().map(String::as_str), Some("HELLO"), "{seen:?}");
    assert!(seen.contains(&"STATS".to_string()), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("DONE"));
    // BYE gets no reply, and monitors see the slave leave as DIE.
    slave.req.send(SlaveRequest::Bye.encode(), 0).unwrap();
    let mut left = false;
    let deadline = Instant::now() + LONG;
    while !left && Instant::now() < deadline {
        if let Some(f) = monitor.recv(Duration::from_millis(500)) {
            left =
                matches!(StatusMessage::decode(&f), Ok(StatusMessage::Slave(s)) if s.msg == "DIE");
        }
    }
    assert!(left, "no DIE on the status feed after BYE");
}

#[test]
fn a_slave_that_sends_the_wrong_bytes_gets_die_and_nothing_lands() {
    let master = MasterProcess::start_on(seeded_db(&[("foo", "1.0")]), &[]);
    let slave = SimSlave::connect(&master);
    let SlaveReply::Ack { slave_id, .. } = slave.request(&hello(300)) else {
        panic!()
    };
    slave.idle_until_work(&stats(), LONG);
    let content = vec![9u8; 150_000];
    let w = wheel("foo-1.0-py3-none-any.whl", &content);
    let send = SlaveReply::Send {
        filename: w.filename.clone(),
    };
    assert_eq!(slave.request(&built(vec![w])), send);
    let mut replies = Vec::new();
    for _ in 0..3 {
        slave.send_file(slave_id, &content, |offset, data| {
            if offset == 0 {
                data[0] ^= 0xff;
            }
        });
        replies.push(slave.request(&SlaveRequest::Sent));
    }
    assert_eq!(replies, vec![send.clone(), send, SlaveReply::Die]);
    let simple = master.dir.path().join("www/simple");
    assert!(!simple.join("foo").exists());
    assert_eq!(common::transfer_temps(&simple), 0, "no temp files");
}

#[test]
fn garbage_on_the_slave_queue_never_stops_the_master() {
    let master = MasterProcess::start_on(seeded_db(&[("foo", "1.0")]), &[]);
    let vectors: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/wire-vectors.json"
        ))
        .unwrap(),
    )
    .unwrap();
    // A DEALER can send any frames (a REQ would insist on its envelope):
    // every rejected slave_driver vector, then wrong frame counts.
    let ctx = zmq::Context::new();
    let raw = ctx.socket(zmq::DEALER).unwrap();
    raw.set_linger(0).unwrap();
    raw.connect(&format!("tcp://127.0.0.1:{}", master.slave_port))
        .unwrap();
    let mut sent = 0;
    for v in vectors["negative"].as_array().unwrap() {
        if v["protocol"] == "slave_driver" {
            raw.send_multipart([&b""[..], &unhex(v["hex"].as_str().unwrap())], 0)
                .unwrap();
            sent += 1;
        }
    }
    assert!(sent > 30);
    raw.send(&b"no delimiter"[..], 0).unwrap();
    raw.send_multipart([&b""[..], &b""[..], &hello(300).encode()], 0)
        .unwrap();
    raw.send_multipart([&b""[..], &vec![0x82u8; 2 << 20]], 0)
        .unwrap();
    // An honest slave is still served.
    let slave = SimSlave::connect(&master);
    assert!(matches!(slave.request(&hello(300)), SlaveReply::Ack { .. }));
    assert!(matches!(
        slave.idle_until_work(&stats(), LONG),
        SlaveReply::Build { .. }
    ));
    let log = master.stderr();
    assert!(log.contains("invalid message structure"), "{log}");
}

#[test]
fn a_slave_that_vanishes_mid_transfer_is_expired_and_cleaned_up() {
    let master = MasterProcess::start_on(seeded_db(&[("foo", "1.0")]), &[]);
    let slave = SimSlave::connect(&master);
    // A 1 s busy timeout: expired at the next 10 s sweep.
    let SlaveReply::Ack { slave_id, .. } = slave.request(&hello(1)) else {
        panic!()
    };
    slave.idle_until_work(&stats(), LONG);
    let content = vec![3u8; 5_000_000];
    let w = wheel("foo-1.0-py3-none-any.whl", &content);
    slave.request(&built(vec![w]));
    // Start the transfer, take one FETCH, then vanish.
    let dealer = slave.ctx.socket(zmq::DEALER).unwrap();
    dealer.set_linger(0).unwrap();
    dealer
        .connect(&format!("tcp://127.0.0.1:{}", master.file_port))
        .unwrap();
    dealer
        .send_multipart([&b"HELLO"[..], slave_id.to_string().as_bytes()], 0)
        .unwrap();
    dealer.set_rcvtimeo(10_000).unwrap();
    let fetch = dealer.recv_multipart(0).unwrap();
    assert_eq!(fetch[0], b"FETCH");
    let simple = master.dir.path().join("www/simple");
    let temps = || common::transfer_temps(&simple);
    assert_eq!(temps(), 1, "the transfer's temp file exists");
    drop(dealer);
    let deadline = Instant::now() + Duration::from_secs(25);
    while temps() > 0 {
        assert!(
            Instant::now() < deadline,
            "temp file not removed; stderr:\n{}",
            master.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(master.stderr().contains("timed out while building foo 1.0"));
    // The slave is forgotten: its next request goes unanswered.
    slave.req.set_rcvtimeo(1000).unwrap();
    slave.req.send(SlaveRequest::Sent.encode(), 0).unwrap();
    assert!(slave.req.recv_bytes(0).is_err());
}
