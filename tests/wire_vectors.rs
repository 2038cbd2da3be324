//! Golden tests against `tests/data/wire-vectors.json`: bytes produced and
//! checked by piwheels 0.23's own encoder/decoder (cbor2 5.4.6).
//!
//! - every positive vector decodes (schema-level for every protocol, typed
//!   as well for the external ones), matches its JSON payload view, and
//!   re-encodes to the identical bytes;
//! - every negative vector is rejected with the same error kind (and, where
//!   the text is not Python-specific, the same text);
//! - every decode-only vector decodes to `decoded` and re-encodes to
//!   `reencoded_hex`, except where our typed layer deliberately differs
//!   ([`TYPED_DIFFERENCES`]);
//! - every ROUTER envelope is accepted or rejected as listed.
//!
//! The counts are pinned: a shorter file fails instead of silently testing
//! less.
//!
//! ## Inputs that crash piwheels ("uncaught")
//!
//! piwheels lets 14 of the negative inputs escape `recv_msg` as non-IOError
//! exceptions, which end the receiving task and then the whole master. We
//! reject them cleanly, with these kinds (asserted by [`UNCAUGHT`]):
//!
//! | vector | piwheels raises | our kind | why |
//! |---|---|---|---|
//! | master_control KILL/5: tag 30 rational 1/0 | ZeroDivisionError | InvalidData | unknown tags stay tagged values, which no schema but `Extra` accepts |
//! | master_control KILL/6: tag 35 bad regex | re.error | InvalidData | same |
//! | slave_driver -/10: name is an array | TypeError (unhashable) | UnknownMessage | a non-text name is never in a protocol table; piwheels says "unknown message" for every other non-text name (ints, map-key tuples) |
//! | slave_driver -/11: name is a map | TypeError (unhashable) | UnknownMessage | same |
//! | slave_driver -/12: 1000 nested arrays | RecursionError | NotCbor | nesting beyond `cbor::MAX_DEPTH` (64) is a decoding error |
//! | slave_driver HELLO/6: tag 2001 with 2 elements | ValueError | NotCbor | tag content that cannot become a timedelta is a decoding error, as cbor2 reports bad datetime strings |
//! | slave_driver HELLO/7: tag 2001 with text | TypeError | NotCbor | same |
//! | slave_driver HELLO/8: invalid UTF-8 | UnicodeDecodeError | NotCbor | not well-formed CBOR text |
//! | slave_driver HELLO/9: tag 2001 wrapping an int | TypeError | NotCbor | bad tag content |
//! | slave_driver HELLO/10: tag 2001 days out of range | OverflowError | NotCbor | bad tag content (Python's timedelta range) |
//! | slave_driver HELLO/11: tag 2001 with NaN | ValueError | NotCbor | bad tag content |
//! | slave_driver IDLE/19: tag 0 month 13 | ValueError | NotCbor | bad datetime text, like the other tag 0 errors piwheels reports as not_cbor |
//! | slave_driver IDLE/20: tag 1 epoch 1e20 | OverflowError | NotCbor | bad tag content (Python's datetime range) |
//! | slave_driver IDLE/21: tag 1 epoch NaN | ValueError | NotCbor | bad tag content |

use piwheels::protocol::value::format_datetime;
use piwheels::protocol::{
    ControlMessage, DecodeError, DecodeErrorKind, Direction, ImportReply, ImportRequest,
    LogMessage, Message, SlaveReply, SlaveRequest, StatusMessage, Value, WireMessage,
    parse_router_frames, protocol,
};
use serde_json::Value as Json;

const EXPECTED_VECTORS: usize = 189;
const EXPECTED_NEGATIVE: usize = 150;
const EXPECTED_DECODE_ONLY: usize = 22;
const EXPECTED_ROUTER_FRAMES: usize = 7;
/// Positive vectors of the five external protocols (typed round trips).
const EXPECTED_TYPED: usize = 83;

use DecodeErrorKind::*;

