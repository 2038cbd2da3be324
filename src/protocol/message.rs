//! The message layer: one CBOR item per payload, either a bare text name
//! (a message without data) or a two-element `[name, data]` array (even when
//! `data` is null).
//!
//! Receiving mimics piwheels' `msg, data = obj` unpacking, which accepts any
//! Python object that iterates to exactly two items:
//! - a two-element array;
//! - a two-entry map, which unpacks into its two *keys*;
//! - a two-byte byte string, which unpacks into two ints;
//! - a two-element set (wire order here; Python's order would be arbitrary).
//!
//! Anything else (a number, null, a one- or three-element array, a lone
//! break byte, …) is "invalid message structure received".
//!
//! [`WireMessage`] is the trait of the typed message enums: each one knows
//! its [`Protocol`] and [`Direction`], turns itself into `(name, data)` and
//! back, and so gets `encode` and `decode` for free.

use super::cbor::{self, CborErrorKind};
use super::convert::FieldError;
use super::error::DecodeError;
use super::schema::{Direction, Message, Protocol};
use super::value::Value;

/// A payload's top level, before the name is looked up.
pub(crate) enum Envelope {
    /// A text string: a message without data.
    Bare(String),
    /// Something that unpacks into (name, data); the name is not yet known
    /// to be text.
    Pair(Value, Value),
}

/// Writes a payload: a bare name, or `[name, data]`.
pub(crate) fn frame(name: &str, data: Option<&Value>) -> Vec<u8> {
    let name = Value::text(name);
    match data {
        None => cbor::encode(&name),
        Some(d) => {
            let mut out = vec![0x82];
            cbor::encode_into(&name, &mut out);
            cbor::encode_into(d, &mut out);
            out
        }
    }
}

fn two<T>(items: impl IntoIterator<Item = T>) -> Option<(T, T)> {
    let mut it = items.into_iter();
    let pair = (it.next()?, it.next()?);
    it.next().is_none().then_some(pair)
}

/// Reads a payload's CBOR and its top-level structure.
pub(crate) fn unframe(buf: &[u8]) -> Result<Envelope, DecodeError> {
    let value = match cbor::decode(buf) {
        Ok(v) => v,
        // cbor2 returns its break marker object here; unpacking it fails.
        Err(e) if e.kind == CborErrorKind::LoneBreak => {
            return Err(DecodeError::invalid_structure("lone break byte"));
        }
        Err(e) => return Err(DecodeError::not_cbor(e)),
    };
    let pair = match value {
        Value::Text(s) => return Ok(Envelope::Bare(s)),
        Value::Array(a) => two(a),
        // cbor2 would unpack a 2-entry map or set into its two keys, so
        // piwheels reads {"KILL": 0, null: 1} as "KILL null" (kill every
        // slave). No peer sends that shape; we refuse it rather than act on
        // it (and a set's order is arbitrary anyway).
        Value::Map(_) | Value::Set(_) => None,
        Value::Bytes(b) => two(b.into_iter().map(|x| Value::Int(i128::from(x)))),
        _ => None,
    };
    pair.map(|(name, data)| Envelope::Pair(name, data))
        .ok_or_else(|| DecodeError::invalid_structure("not a name or a [name, data] pair"))
}

/// A typed message set: one direction of one protocol.
///
/// Decoding runs the same pipeline as piwheels (CBOR → structure → name →
/// data presence → schema) and then converts to Rust types; values that
/// pass the schema but do not fit the Rust type (a negative size, an id
/// above `u64::MAX`) are [`DecodeErrorKind::InvalidData`].
///
/// [`DecodeErrorKind::InvalidData`]: super::error::DecodeErrorKind::InvalidData
pub trait WireMessage: Sized {
    /// Which way these messages travel.
    const DIRECTION: Direction;

    /// The protocol table they belong to.
    fn protocol() -> &'static Protocol;

    /// The message name, e.g. `"IDLE"`.
    fn name(&self) -> &'static str;

    /// The data as a CBOR value, or `None` for a bare-name message.
    fn data(&self) -> Option<Value>;

    /// Converts a message to the typed form. Must not panic on any input,
    /// validated or not: unknown names, wrong data presence and ill-typed
    /// data become the matching [`DecodeError`].
    fn from_message(msg: &Message) -> Result<Self, DecodeError>;

    /// The generic form, as [`Protocol::decode`] would give it.
    fn to_message(&self) -> Message {
        Message {
            name: self.name().to_owned(),
            data: self.data(),
        }
    }

    /// The payload bytes (the last frame of a ROUTER envelope, or the whole
    /// frame on PUSH/PULL and PUB/SUB).
    fn encode(&self) -> Vec<u8> {
        frame(self.name(), self.data().as_ref())
    }

