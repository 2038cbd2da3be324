//! Robustness tests driven by the wire vectors: truncation at every length,
//! deterministic random mutations, huge and deeply nested frames. The only
//! assertion for hostile input is "an error, quickly, without a panic"; for
//! input that does decode, re-encoding must be stable.

use std::time::{Duration, Instant};

use piwheels::protocol::{
    ControlMessage, DecodeErrorKind, Direction, FileState, ImportReply, ImportRequest, LogMessage,
    PROTOCOLS, Record, SlaveReply, SlaveRequest, StatusMessage, Value, WireMessage, cbor, file,
    parse_router_frames,
};
use serde_json::Value as Json;

fn load() -> Json {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/wire-vectors.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("parse")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Every byte string in the vector file (positive, negative, decode-only).
fn all_inputs(root: &Json) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for key in ["vectors", "negative", "decode_only"] {
        for v in root[key].as_array().expect(key) {
            out.push(hex(v["hex"].as_str().expect("hex")));
        }
    }
    assert!(out.len() >= 361, "vector file too short: {}", out.len());
    out
}

/// Feeds bytes to every decoder we have; returns how many accepted them.
/// Accepted messages must re-encode, and the re-encoding must decode to
/// the same message (the canonical form is stable).
fn feed(bytes: &[u8]) -> usize {
    let mut accepted = 0;
    for p in PROTOCOLS {
        for dir in [Direction::ToMaster, Direction::FromMaster] {
            if let Ok(msg) = p.decode(dir, bytes) {
                accepted += 1;
                let again = p
                    .encode_message(dir, &msg)
                    .expect("a decoded message re-encodes");
                let msg2 = p.decode(dir, &again).expect("re-encoding decodes");
                assert_eq!(
                    p.encode_message(dir, &msg2).expect("stable"),
                    again,
                    "{}: unstable re-encoding",
                    p.name
                );
            }
        }
    }
    fn typed<M: WireMessage>(bytes: &[u8]) -> usize {
        match M::decode(bytes) {
            Ok(m) => {
                let again = m.encode();
                let m2 = M::decode(&again).expect("typed re-encoding decodes");
                assert_eq!(m2.encode(), again, "typed re-encoding is stable");
                1
            }
            Err(e) => {
                // Display must work for every error.
                assert!(!e.to_string().is_empty());
                0
            }
        }
    }
    accepted += typed::<SlaveRequest>(bytes)
        + typed::<SlaveReply>(bytes)
        + typed::<ImportRequest>(bytes)
        + typed::<ImportReply>(bytes)
        + typed::<ControlMessage>(bytes)
        + typed::<StatusMessage>(bytes)
        + typed::<LogMessage>(bytes);
    if let Ok(v) = cbor::decode(bytes) {
        let again = cbor::encode(&v);
        let v2 = cbor::decode(&again).expect("re-encoded value decodes");
        assert_eq!(cbor::encode(&v2), again, "value re-encoding is stable");
        let _ = v.to_string();
    }
    // As raw file-transfer frames, too.
    let _ = file::parse_peer_frames(&[bytes]);
    let _ = file::parse_master_frames(&[bytes, bytes]);
    accepted
}

#[test]
fn every_prefix_of_every_vector() {
    let root = load();
    // Positive vectors have no trailing bytes, so every proper prefix is an
    // incomplete item: always "unable to deserialize data".
    for v in root["vectors"].as_array().expect("vectors") {
        let bytes = hex(v["hex"].as_str().expect("hex"));
        let proto = piwheels::protocol::protocol(v["protocol"].as_str().expect("p")).expect("p");
        for n in 0..bytes.len() {
            for dir in [Direction::ToMaster, Direction::FromMaster] {
                let e = proto.decode(dir, &bytes[..n]).expect_err("prefix decoded");
                assert_eq!(e.kind(), DecodeErrorKind::NotCbor, "{} at {n}", v["id"]);
            }
        }
    }
    // Everything else: no panic on any prefix, in any decoder.
    for bytes in all_inputs(&root) {
        for n in 0..=bytes.len() {
            feed(&bytes[..n]);
        }
    }
}