/// Inputs piwheels handles and we deliberately refuse differently: a
/// top-level map (or set) is unpacked by cbor2 into its keys, so piwheels
/// reads `{"KILL": 0, null: 1}` as "KILL null" and kills every slave. No
/// peer sends that shape; we call it a structure error.
/// (Ids are unique within each list of the file, so there is one table per
/// list.)
const DELIBERATE_NEGATIVE: &[(&str, DecodeErrorKind)] =
    &[("slave_driver/to_master/IDLE/8", InvalidStructure)];
const DELIBERATE_DECODE_ONLY: &[(&str, DecodeErrorKind)] =
    &[("master_control/to_master/KILL/1", InvalidStructure)];

/// The kind we give each input that crashes piwheels (see the table above).
const UNCAUGHT: &[(&str, DecodeErrorKind)] = &[
    ("master_control/to_master/KILL/5", InvalidData),
    ("master_control/to_master/KILL/6", InvalidData),
    ("slave_driver/to_master/-/10", UnknownMessage),
    ("slave_driver/to_master/-/11", UnknownMessage),
    ("slave_driver/to_master/-/12", NotCbor),
    ("slave_driver/to_master/HELLO/6", NotCbor),
    ("slave_driver/to_master/HELLO/7", NotCbor),
    ("slave_driver/to_master/HELLO/8", NotCbor),
    ("slave_driver/to_master/HELLO/9", NotCbor),
    ("slave_driver/to_master/HELLO/10", NotCbor),
    ("slave_driver/to_master/HELLO/11", NotCbor),
    ("slave_driver/to_master/IDLE/19", NotCbor),
    ("slave_driver/to_master/IDLE/20", NotCbor),
    ("slave_driver/to_master/IDLE/21", NotCbor),
];

/// What the typed layer does differently from piwheels on decode-only
/// inputs (the schema layer matches piwheels on all of them).
enum Typed {
    /// Decodes, but re-encodes to these bytes.
    Reencodes(&'static str),
    /// Rejected with this kind.
    Rejects(DecodeErrorKind),
}

const TYPED_DIFFERENCES: &[(&str, Typed, &str)] = &[
    (
        "master_control/to_master/KILL/0",
        Typed::Reencodes("82644b494c4c01"),
        "a bool slave id is accepted as an int (as voluptuous does) and re-encoded as the int 1",
    ),
    (
        "slave_driver/to_master/IDLE/10",
        Typed::Reencodes(
            "826449444c4589c074323032342d30332d30315431323a30303a30305a011b00000002dfdc1c351aed1e\
             10001a800000001a063ff0001a063ff000fb3ff8000000000000fb4046c00000000000",
        ),
        "a bool disk size is accepted as an int and re-encoded as the int 1",
    ),
    (
        "slave_driver/to_master/IDLE/2",
        Typed::Reencodes(
            "826449444c4589c074323032342d30332d30315431323a30303a30305a1b0000000746f000001b000000\
             02dfdc1c351aed1e10001a800000001a063ff0001a063ff000fb3ff8000000000000fb4046c00000000000",
        ),
        "typed datetimes are UTC, so a +02:00 timestamp re-encodes as the same instant with Z",
    ),
    (
        "slave_driver/to_master/IDLE/8",
        Typed::Rejects(InvalidData),
        "a disk size of 2**64 does not fit u64",
    ),
];

fn load() -> Json {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/wire-vectors.json");
    let text = std::fs::read_to_string(path).expect("read wire-vectors.json");
    serde_json::from_str(&text).expect("parse wire-vectors.json")
}

fn list<'a>(root: &'a Json, key: &str, expected: usize) -> &'a [Json] {
    let items = root[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} missing"));
    assert_eq!(items.len(), expected, "number of {key} vectors");
    items
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn s<'a>(v: &'a Json, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

fn direction(v: &Json) -> Direction {
    match s(v, "direction") {
        "to_master" => Direction::ToMaster,
        "from_master" => Direction::FromMaster,
        other => panic!("bad direction {other}"),
    }
}

fn kind_of(name: &str) -> DecodeErrorKind {
    match name {
        "not_cbor" => NotCbor,
        "unknown_message" => UnknownMessage,
        "missing_data" => MissingData,
        "data_not_expected" => DataNotExpected,
        "invalid_structure" => InvalidStructure,
        "invalid_data" => InvalidData,
        other => panic!("unexpected error kind {other}"),
    }
}

