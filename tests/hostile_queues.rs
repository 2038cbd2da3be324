//! Floods and oversized or malformed messages on the real master's slave,
//! file and import queues: the master stays up, keeps answering a
//! well-behaved slave quickly, and its memory stays bounded. Measured
//! numbers are printed (run with --nocapture to see them).

mod common;
mod rel_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{MasterProcess, SimSlave};
use piwheels::protocol::import::AddPackage;
use piwheels::protocol::{ImportReply, ImportRequest, SlaveReply, SlaveRequest, WireMessage};
use rel_support::{hello, seeded_db, stats, vm_rss_kib};

/// An honest slave's IDLE round trips during `for_`: (median, max).
fn idle_latency(slave: &SimSlave, for_: Duration) -> (Duration, Duration) {
    let mut samples = Vec::new();
    let end = Instant::now() + for_;
    while Instant::now() < end {
        let t = Instant::now();
        let reply = slave.request(&SlaveRequest::Idle(stats()));
        samples.push(t.elapsed());
        assert!(matches!(reply, SlaveReply::Sleep { .. }), "{reply:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    samples.sort();
    (samples[samples.len() / 2], *samples.last().unwrap())
}

#[test]
fn ten_thousand_hellos_a_second_leave_an_honest_slave_served() {
    let mut master = MasterProcess::start_on(seeded_db(&[]), &[]);
    let honest = SimSlave::connect(&master);
    assert!(matches!(
        honest.request(&hello(300, 10_800, "honest")),
        SlaveReply::Ack { .. }
    ));
    let (calm_median, calm_max) = idle_latency(&honest, Duration::from_secs(1));
    let rss_before = vm_rss_kib(master.child.id());

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let port = master.slave_port;
    let flood = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            let ctx = zmq::Context::new();
            let socks: Vec<zmq::Socket> = (0..10)
                .map(|_| {
                    let s = ctx.socket(zmq::DEALER).unwrap();
                    s.set_linger(0).unwrap();
                    s.set_sndhwm(100_000).unwrap();
                    s.connect(&format!("tcp://127.0.0.1:{port}")).unwrap();
                    s
                })
                .collect();
            let msg = hello(300, 10_800, "flood").encode();
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                // 10,000 a second, in 10 ms slices.
                let due = (start.elapsed().as_millis() as u64) * 10;
                while sent.load(Ordering::Relaxed) < due {
                    let s = &socks[(sent.load(Ordering::Relaxed) % 10) as usize];
                    if s.send_multipart([&b""[..], &msg[..]], zmq::DONTWAIT)
                        .is_ok()
                    {
                        sent.fetch_add(1, Ordering::Relaxed);
                    } else {
                        break;
                    }
                }
                for s in &socks {
                    while s.recv_multipart(zmq::DONTWAIT).is_ok() {}
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let (median, max) = idle_latency(&honest, Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    let rss_after = vm_rss_kib(master.child.id());
    let n = sent.load(Ordering::Relaxed);
    eprintln!(
        "HELLO flood: {n} HELLOs in 5 s; honest IDLE round trip calm median {calm_median:?} \
         max {calm_max:?}, flooded median {median:?} max {max:?}; master VmRSS {rss_before} \
         -> {rss_after} KiB"
    );
    assert!(n >= 40_000, "the flood sent only {n}");
    assert!(median < Duration::from_millis(500), "median {median:?}");
    assert!(max < Duration::from_secs(5), "max {max:?}");
    assert!(
        rss_after < rss_before + 100 * 1024,
        "{rss_before} -> {rss_after} KiB"
    );
    assert!(
        master.child.try_wait().unwrap().is_none(),
        "the master died"
    );
    assert!(matches!(
        honest.request(&SlaveRequest::Idle(stats())),
        SlaveReply::Sleep { .. }
    ));
}

#[test]
fn oversized_frames_are_refused_without_growing_the_master() {
    let master = MasterProcess::start_on(seeded_db(&[]), &[]);
    let rss_before = vm_rss_kib(master.child.id());
    let ctx = zmq::Context::new();
    let raw = |endpoint: String| {
        let s = ctx.socket(zmq::DEALER).unwrap();
        s.set_linger(0).unwrap();
        s.connect(&endpoint).unwrap();
        s
    };
    // Each just over its queue's cap (sockets.rs): 64 MiB slave and
    // import, 1 MiB file.
    let big = vec![0x82u8; (64 << 20) + 1];
    let slave_sock = raw(format!("tcp://127.0.0.1:{}", master.slave_port));
    slave_sock.send_multipart([&b""[..], &big[..]], 0).unwrap();
    let file_sock = raw(format!("tcp://127.0.0.1:{}", master.file_port));
    file_sock
        .send_multipart([&b"CHUNK"[..], &b"0"[..], &big[..(1 << 20) + 1]], 0)
        .unwrap();
    let import_sock = raw(master.ipc("import"));
    import_sock.send_multipart([&b""[..], &big[..]], 0).unwrap();
    drop(big);

    // The master still serves a slave and an importer.
    let honest = SimSlave::connect(&master);
    assert!(matches!(
        honest.request(&hello(300, 10_800, "honest")),
        SlaveReply::Ack { .. }
    ));
    assert_eq!(
        add_newpkg(&ctx, &master),
        ImportReply::Done("NEWPKG".into())
    );
    let rss_after = vm_rss_kib(master.child.id());
    eprintln!("oversized frames: master VmRSS {rss_before} -> {rss_after} KiB");
    assert!(
        rss_after < rss_before + 32 * 1024,
        "{rss_before} -> {rss_after} KiB"
    );
}

#[test]
fn garbage_on_the_import_queue_is_logged_and_importers_still_served() {
    let mut master = MasterProcess::start_on(seeded_db(&[]), &[]);
    let ctx = zmq::Context::new();
    let raw = ctx.socket(zmq::DEALER).unwrap();
    raw.set_linger(0).unwrap();
    raw.connect(&master.ipc("import")).unwrap();
    raw.send(&b"no delimiter"[..], 0).unwrap();
    raw.send_multipart([&b""[..], &b"not cbor at all"[..]], 0)
        .unwrap();
    raw.send_multipart([&b""[..], &b""[..], &b"three frames"[..]], 0)
        .unwrap();
    raw.send_multipart([&b""[..], &b"\x82\x66IMPORT\x80"[..]], 0)
        .unwrap();
    raw.send_multipart([&b""[..], &b"\x63BYE"[..]], 0).unwrap();
    raw.send_multipart([&b""[..], &vec![0x9f; 100_000][..]], 0)
        .unwrap();
    for _ in 0..1000 {
        raw.send_multipart([&b""[..], &b"\xff"[..]], 0).unwrap();
    }
    assert_eq!(
        add_newpkg(&ctx, &master),
        ImportReply::Done("NEWPKG".into())
    );
    // Garbage gets no reply at all.
    let mut items = [raw.as_poll_item(zmq::POLLIN)];
    zmq::poll(&mut items, 500).unwrap();
    assert!(!items[0].is_readable(), "garbage was answered");
    let log = master.stderr();
    assert!(log.contains("invalid"), "{log}");
    assert!(
        master.child.try_wait().unwrap().is_none(),
        "the master died"
    );
}

/// An honest importer's ADDPKG of `newpkg`, on a socket of its own, and
/// the master's reply.
fn add_newpkg(ctx: &zmq::Context, master: &MasterProcess) -> ImportReply {
    let importer = ctx.socket(zmq::REQ).unwrap();
    importer.set_linger(0).unwrap();
    importer.set_rcvtimeo(20_000).unwrap();
    importer.connect(&master.ipc("import")).unwrap();
    let add = ImportRequest::AddPkg(AddPackage {
        package: "newpkg".into(),
        description: "new".into(),
        skip: "".into(),
        unskip: false,
        aliases: vec![],
    });
    importer.send(add.encode(), 0).unwrap();
    ImportReply::decode(&importer.recv_bytes(0).unwrap()).unwrap()
}
