//! Benchmarks of the whole master (not part of the test command):
//! `cargo bench --bench master`. Prints one table.
//!
//! So far: start-up time to READY=1 and idle RSS (target: under 8 MiB on
//! x86-64), each the median of several runs.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::MasterProcess;

/// A value from /proc/<pid>/status, in KiB.
fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let runs = std::env::var("PIW_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut startup = Vec::new();
    let mut rss = Vec::new();
    let mut hwm = Vec::new();
    let mut threads = 0;
    for _ in 0..runs {
        let t0 = Instant::now();
        let mut master = MasterProcess::spawn(&["-q"]);
        master
            .wait_notify("READY=1", Duration::from_secs(30))
            .expect("master did not start");
        startup.push(t0.elapsed().as_secs_f64() * 1000.0);
        // Let it settle into its idle poll.
        std::thread::sleep(Duration::from_secs(2));
        let pid = master.child.id();
        rss.push(proc_status_kib(pid, "VmRSS").unwrap() as f64 / 1024.0);
        hwm.push(proc_status_kib(pid, "VmHWM").unwrap() as f64 / 1024.0);
        threads = proc_status_kib(pid, "Threads").unwrap_or(0);
        master.signal(libc::SIGTERM);
        master.wait_exit(Duration::from_secs(10));
    }
    println!("| figure | median of {runs} | target |");
    println!("|---|---|---|");
    println!(
        "| start-up to READY=1 | {:.1} ms | (piwheels 0.23: 1.4 s) |",
        median(startup)
    );
    println!("| idle RSS | {:.2} MiB | < 8 MiB |", median(rss));
    println!("| idle peak RSS (VmHWM) | {:.2} MiB | |", median(hwm));
    println!("| threads (1 loop + libzmq I/O and reaper) | {threads} | (piwheels 0.23: 16) |");
}