fn is_nodata(j: &Json) -> bool {
    j.as_object()
        .is_some_and(|o| o.len() == 1 && o.get("$nodata") == Some(&Json::Bool(true)))
}

/// Does a decoded value match the JSON payload view (see `notes.payload`)?
fn view_matches(v: &Value, j: &Json) -> Result<(), String> {
    let fail = || Err(format!("{v} does not match {j}"));
    match (v, j) {
        (Value::NoData, j) if is_nodata(j) => Ok(()),
        (Value::Null, Json::Null) => Ok(()),
        (Value::Bool(a), Json::Bool(b)) if a == b => Ok(()),
        (Value::Int(i), Json::Number(n)) => {
            let ok = if let Some(u) = n.as_u64() {
                *i == i128::from(u)
            } else if let Some(s) = n.as_i64() {
                *i == i128::from(s)
            } else {
                // Beyond 64 bits serde_json (without arbitrary precision)
                // keeps only an f64 view.
                (*i as f64) == n.as_f64().unwrap_or(f64::NAN)
            };
            if ok { Ok(()) } else { fail() }
        }
        (Value::Float(x), Json::Number(n)) if n.is_f64() => {
            if n.as_f64() == Some(*x) {
                Ok(())
            } else {
                fail()
            }
        }
        (Value::Text(a), Json::String(b)) if a == b => Ok(()),
        (Value::DateTime(dt), Json::String(b)) if format_datetime(dt) == *b => Ok(()),
        (Value::TimeDelta(td), Json::Object(o)) => {
            let want = (
                o.get("days").and_then(Json::as_i64),
                o.get("seconds").and_then(Json::as_i64),
                o.get("microseconds").and_then(Json::as_i64),
            );
            let got = (
                Some(i64::from(td.days())),
                Some(i64::from(td.seconds())),
                Some(i64::from(td.microseconds())),
            );
            if o.len() == 3 && want == got {
                Ok(())
            } else {
                fail()
            }
        }
        (Value::Set(items), Json::Object(o)) if o.len() == 1 && o.contains_key("$set") => {
            seq_matches(items, &o["$set"])
        }
        (Value::Array(items), j @ Json::Array(_)) => seq_matches(items, j),
        (Value::Map(entries), Json::Object(o)) if !is_nodata(j) => {
            if entries.len() != o.len() {
                return fail();
            }
            for ((k, val), (jk, jv)) in entries.iter().zip(o) {
                if k.as_str() != Some(jk.as_str()) {
                    return Err(format!("key order: {k} vs {jk:?} in {j}"));
                }
                view_matches(val, jv)?;
            }
            Ok(())
        }
        _ => fail(),
    }
}

fn seq_matches(items: &[Value], j: &Json) -> Result<(), String> {
    let Some(js) = j.as_array() else {
        return Err(format!("{j} is not an array"));
    };
    if items.len() != js.len() {
        return Err(format!("length {} vs {} in {j}", items.len(), js.len()));
    }
    items
        .iter()
        .zip(js)
        .try_for_each(|(v, j)| view_matches(v, j))
}

/// A message's data against a payload (`$nodata` for a bare name).
fn message_matches(msg: &Message, payload: &Json) -> Result<(), String> {
    match &msg.data {
        None if is_nodata(payload) => Ok(()),
        None => Err(format!("{} has no data, payload {payload}", msg.name)),
        Some(d) => view_matches(d, payload),
    }
}

type TypedResult = Result<(Vec<u8>, Message), DecodeError>;

fn typed_go<M: WireMessage>(bytes: &[u8]) -> TypedResult {
    let m = M::decode(bytes)?;
    Ok((m.encode(), m.to_message()))
}