/// SplitMix64: a tiny deterministic PRNG (no crate needed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Bytes that steer a CBOR decoder into interesting corners.
const INTERESTING: &[u8] = &[
    0x00, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1f, 0x20, 0x3b, 0x40, 0x5b, 0x5f, 0x60, 0x7b, 0x7f,
    0x80, 0x81, 0x82, 0x9b, 0x9f, 0xa0, 0xa2, 0xbb, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3, 0xd8, 0xd9, 0xdb,
    0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xff,
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..=rng.below(4) {
        let pos = if b.is_empty() { 0 } else { rng.below(b.len()) };
        match rng.below(7) {
            0 if !b.is_empty() => b[pos] ^= 1 << rng.below(8),
            1 if !b.is_empty() => b[pos] = rng.next() as u8,
            2 if !b.is_empty() => b[pos] = INTERESTING[rng.below(INTERESTING.len())],
            3 => b.insert(pos, INTERESTING[rng.below(INTERESTING.len())]),
            4 if !b.is_empty() => {
                b.remove(pos);
            }
            5 if b.len() > 2 => {
                // Duplicate a slice (nests or repeats structure).
                let end = (pos + 1 + rng.below(8)).min(b.len());
                let slice = b[pos..end].to_vec();
                b.splice(pos..pos, slice);
            }
            _ => b.truncate(pos),
        }
    }
    b
}

#[test]
fn random_mutations_never_panic() {
    let root = load();
    let inputs = all_inputs(&root);
    let mut rng = Rng(0x5eed_0023);
    let mut accepted = 0;
    let mut total = 0;
    for input in &inputs {
        for _ in 0..150 {
            let m = mutate(&mut rng, input);
            accepted += feed(&m);
            total += 1;
        }
    }
    // Sanity: the mutator is not so wild that nothing ever decodes.
    assert!(accepted > 0, "no mutation of {total} decoded");
}

#[test]
fn ten_megabyte_frames_are_linear() {
    // A BUILT with a 10 MB build log decodes, and quickly.
    let log = "x".repeat(10 << 20);
    let built = SlaveRequest::Built(piwheels::protocol::BuildResult {
        status: false,
        duration: piwheels::protocol::TimeDelta::ZERO,
        output: log,
        files: vec![],
    });
    let bytes = built.encode();
    let start = Instant::now();
    assert_eq!(SlaveRequest::decode(&bytes).expect("decodes"), built);
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );

    // 10 MB of hostile shapes fail (or decode) without quadratic work.
    let cases: Vec<Vec<u8>> = vec![
        vec![0x81; 10 << 20],
        vec![0x9f; 10 << 20],
        vec![0xd8; 10 << 20],
        [
            &[0x82, 0x64][..],
            b"IDLE",
            &[0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ]
        .concat()
        .into_iter()
        .chain(std::iter::repeat_n(0u8, 10 << 20))
        .collect(),
        // An indefinite text of 1-byte chunks, never terminated.
        std::iter::once(0x7f)
            .chain(std::iter::repeat_n([0x61u8, b'a'], 5 << 20).flatten())
            .collect(),
        // A map of 1M distinct int keys.
        [0xba, 0x00, 0x0f, 0x42, 0x40]
            .into_iter()
            .chain((0u32..1_000_000).flat_map(|i| {
                let mut e = vec![0x1a];
                e.extend_from_slice(&i.to_be_bytes());
                e.push(0xf6);
                e
            }))
            .collect(),
        // A map of 1M identical keys (all collapse into one entry).
        [0xba, 0x00, 0x0f, 0x42, 0x40]
            .into_iter()
            .chain(std::iter::repeat_n([0x61u8, b'k', 0x00], 1_000_000).flatten())
            .collect(),
    ];
    for (i, bytes) in cases.iter().enumerate() {
        let start = Instant::now();
        let _ = SlaveRequest::decode(bytes);
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "case {i} took {:?}",
            start.elapsed()
        );
    }
    // Maps of a million entries exceed the item cap and fail fast, without
    // building the map.
    for case in &cases[5..7] {
        let err = cbor::decode(case).expect_err("over MAX_ITEMS");
        assert_eq!(err.kind, cbor::CborErrorKind::TooManyItems);
    }
}

