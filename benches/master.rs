//! Benchmarks of the whole master (not part of the test command):
//! `cargo bench --bench master [-- --short]`. Prints one table.
//!
//! Each figure sits next to the physical limit measured in the same run
//! (a bare ZeroMQ echo, a raw loopback copy), and the ratio is the figure
//! that counts:
//! - start-up time to READY=1 and idle RSS (target: under 8 MiB);
//! - slave protocol: replies/s with 1, 10 and 100 simulated slaves in
//!   IDLE/SLEEP and BUSY/CONT loops, against a bare ROUTER/REQ echo with the
//!   same clients (target: at least 50%), and the master's RSS and CPU under
//!   that load (target: under 16 MiB);
//! - file transfer of a 50 MiB wheel through the master against a raw
//!   loopback TCP copy of the same bytes (target: at least 50%).

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{MasterProcess, SimSlave};
use piwheels::master::file_juggler::hex;
use piwheels::protocol::{
    BuildResult, FileState, SlaveHello, SlaveReply, SlaveRequest, SlaveStats, TimeDelta,
    WireMessage,
};
use piwheels::testing::TestDb;
use sha2::{Digest, Sha256};

/// A value from /proc/<pid>/status, in KiB.
fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// CPU seconds (user + system) a process has used.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0.0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn hello() -> Vec<u8> {
    SlaveRequest::Hello(SlaveHello {
        build_timeout: TimeDelta::from_secs(10_800).unwrap(),
        busy_timeout: TimeDelta::from_secs(300).unwrap(),
        py_version: "311".into(),
        native_abi: "cp311".into(),
        native_platform: "linux_armv7l".into(),
        label: "bench".into(),
        os_name: "Linux".into(),
        os_version: String::new(),
        board_revision: "unknown".into(),
        board_serial: "unknown".into(),
    })
    .encode()
}

fn stats() -> SlaveStats {
    SlaveStats {
        timestamp: Utc::now(),
        disk_size: 1 << 34,
        disk_free: 1 << 33,
        mem_size: 1 << 32,
        mem_free: 1 << 31,
        swap_size: 0,
        swap_free: 0,
        load_average: 0.5,
        cpu_temp: 45.0,
    }
}

/// Drives `n` REQ clients at `addr` for `duration`, each alternating IDLE
/// and BUSY after a HELLO; returns replies per second.
fn drive(addr: &str, n: usize, duration: Duration) -> f64 {
    let ctx = zmq::Context::new();
    let idle = SlaveRequest::Idle(stats()).encode();
    let busy = SlaveRequest::Busy(stats()).encode();
    let hello = hello();
    let clients: Vec<zmq::Socket> = (0..n)
        .map(|_| {
            let s = ctx.socket(zmq::REQ).unwrap();
            s.set_linger(0).unwrap();
            s.connect(addr).unwrap();
            s.send(&hello, 0).unwrap();
            s
        })
        .collect();
    let mut turn = vec![0usize; n];
    let mut replies = 0u64;
    let mut started: Option<Instant> = None;
    let bye = SlaveRequest::Bye.encode();
    // Every client has one request in flight; take its reply, then say BYE
    // as a slave leaving does, so the master forgets it (otherwise it
    // remembers it until its 5-minute busy timeout).
    let leave = |clients: &[zmq::Socket]| {
        for c in clients {
            let _ = c.recv_bytes(0);
            let _ = c.set_linger(1000);
            let _ = c.send(&bye, 0);
        }
    };
    loop {
        let mut items: Vec<zmq::PollItem> = clients
            .iter()
            .map(|s| s.as_poll_item(zmq::POLLIN))
            .collect();
        zmq::poll(&mut items, 1000).unwrap();
        let ready: Vec<usize> = (0..n).filter(|&i| items[i].is_readable()).collect();
        drop(items);
        for i in ready {
            let _ = clients[i].recv_bytes(0).unwrap();
            turn[i] += 1;
            if turn[i] > 1 {
                // The HELLO's ACK is not counted.
                replies += 1;
            }
            let start = *started.get_or_insert_with(Instant::now);
            if start.elapsed() >= duration {
                let rate = replies as f64 / start.elapsed().as_secs_f64();
                // This client has no request in flight: send it one, so
                // every client is in the same state for `leave`.
                clients[i].send(&idle, 0).unwrap();
                leave(&clients);
                return rate;
            }
            let msg = if turn[i] % 2 == 0 { &idle } else { &busy };
            clients[i].send(msg, 0).unwrap();
        }
    }
}

