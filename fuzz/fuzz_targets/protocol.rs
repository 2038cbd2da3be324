//! Every protocol's message decoder. The first byte picks the protocol and
//! direction (index into `PROTOCOLS` times two directions); the rest is the
//! payload. What decodes must re-encode and decode to the same message, and
//! the typed decoder of that protocol (where one exists) must agree with
//! the generic one.
#![no_main]

use libfuzzer_sys::fuzz_target;
use piwheels::protocol::{
    ControlMessage, Direction, ImportReply, ImportRequest, LogMessage, PROTOCOLS, Protocol,
    SlaveReply, SlaveRequest, StatusMessage, WireMessage,
};

fn typed<M: WireMessage + PartialEq + std::fmt::Debug>(
    proto: &Protocol,
    dir: Direction,
    payload: &[u8],
) {
    if M::protocol().name != proto.name || M::DIRECTION != dir {
        return;
    }
    let generic = proto.decode(dir, payload);
    match M::decode(payload) {
        Ok(m) => {
            let msg = generic.expect("typed decode accepted what the schema refused");
            let bytes = m.encode();
            let generic_bytes = proto
                .encode(dir, m.name(), m.data().as_ref())
                .expect("a typed message fits its schema");
            assert_eq!(bytes, generic_bytes, "typed and generic encoders differ");
            let m2 = M::decode(&bytes).expect("typed re-encoding decodes");
            #[allow(clippy::eq_op)]
            if m == m {
                assert_eq!(m, m2, "typed decode -> encode -> decode changed it");
            }
            assert_eq!(m2.encode(), bytes, "typed re-encoding is not stable");
            assert_eq!(m.name(), msg.name);
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            // Only the Rust-side conversion may refuse more than the schema.
            if let Err(g) = generic {
                assert_eq!(g.kind(), e.kind(), "typed and generic errors differ");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let pick = pick as usize % (PROTOCOLS.len() * 2);
    let proto = PROTOCOLS[pick / 2];
    let dir = [Direction::ToMaster, Direction::FromMaster][pick % 2];
    match proto.decode(dir, payload) {
        Ok(msg) => {
            let bytes = proto
                .encode_message(dir, &msg)
                .expect("a decoded message re-encodes");
            let msg2 = proto.decode(dir, &bytes).expect("re-encoding decodes");
            #[allow(clippy::eq_op)]
            if msg == msg {
                assert_eq!(msg, msg2, "decode -> encode -> decode changed it");
            }
            assert_eq!(
                proto.encode_message(dir, &msg2).expect("encodes"),
                bytes,
                "re-encoding is not stable"
            );
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    typed::<SlaveRequest>(proto, dir, payload);
    typed::<SlaveReply>(proto, dir, payload);
    typed::<ImportRequest>(proto, dir, payload);
    typed::<ImportReply>(proto, dir, payload);
    typed::<ControlMessage>(proto, dir, payload);
    typed::<StatusMessage>(proto, dir, payload);
    typed::<LogMessage>(proto, dir, payload);
});