#[test]
fn deep_nesting_fails_cleanly() {
    for depth in [65usize, 100, 1000, 100_000] {
        for open in [0x81u8, 0x9f, 0xa1, 0xc1, 0xd9] {
            let mut b = Vec::new();
            for _ in 0..depth {
                b.push(open);
                match open {
                    0xa1 => b.push(0x00),
                    0xd9 => b.extend_from_slice(&[0x01, 0x02]),
                    _ => {}
                }
            }
            b.push(0x00);
            let e = SlaveRequest::decode(&b).expect_err("deep input decoded");
            assert_eq!(e.kind(), DecodeErrorKind::NotCbor, "{open:02x} x {depth}");
        }
    }
}

#[test]
fn nested_arrays_as_message_names() {
    for depth in [1usize, 2, 10, 60, 70, 5000] {
        let mut b = vec![0x82];
        b.extend(std::iter::repeat_n(0x81, depth));
        b.push(0x01);
        b.push(0xf6);
        let e = SlaveRequest::decode(&b).expect_err("array name");
        let want = if depth + 1 > cbor::MAX_DEPTH {
            DecodeErrorKind::NotCbor
        } else {
            DecodeErrorKind::UnknownMessage
        };
        assert_eq!(e.kind(), want, "depth {depth}");
    }
    // A map or set as the name: unknown, never a crash.
    for b in [
        &b"\x82\xa1\x01\x02\xf6"[..],
        b"\x82\xd9\x01\x02\x80\xf6",
        b"\x82\xa0\x02",
    ] {
        assert_eq!(
            SlaveRequest::decode(b).unwrap_err().kind(),
            DecodeErrorKind::UnknownMessage
        );
    }
}

#[test]
fn wrong_tag_payloads() {
    let cases: &[(&[u8], DecodeErrorKind)] = &[
        // 2001 with 2 and 4 elements, a map, text, a nested 2001.
        (
            b"\x82\x65SLEEP\xd9\x07\xd1\x82\x00\x01",
            DecodeErrorKind::NotCbor,
        ),
        (
            b"\x82\x65SLEEP\xd9\x07\xd1\x84\x00\x01\x02\x03",
            DecodeErrorKind::NotCbor,
        ),
        (b"\x82\x65SLEEP\xd9\x07\xd1\xa0", DecodeErrorKind::NotCbor),
        (b"\x82\x65SLEEP\xd9\x07\xd1\x61x", DecodeErrorKind::NotCbor),
        (
            b"\x82\x65SLEEP\xd9\x07\xd1\x83\xd9\x07\xd1\x83\x00\x00\x00\x00\x00",
            DecodeErrorKind::NotCbor,
        ),
        // 0 with bytes, 1 with text, 2 with an int, 258 with a map.
        (b"\x82\x65SLEEP\xc0\x41x", DecodeErrorKind::NotCbor),
        (b"\x82\x65SLEEP\xc1\x61x", DecodeErrorKind::NotCbor),
        (b"\x82\x65SLEEP\xc2\x01", DecodeErrorKind::NotCbor),
        (b"\x82\x65SLEEP\xd9\x01\x02\xa0", DecodeErrorKind::NotCbor),
        // Well-formed tags that are simply the wrong type: invalid data.
        (
            b"\x82\x65SLEEP\xd9\x07\xd1\x83\x00\x00\x00",
            DecodeErrorKind::InvalidData,
        ),
        (
            b"\x82\x65SLEEP\xd9\x07\xd2\xf5",
            DecodeErrorKind::InvalidData,
        ),
        (b"\x82\x65SLEEP\xd8\x25\x41x", DecodeErrorKind::InvalidData),
    ];
    for (bytes, kind) in cases {
        let e = SlaveReply::decode(bytes).expect_err("bad tag accepted");
        assert_eq!(e.kind(), *kind, "{bytes:02x?}: {e} ({:?})", e.detail());
    }
    // Still fine where it belongs.
    assert_eq!(
        SlaveReply::decode(b"\x82\x65SLEEP\xd9\xd9\xf7\xf5").unwrap(),
        SlaveReply::Sleep { paused: true }
    );
}

