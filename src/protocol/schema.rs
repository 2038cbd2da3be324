//! Declarative schemas and protocol tables, with voluptuous' semantics.
//!
//! Each piwheels socket has a `Protocol`: two maps from message name to
//! schema, `recv` (messages travelling *to* the master) and `send` (*from*
//! the master); a client uses the reverse. Here that is a [`Protocol`] of
//! static tables plus a [`Direction`].
//!
//! The checks are voluptuous' as piwheels uses them:
//! - `int` is `isinstance(v, int)`, so a bool passes (Python's `bool` is an
//!   `int` subclass), and so does a bignum too large for `i128`;
//! - `float` accepts only floats: `45` where `45.0` is expected fails, and
//!   so does `45.0` where an int is expected;
//! - `str` accepts only text strings, never bytes;
//! - [`Schema::Seq`] (`ExactSequence`) needs an array of exactly that
//!   length; [`Schema::List`] (`[T]`) any array of T, even empty;
//!   [`Schema::Dict`] (`{str: T}`) a map with text keys, even empty;
//! - [`Schema::Literal`] compares for equality (only text equals text);
//! - [`Schema::Extra`] accepts anything at all;
//! - [`Schema::NoData`] marks a message that has no data (a bare name).

use super::error::{DIAG_LIMIT, DecodeError, EncodeError};
use super::message::{Envelope, frame, unframe};
use super::value::Value;

/// A voluptuous schema, written as a static table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Schema {
    /// The message carries no data: it is sent as a bare text name.
    NoData,
    /// `int` (bool accepted, as in Python).
    Int,
    /// `float` (ints rejected).
    Float,
    /// `bool`.
    Bool,
    /// `str`.
    Str,
    /// `datetime.datetime`.
    DateTime,
    /// `datetime.timedelta`.
    TimeDelta,
    /// `None` (inside an `Any`).
    Null,
    /// A literal string, e.g. the part names of REBUILD.
    Literal(&'static str),
    /// voluptuous' `Extra`: anything.
    Extra,
    /// `ExactSequence([...])`.
    Seq(&'static [Schema]),
    /// `[T]`.
    List(&'static Schema),
    /// `{str: T}`.
    Dict(&'static Schema),
    /// `Any(a, b, ...)`.
    Any(&'static [Schema]),
}

impl Schema {
    /// Does `v` pass this schema? (Always false for [`Schema::NoData`],
    /// which describes the absence of data.)
    ///
    /// The recursion follows the schema, which is static and shallow, so a
    /// hostile value cannot make it deep.
    pub fn validate(&self, v: &Value) -> bool {
        match self {
            Schema::NoData => false,
            Schema::Int => match v {
                Value::Int(_) | Value::Bool(_) => true,
                // A bignum beyond i128 is still a Python int.
                Value::Tag(2 | 3, inner) => matches!(**inner, Value::Bytes(_)),
                _ => false,
            },
            Schema::Float => matches!(v, Value::Float(_)),
            Schema::Bool => matches!(v, Value::Bool(_)),
            Schema::Str => matches!(v, Value::Text(_)),
            Schema::DateTime => matches!(v, Value::DateTime(_)),
            Schema::TimeDelta => matches!(v, Value::TimeDelta(_)),
            Schema::Null => matches!(v, Value::Null),
            Schema::Literal(s) => v.as_str() == Some(*s),
            Schema::Extra => true,
            Schema::Seq(items) => match v {
                Value::Array(a) => {
                    a.len() == items.len() && a.iter().zip(items.iter()).all(|(x, s)| s.validate(x))
                }
                _ => false,
            },
            Schema::List(item) => match v {
                Value::Array(a) => a.iter().all(|x| item.validate(x)),
                _ => false,
            },
            Schema::Dict(value) => match v {
                Value::Map(m) => m
                    .iter()
                    .all(|(k, x)| matches!(k, Value::Text(_)) && value.validate(x)),
                _ => false,
            },
            Schema::Any(options) => options.iter().any(|s| s.validate(v)),
        }
    }

    /// Does a message with this schema carry data?
    pub fn has_data(&self) -> bool {
        !matches!(self, Schema::NoData)
    }
}

/// Which way a message travels, from the master's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Received by the master: piwheels' `Protocol.recv`.
    ToMaster,
    /// Sent by the master: piwheels' `Protocol.send`.
    FromMaster,
}

impl Direction {
    /// The other direction (what `reversed(protocol)` does in piwheels).
    pub fn reversed(self) -> Direction {
        match self {
            Direction::ToMaster => Direction::FromMaster,
            Direction::FromMaster => Direction::ToMaster,
        }
    }
}

/// A message table: name → schema for each direction.
#[derive(Debug)]
pub struct Protocol {
    /// piwheels' name for it (the attribute name in `protocols.py`).
    pub name: &'static str,
    /// Messages the master receives.
    pub recv: &'static [(&'static str, Schema)],
    /// Messages the master sends.
    pub send: &'static [(&'static str, Schema)],
}

