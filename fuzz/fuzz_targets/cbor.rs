//! The CBOR codec alone: decoding any bytes never panics, and whatever
//! decodes re-encodes to bytes that decode to the same value, stably.
#![no_main]

use libfuzzer_sys::fuzz_target;
use piwheels::protocol::cbor;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = cbor::decode(data) else {
        return;
    };
    let bytes = cbor::encode(&v);
    let v2 = cbor::decode(&bytes).expect("a re-encoded value decodes");
    // NaN is not equal to itself; compare values only when that holds.
    #[allow(clippy::eq_op)]
    if v == v {
        assert_eq!(v, v2, "decode -> encode -> decode changed the value");
    }
    assert_eq!(cbor::encode(&v2), bytes, "re-encoding is not stable");
    let _ = v.to_string();
});