/// A bare ROUTER that echoes every request: the ceiling for `drive`.
fn echo_server() -> (String, std::thread::JoinHandle<()>, zmq::Context) {
    let ctx = zmq::Context::new();
    let router = ctx.socket(zmq::ROUTER).unwrap();
    router.bind("tcp://127.0.0.1:*").unwrap();
    let addr = router.get_last_endpoint().unwrap().unwrap();
    let stop = ctx.socket(zmq::PAIR).unwrap();
    stop.bind("inproc://echo-stop").unwrap();
    let handle = std::thread::spawn(move || {
        loop {
            let mut items = [
                router.as_poll_item(zmq::POLLIN),
                stop.as_poll_item(zmq::POLLIN),
            ];
            zmq::poll(&mut items, -1).unwrap();
            if items[1].is_readable() {
                return;
            }
            while let Ok(frames) = router.recv_multipart(zmq::DONTWAIT) {
                router.send_multipart(frames, 0).unwrap();
            }
        }
    });
    (addr, handle, ctx)
}

fn stop_echo(ctx: &zmq::Context, handle: std::thread::JoinHandle<()>) {
    let s = ctx.socket(zmq::PAIR).unwrap();
    s.connect("inproc://echo-stop").unwrap();
    s.send(&b"stop"[..], 0).unwrap();
    handle.join().unwrap();
}

/// Sends `bytes` over a loopback TCP connection; returns MB/s.
fn raw_copy(bytes: &[u8]) -> f64 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let len = bytes.len();
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0;
        let mut file = Vec::with_capacity(len);
        while got < len {
            let n = s.read(&mut buf).unwrap();
            file.extend_from_slice(&buf[..n]);
            got += n;
        }
        file.len()
    });
    let start = Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(bytes).unwrap();
    assert_eq!(reader.join().unwrap(), len);
    len as f64 / 1e6 / start.elapsed().as_secs_f64()
}

/// Runs one 50 MiB wheel through the master; returns MB/s of the transfer
/// alone and of the transfer plus verification (hash, fsync, rename).
fn master_transfer(bytes: &[u8]) -> (f64, f64) {
    let tdb = TestDb::new();
    tdb.admin()
        .batch_execute("INSERT INTO build_abis (abi_tag) VALUES ('cp311')")
        .unwrap();
    let mut db = tdb.database();
    db.add_new_package("big", "", "").unwrap();
    db.add_new_package_version("big", "1.0", None, "").unwrap();
    drop(db);
    let master = MasterProcess::start_on(tdb, &["-q"]);
    let slave = SimSlave::connect(&master);
    let SlaveReply::Ack { slave_id, .. } =
        SlaveReply::decode(&slave.request_bytes(&hello())).unwrap()
    else {
        panic!("no ACK")
    };
    slave.idle_until_work(&stats(), Duration::from_secs(30));
    let mut h = Sha256::new();
    h.update(bytes);
    let file = FileState {
        filename: "big-1.0-py3-none-any.whl".into(),
        filesize: bytes.len() as u64,
        filehash: hex(&h.finalize()),
        package_tag: "big".into(),
        package_version_tag: "1.0".into(),
        py_version_tag: "py3".into(),
        abi_tag: "none".into(),
        platform_tag: "any".into(),
        requires_python: None,
        dependencies: vec![],
        location: "/simple".into(),
    };
    slave.request(&SlaveRequest::Built(BuildResult {
        status: true,
        duration: TimeDelta::ZERO,
        output: String::new(),
        files: vec![file],
    }));
    let start = Instant::now();
    slave.send_file(slave_id, bytes, |_, _| {});
    let sent = start.elapsed();
    let done = slave.request(&SlaveRequest::Sent);
    let landed = start.elapsed();
    assert_eq!(done, SlaveReply::Done);
    let mb = bytes.len() as f64 / 1e6;
    (mb / sent.as_secs_f64(), mb / landed.as_secs_f64())
}

