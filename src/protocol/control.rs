//! The control protocol (`master_control`): piw-monitor and piw-sense (PUSH)
//! send commands to the master's control queue (PULL). Every master task
//! also pushes `QUIT` here when it crashes. Nothing is ever sent back.

use super::convert::opt_uint;
use super::error::DecodeError;
use super::message::{WireMessage, convert_data, expect_bare};
use super::schema::{Direction, Message, Protocol, Schema as S};
use super::value::Value;

const OPT_INT: S = S::Any(&[S::Int, S::Null]);

/// piwheels' `master_control` protocol.
pub static MASTER_CONTROL: Protocol = Protocol {
    name: "master_control",
    recv: &[
        ("HELLO", S::NoData),
        ("KILL", OPT_INT),
        ("SLEEP", OPT_INT),
        ("SKIP", OPT_INT),
        ("WAKE", OPT_INT),
        ("QUIT", S::NoData),
    ],
    send: &[],
};

/// A command to the master. A slave id of `None` means every slave.
///
/// A `true`/`false` slave id is accepted as 1/0, as piwheels' validator
/// accepts a bool where it expects an int; it is re-encoded as an int.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlMessage {
    /// `HELLO`: a new monitor wants the current state replayed.
    Hello,
    /// `KILL id|null`: make the slave(s) quit at their next request.
    Kill(Option<u64>),
    /// `SLEEP id|null`: pause the slave(s); with null, pause the master.
    Sleep(Option<u64>),
    /// `SKIP id|null`: abandon the current build(s).
    Skip(Option<u64>),
    /// `WAKE id|null`: resume.
    Wake(Option<u64>),
    /// `QUIT`: shut the master down.
    Quit,
}

impl WireMessage for ControlMessage {
    const DIRECTION: Direction = Direction::ToMaster;

    fn protocol() -> &'static Protocol {
        &MASTER_CONTROL
    }

    fn name(&self) -> &'static str {
        match self {
            ControlMessage::Hello => "HELLO",
            ControlMessage::Kill(_) => "KILL",
            ControlMessage::Sleep(_) => "SLEEP",
            ControlMessage::Skip(_) => "SKIP",
            ControlMessage::Wake(_) => "WAKE",
            ControlMessage::Quit => "QUIT",
        }
    }

    fn data(&self) -> Option<Value> {
        match self {
            ControlMessage::Hello | ControlMessage::Quit => None,
            ControlMessage::Kill(id)
            | ControlMessage::Sleep(id)
            | ControlMessage::Skip(id)
            | ControlMessage::Wake(id) => Some((*id).into()),
        }
    }

    fn from_message(msg: &Message) -> Result<Self, DecodeError> {
        let make = match msg.name.as_str() {
            "HELLO" => return expect_bare(msg, ControlMessage::Hello),
            "QUIT" => return expect_bare(msg, ControlMessage::Quit),
            "KILL" => ControlMessage::Kill,
            "SLEEP" => ControlMessage::Sleep,
            "SKIP" => ControlMessage::Skip,
            "WAKE" => ControlMessage::Wake,
            other => return Err(DecodeError::unknown_message(other)),
        };
        convert_data(msg, |v| opt_uint(v, "slave_id")).map(make)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::DecodeErrorKind;
    use crate::protocol::test_support::round_trip;

    #[test]
    fn every_message() {
        for m in [
            ControlMessage::Hello,
            ControlMessage::Quit,
            ControlMessage::Kill(None),
            ControlMessage::Kill(Some(0)),
            ControlMessage::Sleep(Some(3)),
            ControlMessage::Skip(None),
            ControlMessage::Wake(Some(u64::MAX)),
        ] {
            round_trip(&m);
        }
        assert_eq!(ControlMessage::Kill(None).encode(), b"\x82\x64KILL\xf6");
    }

    #[test]
    fn bool_id_is_an_int() {
        let m = ControlMessage::decode(b"\x82\x64KILL\xf5").unwrap();
        assert_eq!(m, ControlMessage::Kill(Some(1)));
        assert_eq!(m.encode(), b"\x82\x64KILL\x01");
    }

    #[test]
    fn negative_id_is_invalid() {
        let e = ControlMessage::decode(b"\x82\x64KILL\x20").unwrap_err();
        assert_eq!(e.kind(), DecodeErrorKind::InvalidData);
        assert_eq!(e.to_string(), "invalid data for KILL: -1");
    }
}