/// A message whose name is in its protocol and whose data passed the
/// schema. `data` is `None` exactly when the schema is [`Schema::NoData`].
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The message name, e.g. `"IDLE"`.
    pub name: String,
    /// The data, or `None` for a bare name.
    pub data: Option<Value>,
}

impl Message {
    /// A message without data.
    pub fn bare(name: &str) -> Message {
        Message {
            name: name.to_owned(),
            data: None,
        }
    }

    /// A message with data.
    pub fn with_data(name: &str, data: Value) -> Message {
        Message {
            name: name.to_owned(),
            data: Some(data),
        }
    }
}

impl Protocol {
    /// The table for one direction.
    pub fn messages(&self, dir: Direction) -> &'static [(&'static str, Schema)] {
        match dir {
            Direction::ToMaster => self.recv,
            Direction::FromMaster => self.send,
        }
    }

    /// The schema of `name` travelling in `dir`, if the protocol has it.
    pub fn schema(&self, dir: Direction, name: &str) -> Option<&'static Schema> {
        self.messages(dir)
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s)
    }

    /// Decodes and validates one payload travelling in `dir`: CBOR, then
    /// structure, then name, then data presence, then schema — the order of
    /// piwheels' `_load_msg`, so the same input gets the same error.
    pub fn decode(&self, dir: Direction, buf: &[u8]) -> Result<Message, DecodeError> {
        match unframe(buf)? {
            Envelope::Bare(name) => match self.schema(dir, &name) {
                None => Err(DecodeError::unknown_message(name)),
                Some(Schema::NoData) => Ok(Message { name, data: None }),
                Some(_) => Err(DecodeError::missing_data(&name)),
            },
            Envelope::Pair(name, data) => {
                let name = match name {
                    Value::Text(s) => s,
                    // piwheels looks any hashable name up in a dict of str
                    // keys, so it is unknown; an array or map name crashes
                    // piwheels (unhashable) and is unknown here too.
                    other => {
                        return Err(DecodeError::unknown_message(
                            other.diag_truncated(DIAG_LIMIT),
                        ));
                    }
                };
                match self.schema(dir, &name) {
                    None => Err(DecodeError::unknown_message(name)),
                    Some(Schema::NoData) => Err(DecodeError::data_not_expected(&name)),
                    Some(schema) if schema.validate(&data) => Ok(Message {
                        name,
                        data: Some(data),
                    }),
                    Some(_) => Err(DecodeError::invalid_data(&name, &data, None)),
                }
            }
        }
    }

    /// Validates and encodes a message travelling in `dir`, with the checks
    /// of piwheels' `_dump_msg`.
    pub fn encode(
        &self,
        dir: Direction,
        name: &str,
        data: Option<&Value>,
    ) -> Result<Vec<u8>, EncodeError> {
        let schema = self
            .schema(dir, name)
            .ok_or_else(|| EncodeError::UnknownMessage(name.to_owned()))?;
        match (schema, data) {
            (Schema::NoData, None) => Ok(frame(name, None)),
            (Schema::NoData, Some(_)) => Err(EncodeError::NoDataExpected(name.to_owned())),
            (_, None) => Err(EncodeError::DataRequired(name.to_owned())),
            (schema, Some(d)) if schema.validate(d) => Ok(frame(name, Some(d))),
            (_, Some(d)) => Err(EncodeError::InvalidData {
                name: name.to_owned(),
                data: d.diag_truncated(DIAG_LIMIT),
            }),
        }
    }

    /// [`Protocol::encode`] for a [`Message`].
    pub fn encode_message(&self, dir: Direction, msg: &Message) -> Result<Vec<u8>, EncodeError> {
        self.encode(dir, &msg.name, msg.data.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::cbor;
    use crate::protocol::value::TimeDelta;

    static ITEM: Schema = Schema::Seq(&[Schema::Str, Schema::Str]);
    static TEST: Protocol = Protocol {
        name: "test",
        recv: &[
            ("BARE", Schema::NoData),
            ("INT", Schema::Int),
            ("OPT", Schema::Any(&[Schema::Int, Schema::Null])),
            ("SEQ", Schema::Seq(&[Schema::Float, Schema::Bool])),
            ("LIST", Schema::List(&ITEM)),
            ("DICT", Schema::Dict(&Schema::List(&Schema::Str))),
            (
                "PART",
                Schema::Any(&[
                    Schema::Seq(&[Schema::Literal("HOME")]),
                    Schema::Seq(&[
                        Schema::Literal("BOTH"),
                        Schema::Any(&[Schema::Str, Schema::Null]),
                    ]),
                ]),
            ),
            ("ANY", Schema::Extra),
        ],
        send: &[("OK", Schema::Extra)],
    };

    fn arr(v: Vec<Value>) -> Value {
        Value::Array(v)
    }

    #[test]
    fn isinstance_rules() {
        assert!(Schema::Int.validate(&Value::Int(-3)));
        assert!(Schema::Int.validate(&Value::Bool(true)));
        assert!(Schema::Int.validate(&Value::Tag(2, Box::new(Value::Bytes(vec![1; 17])))));
        assert!(!Schema::Int.validate(&Value::Float(1.0)));
        assert!(!Schema::Int.validate(&Value::Tag(37, Box::new(Value::Int(1)))));
        assert!(!Schema::Int.validate(&Value::Tag(2, Box::new(Value::Int(1)))));
        assert!(Schema::Float.validate(&Value::Float(1.0)));
        assert!(!Schema::Float.validate(&Value::Int(1)));
        assert!(!Schema::Bool.validate(&Value::Int(0)));
        assert!(!Schema::Str.validate(&Value::Bytes(b"x".to_vec())));
        assert!(!Schema::Str.validate(&Value::Null));
        assert!(Schema::TimeDelta.validate(&Value::TimeDelta(TimeDelta::ZERO)));
        assert!(!Schema::TimeDelta.validate(&Value::Int(0)));
        assert!(!Schema::DateTime.validate(&Value::text("2024-01-01T00:00:00Z")));
        assert!(!Schema::Null.validate(&Value::NoData));
        assert!(!Schema::Null.validate(&Value::Undefined));
        assert!(Schema::Extra.validate(&Value::Undefined));
        assert!(!Schema::NoData.validate(&Value::Null));
    }

    #[test]
    fn containers() {
        let seq = Schema::Seq(&[Schema::Float, Schema::Bool]);
        assert!(seq.validate(&arr(vec![Value::Float(1.0), Value::Bool(true)])));
        assert!(!seq.validate(&arr(vec![Value::Float(1.0)])));
        assert!(!seq.validate(&arr(vec![
            Value::Float(1.0),
            Value::Bool(true),
            Value::Null
        ])));
        assert!(!seq.validate(&Value::Set(vec![Value::Float(1.0), Value::Bool(true)])));
        let list = Schema::List(&ITEM);
        assert!(list.validate(&arr(vec![])));
        assert!(list.validate(&arr(vec![arr(vec![Value::text("a"), Value::text("b")])])));
        assert!(!list.validate(&arr(vec![arr(vec![Value::text("a")])])));
        assert!(!list.validate(&Value::Map(vec![])));
        let dict = Schema::Dict(&Schema::Int);
        assert!(dict.validate(&Value::Map(vec![])));
        assert!(dict.validate(&Value::Map(vec![(Value::text("cp311"), Value::Int(1))])));
        assert!(!dict.validate(&Value::Map(vec![(Value::Int(311), Value::Int(1))])));
        assert!(!dict.validate(&Value::Map(vec![(Value::text("a"), Value::text("1"))])));
        assert!(!dict.validate(&arr(vec![])));
    }

    fn dec(h: &[u8]) -> Result<Message, crate::protocol::DecodeErrorKind> {
        TEST.decode(Direction::ToMaster, h).map_err(|e| e.kind())
    }

    #[test]
    fn decode_order_matches_piwheels() {
        use crate::protocol::DecodeErrorKind::*;
        let enc = |v: Value| cbor::encode(&v);
        assert_eq!(dec(&enc(Value::text("BARE"))), Ok(Message::bare("BARE")));
        assert_eq!(dec(&enc(Value::text("INT"))), Err(MissingData));
        assert_eq!(dec(&enc(Value::text("NOPE"))), Err(UnknownMessage));
        assert_eq!(
            dec(&enc(arr(vec![Value::text("BARE"), Value::Null]))),
            Err(DataNotExpected)
        );
        assert_eq!(
            dec(&enc(arr(vec![Value::text("NOPE"), Value::Null]))),
            Err(UnknownMessage)
        );
        assert_eq!(
            dec(&enc(arr(vec![Value::Int(1), Value::Null]))),
            Err(UnknownMessage)
        );
        assert_eq!(
            dec(&enc(arr(vec![arr(vec![]), Value::Null]))),
            Err(UnknownMessage)
        );
        assert_eq!(
            dec(&enc(arr(vec![Value::text("INT"), Value::Float(1.0)]))),
            Err(InvalidData)
        );
        assert_eq!(
            dec(&enc(arr(vec![Value::text("OPT"), Value::Null]))),
            Ok(Message::with_data("OPT", Value::Null))
        );
        assert_eq!(
            dec(&enc(arr(vec![
                Value::text("PART"),
                arr(vec![Value::text("HOME")])
            ])))
            .map(|m| m.name),
            Ok("PART".into())
        );
        assert_eq!(
            dec(&enc(arr(vec![
                Value::text("PART"),
                arr(vec![Value::text("home")])
            ]))),
            Err(InvalidData)
        );
        assert_eq!(
            dec(&enc(arr(vec![
                Value::text("PART"),
                arr(vec![Value::text("BOTH"), Value::Null])
            ])))
            .map(|m| m.name),
            Ok("PART".into())
        );
        assert_eq!(
            dec(&enc(arr(vec![Value::text("ANY"), Value::Undefined]))).map(|m| m.data),
            Ok(Some(Value::Undefined))
        );
        assert_eq!(dec(&[0x1c]), Err(NotCbor));
        assert_eq!(dec(&[0xff]), Err(InvalidStructure));
        assert_eq!(dec(&enc(Value::Int(1))), Err(InvalidStructure));
        // Only the receiving direction's table counts.
        assert_eq!(
            dec(&enc(arr(vec![Value::text("OK"), Value::Null]))),
            Err(UnknownMessage)
        );
        assert!(
            TEST.decode(
                Direction::FromMaster,
                &enc(arr(vec![Value::text("OK"), Value::Null]))
            )
            .is_ok()
        );
    }

    #[test]
    fn encode_checks_like_dump_msg() {
        let d = Direction::ToMaster;
        assert_eq!(TEST.encode(d, "BARE", None).unwrap(), b"\x64BARE");
        assert_eq!(
            TEST.encode(d, "INT", Some(&Value::Int(1))).unwrap(),
            b"\x82\x63INT\x01"
        );
        assert_eq!(
            TEST.encode(d, "X", None),
            Err(EncodeError::UnknownMessage("X".into()))
        );
        assert_eq!(
            TEST.encode(d, "INT", None),
            Err(EncodeError::DataRequired("INT".into()))
        );
        assert_eq!(
            TEST.encode(d, "BARE", Some(&Value::Null)),
            Err(EncodeError::NoDataExpected("BARE".into()))
        );
        assert!(matches!(
            TEST.encode(d, "INT", Some(&Value::Null)),
            Err(EncodeError::InvalidData { .. })
        ));
        let m = Message::with_data("OPT", Value::Int(3));
        assert_eq!(TEST.encode_message(d, &m).unwrap(), b"\x82\x63OPT\x03");
        assert_eq!(Direction::ToMaster.reversed(), Direction::FromMaster);
        assert!(TEST.schema(Direction::FromMaster, "OK").is_some());
        assert!(Schema::Int.has_data());
        assert!(!Schema::NoData.has_data());
    }
}