    /// Decodes and validates a payload.
    fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let msg = Self::protocol().decode(Self::DIRECTION, buf)?;
        Self::from_message(&msg)
    }
}

/// Converts a message's data with `f`, for `from_message` implementations:
/// missing data and field errors become piwheels' errors for `msg`.
pub(crate) fn convert_data<'a, T>(
    msg: &'a Message,
    f: impl FnOnce(&'a Value) -> Result<T, FieldError>,
) -> Result<T, DecodeError> {
    let data = msg
        .data
        .as_ref()
        .ok_or_else(|| DecodeError::missing_data(&msg.name))?;
    f(data).map_err(|e| DecodeError::invalid_data(&msg.name, data, Some(e.to_string())))
}

/// For `from_message` implementations: a bare-name message.
pub(crate) fn expect_bare<T>(msg: &Message, value: T) -> Result<T, DecodeError> {
    match msg.data {
        None => Ok(value),
        Some(_) => Err(DecodeError::data_not_expected(&msg.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::DecodeErrorKind;

    fn kind(buf: &[u8]) -> Result<(), DecodeErrorKind> {
        unframe(buf).map(|_| ()).map_err(|e| e.kind())
    }

    fn pair(buf: &[u8]) -> (Value, Value) {
        match unframe(buf) {
            Ok(Envelope::Pair(a, b)) => (a, b),
            _ => panic!("not a pair"),
        }
    }

    #[test]
    fn frames() {
        assert_eq!(frame("BYE", None), b"\x63BYE");
        assert_eq!(
            frame("SLEEP", Some(&Value::Bool(false))),
            b"\x82\x65SLEEP\xf4"
        );
        assert_eq!(frame("KILL", Some(&Value::Null)), b"\x82\x64KILL\xf6");
    }

    #[test]
    fn unpacks_like_python() {
        assert!(matches!(unframe(b"\x63BYE"), Ok(Envelope::Bare(s)) if s == "BYE"));
        assert_eq!(pair(b"\x82\x63BYE\xf6"), (Value::text("BYE"), Value::Null));
        // Two-entry map: cbor2 would give its keys ("KILL null", kill every
        // slave); we refuse the shape.
        assert_eq!(
            kind(b"\xa2\x64KILL\x00\xf6\x01"),
            Err(DecodeErrorKind::InvalidStructure)
        );
        // Two-byte byte string: two ints.
        assert_eq!(pair(b"\x42OK"), (Value::Int(79), Value::Int(75)));
        // Two-element set: refused too (its order is arbitrary).
        assert_eq!(
            kind(b"\xd9\x01\x02\x82\x01\x02"),
            Err(DecodeErrorKind::InvalidStructure)
        );
        assert_eq!(kind(b"\x81\x63BYE"), Err(DecodeErrorKind::InvalidStructure));
        assert_eq!(
            kind(b"\x83\x01\x02\x03"),
            Err(DecodeErrorKind::InvalidStructure)
        );
        assert_eq!(kind(b"\x43BYE"), Err(DecodeErrorKind::InvalidStructure));
        assert_eq!(
            kind(b"\xa1\x01\x02"),
            Err(DecodeErrorKind::InvalidStructure)
        );
        // Any top-level map is refused, duplicate keys or not.
        assert_eq!(
            kind(b"\xa2\x01\x02\x01\x03"),
            Err(DecodeErrorKind::InvalidStructure)
        );
        assert_eq!(kind(b"\x18\x2a"), Err(DecodeErrorKind::InvalidStructure));
        assert_eq!(kind(b"\xf6"), Err(DecodeErrorKind::InvalidStructure));
        assert_eq!(
            kind(b"\xd9\x07\xd2\xf6"),
            Err(DecodeErrorKind::InvalidStructure)
        );
        assert_eq!(kind(b"\xff"), Err(DecodeErrorKind::InvalidStructure));
        assert_eq!(kind(b""), Err(DecodeErrorKind::NotCbor));
        assert_eq!(kind(b"\x82\x65"), Err(DecodeErrorKind::NotCbor));
    }

    #[test]
    fn convert_helpers() {
        let m = Message::bare("X");
        assert_eq!(
            convert_data(&m, |_| Ok(())).unwrap_err().kind(),
            DecodeErrorKind::MissingData
        );
        assert!(expect_bare(&m, ()).is_ok());
        let m = Message::with_data("X", Value::Null);
        assert_eq!(
            expect_bare(&m, ()).unwrap_err().kind(),
            DecodeErrorKind::DataNotExpected
        );
        let e = convert_data(&m, |_| Err::<(), _>(FieldError::new("f", "bad"))).unwrap_err();
        assert_eq!(e.kind(), DecodeErrorKind::InvalidData);
        assert_eq!(e.to_string(), "invalid data for X: null");
        assert_eq!(e.detail(), Some("f: bad"));
    }
}