/// `--soak MINUTES`: mixed load for that long (100 slaves in IDLE/BUSY
/// loops, PyPI events, access-log hits, a monitor saying HELLO), sampling
/// the master's RSS every 10 s; prints the samples and the slope of a
/// least-squares line through those after the first two minutes.
fn soak(minutes: u64) {
    use piwheels::fake_pypi::FakePypi;
    use piwheels::protocol::{ClientInfo, ControlMessage, DownloadState, LogMessage};
    let fake = FakePypi::start();
    let tdb = TestDb::new();
    tdb.admin()
        .batch_execute("INSERT INTO build_abis (abi_tag) VALUES ('cp311')")
        .unwrap();
    let xmlrpc = fake.xmlrpc_url();
    let json = fake.json_url();
    let master =
        MasterProcess::start_on(tdb, &["-q", "--pypi-xmlrpc", &xmlrpc, "--pypi-json", &json]);
    let pid = master.child.id();
    let total = Duration::from_secs(minutes * 60);
    let addr = format!("tcp://127.0.0.1:{}", master.slave_port);
    let slaves = std::thread::spawn(move || drive(&addr, 100, total));
    let ctx = zmq::Context::new();
    let log = ctx.socket(zmq::PUSH).unwrap();
    log.set_sndhwm(1000).unwrap();
    log.connect(&master.ipc("logger")).unwrap();
    let control = ctx.socket(zmq::PUSH).unwrap();
    control.connect(&master.ipc("control")).unwrap();
    let start = Instant::now();
    let mut samples: Vec<(f64, f64)> = Vec::new();
    let mut next_sample = start;
    let mut n = 0u64;
    while start.elapsed() < total {
        // About 200 hits a second, a release every second, a monitor HELLO
        // every 10 s.
        for _ in 0..20 {
            let hit = LogMessage::Download(DownloadState {
                filename: format!("pkg_{}-1.0-py3-none-any.whl", n % 500),
                host: "192.0.2.1".into(),
                timestamp: Utc::now(),
                client: ClientInfo::default(),
            });
            let _ = log.send(hit.encode(), zmq::DONTWAIT);
            n += 1;
        }
        if n % 200 == 0 {
            fake.add_release(&format!("soak-{}", n % 5000), "1.0");
            fake.flush_window();
        }
        if Instant::now() >= next_sample {
            let rss = proc_status_kib(pid, "VmRSS").unwrap_or(0) as f64 / 1024.0;
            let t = start.elapsed().as_secs_f64() / 60.0;
            samples.push((t, rss));
            println!("soak: {t:5.1} min  RSS {rss:6.2} MiB");
            let _ = control.send(ControlMessage::Hello.encode(), zmq::DONTWAIT);
            next_sample += Duration::from_secs(10);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let rate = slaves.join().unwrap();
    let steady: Vec<(f64, f64)> = samples.iter().copied().filter(|(t, _)| *t >= 2.0).collect();
    let slope = if steady.len() >= 2 {
        let k = steady.len() as f64;
        let (sx, sy) = steady
            .iter()
            .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
        let (mx, my) = (sx / k, sy / k);
        let num: f64 = steady.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
        let den: f64 = steady.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
        if den > 0.0 { num / den } else { 0.0 }
    } else {
        0.0
    };
    let peak = proc_status_kib(pid, "VmHWM").unwrap_or(0) as f64 / 1024.0;
    println!("| figure | value | limit / target |");
    println!("|---|---|---|");
    println!("| {minutes}-minute soak: slave replies/s | {rate:.0} | |");
    println!("| soak: peak RSS | {peak:.2} MiB | target < 32 MiB under mixed load |");
    println!(
        "| soak: RSS slope after the first 2 minutes | {:+.3} MiB/min | ~0 (no growth) |",
        slope
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--soak") {
        let minutes = args.get(i + 1).and_then(|m| m.parse().ok()).unwrap_or(10);
        soak(minutes);
        return;
    }
    let short = std::env::args().any(|a| a == "--short");
    let runs = if short { 3 } else { 5 };
    let load_time = Duration::from_secs(if short { 2 } else { 5 });

    // Idle: start-up and memory.
    let mut startup = Vec::new();
    let mut rss = Vec::new();
    let mut anon = Vec::new();
    let mut threads = 0;
    for _ in 0..runs {
        let t0 = Instant::now();
        let mut master = MasterProcess::spawn(&["-q"]);
        master
            .wait_notify("READY=1", Duration::from_secs(30))
            .expect("master did not start");
        startup.push(t0.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_secs(1));
        let pid = master.child.id();
        rss.push(proc_status_kib(pid, "VmRSS").unwrap() as f64 / 1024.0);
        anon.push(proc_status_kib(pid, "RssAnon").unwrap_or(0) as f64 / 1024.0);
        threads = proc_status_kib(pid, "Threads").unwrap_or(0);
        master.signal(libc::SIGTERM);
        master.wait_exit(Duration::from_secs(10));
    }
    println!("| figure | value | limit / target |");
    println!("|---|---|---|");
    println!(
        "| start-up to READY=1 (median of {runs}) | {:.0} ms | piwheels 0.23: 1.4 s |",
        median(startup)
    );
    println!("| idle RSS | {:.2} MiB | target < 8 MiB |", median(rss));
    println!(
        "| idle RssAnon (private memory; the rest is code and shared libraries) | {:.2} MiB | |",
        median(anon)
    );
    println!("| threads | {threads} | piwheels 0.23: 16 |");

    // The slave protocol under load.
    let master = MasterProcess::start(&["-q"]);
    let pid = master.child.id();
    let master_addr = format!("tcp://127.0.0.1:{}", master.slave_port);
    for n in [1usize, 10, 100] {
        let (echo_addr, handle, ctx) = echo_server();
        let echo = median((0..runs).map(|_| drive(&echo_addr, n, load_time)).collect());
        stop_echo(&ctx, handle);
        let cpu0 = cpu_seconds(pid);
        let t0 = Instant::now();
        let ours = median(
            (0..runs)
                .map(|_| drive(&master_addr, n, load_time))
                .collect(),
        );
        let cpu = (cpu_seconds(pid) - cpu0) / t0.elapsed().as_secs_f64();
        let rss = proc_status_kib(pid, "VmRSS").unwrap_or(0) as f64 / 1024.0;
        let anon = proc_status_kib(pid, "RssAnon").unwrap_or(0) as f64 / 1024.0;
        println!(
            "| master RSS after the {n}-slave runs | {rss:.2} MiB ({anon:.2} MiB private) | |"
        );
        println!(
            "| slave replies/s, {n} slaves | {ours:.0} ({:.0}% of echo, master CPU {:.0}%) | bare echo {echo:.0}/s; target >= 50% |",
            100.0 * ours / echo,
            100.0 * cpu
        );
    }
    let hwm = proc_status_kib(pid, "VmHWM").unwrap() as f64 / 1024.0;
    println!("| master peak RSS after 100-slave load | {hwm:.2} MiB | target < 16 MiB |");
    drop(master);

    // File transfer.
    let bytes: Vec<u8> = (0..50u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let raw = median((0..runs).map(|_| raw_copy(&bytes)).collect());
    let results: Vec<(f64, f64)> = (0..runs.min(3)).map(|_| master_transfer(&bytes)).collect();
    let ours = median(results.iter().map(|r| r.0).collect());
    let landed = median(results.iter().map(|r| r.1).collect());
    println!(
        "| 50 MiB wheel transfer | {ours:.0} MB/s ({:.0}% of raw) | raw loopback copy {raw:.0} MB/s; target >= 50% |",
        100.0 * ours / raw
    );
    println!("| same, until verified and stored (SHA-256, fsync, rename) | {landed:.0} MB/s | |");
}