#[test]
fn dependency_order_is_preserved() {
    // The wire order is apt, pip, ""; whatever order we are given is kept.
    for order in [["apt", "pip", ""], ["", "pip", "apt"], ["pip", "", "apt"]] {
        let fs = FileState {
            filename: "x.whl".into(),
            filesize: 1,
            filehash: "00".into(),
            package_tag: "x".into(),
            package_version_tag: "1".into(),
            py_version_tag: "py3".into(),
            abi_tag: "none".into(),
            platform_tag: "any".into(),
            requires_python: None,
            dependencies: order.iter().map(|k| (k.to_string(), vec![])).collect(),
            location: "/simple".into(),
        };
        let bytes = cbor::encode(&fs.to_value());
        let back = FileState::from_value(&cbor::decode(&bytes).unwrap()).unwrap();
        let keys: Vec<_> = back.dependencies.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, order);
        assert_eq!(cbor::encode(&back.to_value()), bytes);
    }
}

#[test]
fn router_envelopes_of_any_shape() {
    let root = load();
    let payload = hex(root["vectors"][0]["hex"].as_str().unwrap());
    for n in 0..8 {
        let frames: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                if i == n - 1 {
                    payload.clone()
                } else {
                    vec![i as u8]
                }
            })
            .collect();
        let r = parse_router_frames(&frames);
        assert_eq!(r.is_ok(), n == 3, "{n} frames");
    }
}

#[test]
fn typed_conversion_survives_unvalidated_values() {
    // from_message must never panic, even on data that never went through
    // the schema: feed every name of every typed protocol with values taken
    // from (mutated) vectors.
    fn try_all<M: WireMessage>(name: &str, data: &Option<Value>) {
        let msg = piwheels::protocol::Message {
            name: name.to_owned(),
            data: data.clone(),
        };
        if let Err(e) = M::from_message(&msg) {
            assert!(!e.to_string().is_empty());
        }
    }
    let root = load();
    let mut rng = Rng(0xda7a);
    let mut values = vec![None, Some(Value::Null), Some(Value::Array(vec![]))];
    for input in all_inputs(&root) {
        for _ in 0..5 {
            if let Ok(v) = cbor::decode(&mutate(&mut rng, &input)) {
                // The data position of [name, data], or the whole value.
                if let Value::Array(a) = &v
                    && a.len() == 2
                {
                    values.push(Some(a[1].clone()));
                }
                values.push(Some(v));
            }
        }
    }
    let names: Vec<&str> = PROTOCOLS
        .iter()
        .flat_map(|p| p.recv.iter().chain(p.send.iter()).map(|(n, _)| *n))
        .chain(["", "bye", "NOPE"])
        .collect();
    for data in &values {
        for name in &names {
            try_all::<SlaveRequest>(name, data);
            try_all::<SlaveReply>(name, data);
            try_all::<ImportRequest>(name, data);
            try_all::<ImportReply>(name, data);
            try_all::<ControlMessage>(name, data);
            try_all::<StatusMessage>(name, data);
            try_all::<LogMessage>(name, data);
        }
    }
    assert!(values.len() > 100);
}
