//! The words both displays show: the master's summary lines, one row per
//! slave and the selected slave's details. Pure functions of the model and
//! the clock, shared by the terminal UI and `--once`.

use chrono::{DateTime, Utc};

use super::state::{Monitor, SlaveState, format_bytes, format_span};
use crate::protocol::{MasterStats, SlaveStats};

/// Column titles of the slave table.
pub const SLAVE_COLUMNS: [&str; 11] = [
    "S",
    "#",
    "Label",
    "ABI",
    "Up",
    "Task",
    "Seen",
    "Load",
    "Temp",
    "Disk free",
    "Status",
];

/// The master's summary, one entry per line.
pub fn master_lines(m: &Monitor, now: DateTime<Utc>) -> Vec<String> {
    let mut lines = Vec::new();
    let Some(hello) = &m.master.hello else {
        lines.push("Waiting for the master to answer...".into());
        return lines;
    };
    let mut first = format!(
        "Master {} ({} {}, board {}), up {}",
        hello.label,
        hello.os_name,
        hello.os_version,
        hello.board_revision,
        format_span(now - hello.timestamp)
    );
    if let Some(seen) = m.master.last_seen {
        first.push_str(&format!(", last heard {} ago", format_span(now - seen)));
    }
    if m.master.is_silent(now) {
        first.push_str(" (SILENT)");
    }
    if m.master_paused() {
        first.push_str(" [PAUSED]");
    }
    lines.push(first);
    match m.master.latest() {
        Some(s) => lines.extend(stats_lines(s)),
        None => lines.push("No statistics yet (the master sends them every 10 s)".into()),
    }
    lines
}

fn per_abi(counts: &[(String, u64)]) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(abi, n)| format!("{abi} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn stats_lines(s: &MasterStats) -> Vec<String> {
    let built: u64 = s.builds_last_hour.iter().map(|(_, n)| n).sum();
    vec![
        format!(
            "Built {} packages, {} in the last hour ({}); pending: {}; {} new in the last hour; {} files",
            s.packages_built,
            built,
            per_abi(&s.builds_last_hour),
            per_abi(&s.builds_pending),
            s.new_last_hour,
            s.files_count
        ),
        format!(
            "Downloads: {} in the last hour, {} in the last month, {} in all",
            s.downloads_last_hour, s.downloads_last_month, s.downloads_all
        ),
        host_line(
            s.disk_free,
            s.disk_size,
            s.mem_free,
            s.mem_size,
            s.swap_free,
            s.swap_size,
            s.load_average,
            s.cpu_temp,
        ),
    ]
}

#[allow(clippy::too_many_arguments)]
fn host_line(
    disk_free: u64,
    disk_size: u64,
    mem_free: u64,
    mem_size: u64,
    swap_free: u64,
    swap_size: u64,
    load: f64,
    temp: f64,
) -> String {
    format!(
        "Host: disk {} free of {}; memory {} free of {}; swap {} free of {}; load {:.2}; {:.1}°C",
        format_bytes(disk_free),
        format_bytes(disk_size),
        format_bytes(mem_free),
        format_bytes(mem_size),
        format_bytes(swap_free),
        format_bytes(swap_size),
        load,
        temp
    )
}

fn slave_host_line(s: &SlaveStats) -> String {
    host_line(
        s.disk_free,
        s.disk_size,
        s.mem_free,
        s.mem_size,
        s.swap_free,
        s.swap_size,
        s.load_average,
        s.cpu_temp,
    )
}

/// One row of the slave table (see [`SLAVE_COLUMNS`]).
pub fn slave_row(s: &SlaveState, now: DateTime<Utc>) -> [String; 11] {
    let stats = s.latest_stats();
    [
        s.activity(now).word().to_owned(),
        s.slave_id.to_string(),
        s.label().to_owned(),
        s.abi().to_owned(),
        s.first_seen.map_or("-".into(), |t| format_span(now - t)),
        format_span(now - s.build_start.unwrap_or(s.last_seen)),
        format_span(now - s.last_seen),
        stats.map_or("-".into(), |st| format!("{:.2}", st.load_average)),
        stats.map_or("-".into(), |st| format!("{:.1}°C", st.cpu_temp)),
        stats.map_or("-".into(), |st| format_bytes(st.disk_free)),
        s.status.clone(),
    ]
}

