//! ROUTER envelopes for REQ peers (slaves and import clients).
//!
//! A ROUTER socket delivers a REQ peer's message as exactly three frames:
//! `[identity, delimiter, payload]`. Like piwheels' `recv_addr_msg`, any
//! other frame count is "invalid message structure received", and the
//! delimiter's content is not checked (a DEALER sending `["junk", payload]`
//! is accepted). Replies go back as `[identity, "", payload]`.
//!
//! The identity is opaque bytes chosen by libzmq; it changes every time the
//! peer opens a new socket.

use super::error::DecodeError;
use super::message::WireMessage;

/// A REQ peer's request, split from its ROUTER envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterRequest<'a> {
    /// The peer's ROUTER identity (opaque).
    pub identity: &'a [u8],
    /// The CBOR payload.
    pub payload: &'a [u8],
}

/// Splits the frames a ROUTER socket received (identity first).
pub fn parse_router_frames<F: AsRef<[u8]>>(frames: &[F]) -> Result<RouterRequest<'_>, DecodeError> {
    match frames {
        [identity, _delimiter, payload] => Ok(RouterRequest {
            identity: identity.as_ref(),
            payload: payload.as_ref(),
        }),
        _ => Err(DecodeError::invalid_structure(format!(
            "expected 3 frames [identity, delimiter, payload], got {}",
            frames.len()
        ))),
    }
}

/// The frames to send a reply to a REQ peer through a ROUTER socket.
pub fn router_frames(identity: &[u8], payload: Vec<u8>) -> Vec<Vec<u8>> {
    vec![identity.to_vec(), Vec::new(), payload]
}

/// Splits and decodes a typed request in one go: the identity and the
/// message, or piwheels' error.
pub fn decode_addressed<M: WireMessage, F: AsRef<[u8]>>(
    frames: &[F],
) -> Result<(&[u8], M), DecodeError> {
    let req = parse_router_frames(frames)?;
    Ok((req.identity, M::decode(req.payload)?))
}

/// Encodes a typed reply addressed to `identity`.
pub fn encode_addressed<M: WireMessage>(identity: &[u8], msg: &M) -> Vec<Vec<u8>> {
    router_frames(identity, msg.encode())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::DecodeErrorKind;
    use crate::protocol::slave::{SlaveReply, SlaveRequest};

    #[test]
    fn exactly_three_frames() {
        let ok: [&[u8]; 3] = [b"\x00id", b"", b"\x63BYE"];
        let r = parse_router_frames(&ok).unwrap();
        assert_eq!(r.identity, b"\x00id");
        assert_eq!(r.payload, b"\x63BYE");
        let junk: [&[u8]; 3] = [b"id", b"junk", b"\x63BYE"];
        assert!(parse_router_frames(&junk).is_ok());
        for bad in [
            vec![],
            vec![b"id".to_vec()],
            vec![b"id".to_vec(), b"\x63BYE".to_vec()],
            vec![b"id".to_vec(), vec![], b"\x63BYE".to_vec(), vec![]],
        ] {
            let e = parse_router_frames(&bad).unwrap_err();
            assert_eq!(e.kind(), DecodeErrorKind::InvalidStructure);
            assert_eq!(e.to_string(), "invalid message structure received");
        }
    }

    #[test]
    fn typed_helpers() {
        let frames = vec![b"id".to_vec(), vec![], SlaveRequest::Bye.encode()];
        let (id, msg) = decode_addressed::<SlaveRequest, _>(&frames).unwrap();
        assert_eq!((id, msg), (&b"id"[..], SlaveRequest::Bye));
        let out = encode_addressed(b"id", &SlaveReply::Done);
        assert_eq!(out, vec![b"id".to_vec(), vec![], b"\x64DONE".to_vec()]);
        let bad = vec![b"id".to_vec(), vec![], vec![0x1c]];
        assert_eq!(
            decode_addressed::<SlaveRequest, _>(&bad)
                .unwrap_err()
                .kind(),
            DecodeErrorKind::NotCbor
        );
    }
}
