//! Inputs the fuzz targets (fuzz/fuzz_targets/) once crashed on, replayed
//! through the same checks. Each target's inputs live in
//! tests/data/fuzz-regressions/<target>/, one file each, as libFuzzer saved
//! them; a new crash is added by copying its artifact there.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use piwheels::logger::format::{COMBINED, COMMON, COMMON_VHOST};
use piwheels::logger::{LogFormat, Outcome, process_line};
use piwheels::protocol::{Direction, LogMessage, PROTOCOLS, WireMessage, cbor};
use piwheels::pypi::xmlrpc::parse_changelog;
use piwheels::wheel::{Requirement, WheelName, validate_filename};

/// The saved inputs of `target`, by name (none yet is fine).
fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests/data/fuzz-regressions",
        target,
    ]
    .iter()
    .collect();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .map(|e| {
            let p = e.expect("entry").path();
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read input"))
        })
        .collect();
    out.sort();
    out
}

/// Runs `check` on every saved input of `target`, each within 10 s (the
/// fuzzers' -timeout).
fn replay(target: &str, check: impl Fn(&[u8])) {
    for (name, data) in inputs(target) {
        let start = Instant::now();
        check(&data);
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{target}/{name} took {:?}",
            start.elapsed()
        );
    }
}

#[test]
fn cbor() {
    replay("cbor", |data| {
        if let Ok(v) = cbor::decode(data) {
            let bytes = cbor::encode(&v);
            let v2 = cbor::decode(&bytes).expect("re-encoding decodes");
            assert_eq!(cbor::encode(&v2), bytes);
        }
    });
}

#[test]
fn protocol() {
    replay("protocol", |data| {
        let Some((&pick, payload)) = data.split_first() else {
            return;
        };
        let pick = pick as usize % (PROTOCOLS.len() * 2);
        let proto = PROTOCOLS[pick / 2];
        let dir = [Direction::ToMaster, Direction::FromMaster][pick % 2];
        if let Ok(msg) = proto.decode(dir, payload) {
            let bytes = proto.encode_message(dir, &msg).expect("re-encodes");
            let msg2 = proto.decode(dir, &bytes).expect("re-encoding decodes");
            assert_eq!(proto.encode_message(dir, &msg2).expect("encodes"), bytes);
        }
    });
}

#[test]
fn xmlrpc() {
    replay("xmlrpc", |data| {
        let mut seen = 0;
        if let Ok(n) = parse_changelog(data, |_| seen += 1) {
            assert_eq!(n, seen);
        }
    });
}

#[test]
fn wheel_name() {
    replay("wheel_name", |data| {
        let Ok(s) = std::str::from_utf8(data) else {
            return;
        };
        if WheelName::parse(s).is_ok() {
            assert!(validate_filename(s).is_ok());
            assert!(!s.contains(['/', '\\', '\0']) && !s.starts_with('.'));
        }
        let _ = Requirement::parse(s);
    });
}

#[test]
fn logger() {
    replay("logger", |data| {
        let Some((&pick, rest)) = data.split_first() else {
            return;
        };
        let text = String::from_utf8_lossy(rest);
        let mut lines = text.split('\n');
        let spec = match pick % 4 {
            0 => COMBINED,
            1 => COMMON,
            2 => COMMON_VHOST,
            _ => lines.next().unwrap_or(""),
        };
        let Ok(format) = LogFormat::new(spec) else {
            return;
        };
        for line in lines {
            if let Outcome::Send(msg) = process_line(&format, line) {
                let back = LogMessage::decode(&msg.encode()).expect("decodes");
                assert_eq!(back, msg);
            }
        }
    });
}