/// The details of one slave, one entry per line.
pub fn slave_details(s: &SlaveState, now: DateTime<Utc>) -> Vec<String> {
    let mut lines = Vec::new();
    match &s.hello {
        Some(h) => {
            lines.push(format!(
                "Slave {} {}: Python {} ({}, {}); {} {}; board {} serial {}",
                s.slave_id,
                h.label,
                h.py_version,
                h.native_abi,
                h.native_platform,
                h.os_name,
                h.os_version,
                h.board_revision,
                h.board_serial
            ));
            let mut t = format!(
                "Build timeout {}, busy timeout {}",
                format_span(h.build_timeout.to_chrono()),
                format_span(h.busy_timeout.to_chrono())
            );
            if let Some(skew) = s.clock_skew {
                let sign = if skew < chrono::TimeDelta::zero() {
                    "-"
                } else {
                    ""
                };
                t.push_str(&format!("; clock skew {sign}{}", format_span(skew.abs())));
            }
            t.push_str(&format!(
                "; last message {} {} ago",
                s.last_msg,
                format_span(now - s.last_seen)
            ));
            lines.push(t);
        }
        None => lines.push(format!(
            "Slave {}: no HELLO seen yet; last message {} {} ago",
            s.slave_id,
            s.last_msg,
            format_span(now - s.last_seen)
        )),
    }
    match s.latest_stats() {
        Some(st) => lines.push(slave_host_line(st)),
        None => lines.push("No statistics yet".into()),
    }
    lines
}

/// Lays rows out in columns separated by two spaces (the last column is
/// not padded).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let n = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(n) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                l.push_str(cell);
                l.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// The `--once` report.
pub fn text_report(m: &Monitor, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    for l in master_lines(m, now) {
        out.push_str(&l);
        out.push('\n');
    }
    let slaves = m.slaves();
    out.push_str(&format!("\n{} build slave(s)\n", slaves.len()));
    if !slaves.is_empty() {
        let rows: Vec<Vec<String>> = slaves.iter().map(|s| slave_row(s, now).to_vec()).collect();
        let mut header = SLAVE_COLUMNS;
        header[0] = "State";
        out.push_str(&table(&header, &rows));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::state::tests::{
        master_hello, master_stats, slave, slave_hello, slave_stats, t,
    };
    use crate::protocol::{Record, StatusMessage, Value};

    #[test]
    fn report_shows_master_and_slaves() {
        let mut m = Monitor::new();
        assert!(text_report(&m, t(0)).contains("Waiting for the master"));
        m.apply(&StatusMessage::Hello(master_hello()), t(0));
        assert!(text_report(&m, t(0)).contains("No statistics yet"));
        m.apply(&StatusMessage::Stats(master_stats(t(0))), t(0));
        m.apply(
            &slave(3, t(0), "HELLO", slave_hello("pi4-3", "cp311").to_value()),
            t(0),
        );
        m.apply(&slave(3, t(1), "STATS", slave_stats(t(1)).to_value()), t(1));
        m.apply(
            &slave(
                3,
                t(2),
                "BUILD",
                Value::Array(vec![Value::text("numpy"), Value::text("1.26.4")]),
            ),
            t(2),
        );
        m.apply(
            &slave(5, t(2), "HELLO", slave_hello("pi3-5", "cp39").to_value()),
            t(2),
        );
        let r = text_report(&m, t(65));
        assert!(r.starts_with("Master piwheels-master (Debian GNU/Linux 12, board unknown), up 1h 01m, last heard 1m 05s ago (SILENT)\n"), "{r}");
        assert!(r.contains("Built 412345 packages, 99 in the last hour (cp39 12, cp311 87); pending: cp39 1, cp311 4567"), "{r}");
        assert!(r.contains("Downloads: 45678 in the last hour"), "{r}");
        assert!(r.contains("2 build slave(s)"), "{r}");
        let lines: Vec<&str> = r.lines().collect();
        let header = lines.iter().position(|l| l.starts_with("State")).unwrap();
        assert!(lines[header + 1].starts_with("building  3  pi4-3  cp311  1m 05s  1m 03s  1m 03s  0.50  48.5°C  20.0 GiB   Building numpy 1.26.4"), "{r}");
        assert!(
            lines[header + 2].starts_with("idle      5  pi3-5  cp39"),
            "{r}"
        );
    }

    #[test]
    fn details() {
        let mut m = Monitor::new();
        m.apply(&slave(3, t(0), "SLEEP", Value::Bool(false)), t(0));
        let d = slave_details(m.slave(3).unwrap(), t(1));
        assert!(d[0].contains("no HELLO"), "{d:?}");
        m.apply(
            &slave(3, t(0), "HELLO", slave_hello("pi4", "cp311").to_value()),
            t(0),
        );
        m.apply(&slave(3, t(2), "STATS", slave_stats(t(3)).to_value()), t(2));
        let d = slave_details(m.slave(3).unwrap(), t(4));
        assert!(
            d[0].starts_with("Slave 3 pi4: Python 311 (cp311, linux_armv7l)"),
            "{d:?}"
        );
        assert!(
            d[1].contains("busy timeout 5m 00s") && d[1].contains("clock skew -1s"),
            "{d:?}"
        );
        assert!(d[2].contains("memory 3.0 GiB free of 4.0 GiB"), "{d:?}");
    }
}