/// Decodes with the typed enum of an external protocol, if there is one.
fn typed(protocol: &str, dir: Direction, bytes: &[u8]) -> Option<TypedResult> {
    use Direction::*;
    Some(match (protocol, dir) {
        ("slave_driver", ToMaster) => typed_go::<SlaveRequest>(bytes),
        ("slave_driver", FromMaster) => typed_go::<SlaveReply>(bytes),
        ("mr_chase", ToMaster) => typed_go::<ImportRequest>(bytes),
        ("mr_chase", FromMaster) => typed_go::<ImportReply>(bytes),
        ("master_control", ToMaster) => typed_go::<ControlMessage>(bytes),
        ("monitor_stats", FromMaster) => typed_go::<StatusMessage>(bytes),
        ("lumberjack", ToMaster) => typed_go::<LogMessage>(bytes),
        _ => return None,
    })
}

#[test]
fn file_is_for_piwheels_0_23() {
    let root = load();
    assert_eq!(root["piwheels_version"], "0.23");
    assert_eq!(root["commit"], "4df6188");
    assert!(root["notes"].is_object());
}

#[test]
fn positive_vectors_round_trip() {
    let root = load();
    let mut typed_checked = 0;
    for v in list(&root, "vectors", EXPECTED_VECTORS) {
        let id = s(v, "id");
        let proto = protocol(s(v, "protocol")).unwrap_or_else(|| panic!("{id}: no protocol"));
        let dir = direction(v);
        let bytes = hex(s(v, "hex"));
        let msg = proto
            .decode(dir, &bytes)
            .unwrap_or_else(|e| panic!("{id}: {e} ({:?})", e.detail()));
        assert_eq!(msg.name, s(v, "message"), "{id}");
        message_matches(&msg, &v["payload"]).unwrap_or_else(|e| panic!("{id}: {e}"));
        let again = proto
            .encode_message(dir, &msg)
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(
            to_hex(&again),
            s(v, "hex"),
            "{id}: schema-level re-encoding"
        );

        if let Some(result) = typed(s(v, "protocol"), dir, &bytes) {
            let (typed_bytes, typed_msg) =
                result.unwrap_or_else(|e| panic!("{id}: typed: {e} ({:?})", e.detail()));
            assert_eq!(to_hex(&typed_bytes), s(v, "hex"), "{id}: typed re-encoding");
            assert_eq!(typed_msg, msg, "{id}: typed view");
            typed_checked += 1;
        }
    }
    assert_eq!(typed_checked, EXPECTED_TYPED);
}

#[test]
fn negative_vectors_are_rejected_alike() {
    let root = load();
    let mut uncaught_seen = Vec::new();
    for v in list(&root, "negative", EXPECTED_NEGATIVE) {
        let id = s(v, "id");
        let proto = protocol(s(v, "protocol")).unwrap_or_else(|| panic!("{id}: no protocol"));
        let dir = direction(v);
        let bytes = hex(s(v, "hex"));
        let err = match proto.decode(dir, &bytes) {
            Ok(m) => panic!("{id}: accepted as {m:?}"),
            Err(e) => e,
        };
        if let Some((_, kind)) = DELIBERATE_NEGATIVE.iter().find(|(d, _)| *d == id) {
            assert_eq!(err.kind(), *kind, "{id}: {err}");
            continue;
        }
        let expected = match s(v, "error_kind") {
            "uncaught" => {
                let (_, kind) = UNCAUGHT
                    .iter()
                    .find(|(u, _)| *u == id)
                    .unwrap_or_else(|| panic!("{id}: uncaught but not in UNCAUGHT"));
                uncaught_seen.push(id);
                *kind
            }
            other => kind_of(other),
        };
        assert_eq!(err.kind(), expected, "{id}: {err}");

        // piwheels' text, where it is not a Python repr.
        let text = s(v, "error");
        match s(v, "error_kind") {
            "uncaught" => {}
            "invalid_data" => {
                let prefix = format!("invalid data for {}: ", s(v, "message"));
                assert!(text.starts_with(&prefix), "{id}: vector text");
                assert!(err.to_string().starts_with(&prefix), "{id}: {err}");
            }
            _ => assert_eq!(err.to_string(), text, "{id}"),
        }

        if let Some(result) = typed(s(v, "protocol"), dir, &bytes) {
            let terr = result.expect_err(id);
            assert_eq!(terr.kind(), expected, "{id}: typed: {terr}");
            assert_eq!(terr.to_string(), err.to_string(), "{id}: typed text");
        }
    }
    let mut listed: Vec<_> = UNCAUGHT.iter().map(|(id, _)| *id).collect();
    listed.sort_unstable();
    uncaught_seen.sort_unstable();
    assert_eq!(
        uncaught_seen, listed,
        "every UNCAUGHT entry matches a vector"
    );
}

#[test]
fn decode_only_vectors() {
    let root = load();
    let mut differences_seen = Vec::new();
    for v in list(&root, "decode_only", EXPECTED_DECODE_ONLY) {
        let id = s(v, "id");
        let proto = protocol(s(v, "protocol")).unwrap_or_else(|| panic!("{id}: no protocol"));
        let dir = direction(v);
        let bytes = hex(s(v, "hex"));
        if let Some((_, kind)) = DELIBERATE_DECODE_ONLY.iter().find(|(d, _)| *d == id) {
            let err = proto.decode(dir, &bytes).expect_err(id);
            assert_eq!(err.kind(), *kind, "{id}: {err}");
            continue;
        }
        let msg = proto
            .decode(dir, &bytes)
            .unwrap_or_else(|e| panic!("{id}: {e} ({:?})", e.detail()));
        assert_eq!(msg.name, s(v, "message"), "{id}");
        message_matches(&msg, &v["decoded"]).unwrap_or_else(|e| panic!("{id}: {e}"));
        let again = proto.encode_message(dir, &msg).unwrap();
        assert_eq!(to_hex(&again), s(v, "reencoded_hex"), "{id}: schema-level");
        assert_eq!(
            v["reencoded_identical"].as_bool(),
            Some(again == bytes),
            "{id}: reencoded_identical"
        );

        let Some(result) = typed(s(v, "protocol"), dir, &bytes) else {
            continue;
        };
        match TYPED_DIFFERENCES.iter().find(|(d, _, _)| *d == id) {
            None => {
                let (typed_bytes, typed_msg) =
                    result.unwrap_or_else(|e| panic!("{id}: typed: {e} ({:?})", e.detail()));
                assert_eq!(to_hex(&typed_bytes), s(v, "reencoded_hex"), "{id}: typed");
                assert_eq!(typed_msg, msg, "{id}: typed view");
            }
            Some((_, Typed::Reencodes(want), why)) => {
                let (typed_bytes, _) = result.unwrap_or_else(|e| panic!("{id}: typed: {e}"));
                assert_eq!(to_hex(&typed_bytes), *want, "{id}: {why}");
                differences_seen.push(id);
            }
            Some((_, Typed::Rejects(kind), why)) => {
                assert_eq!(result.expect_err(id).kind(), *kind, "{id}: {why}");
                differences_seen.push(id);
            }
        }
    }
    assert_eq!(differences_seen.len(), TYPED_DIFFERENCES.len());
}

#[test]
fn router_frame_vectors() {
    let root = load();
    let identity = b"\x00\x6b\x8b\x45\x67".to_vec();
    for v in list(&root, "router_frames", EXPECTED_ROUTER_FRAMES) {
        let id = s(v, "id");
        let mut frames = vec![identity.clone()];
        frames.extend(
            v["frames_hex"]
                .as_array()
                .expect("frames_hex")
                .iter()
                .map(|f| hex(f.as_str().expect("frame"))),
        );
        let proto = protocol(s(v, "protocol")).expect("protocol");
        let result = parse_router_frames(&frames).and_then(|req| {
            assert_eq!(req.identity, identity.as_slice(), "{id}");
            proto.decode(direction(v), req.payload)
        });
        if v["accepted"].as_bool() == Some(true) {
            let msg = result.unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(msg.name, s(v, "message"), "{id}");
        } else {
            let err = result.expect_err(id);
            assert_eq!(err.kind(), kind_of(s(v, "error_kind")), "{id}");
            assert_eq!(err.to_string(), s(v, "error"), "{id}");
        }
    }
}
