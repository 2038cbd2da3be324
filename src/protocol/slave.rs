//! The slave protocol (`slave_driver`): build slaves (REQ) talk to
//! SlaveDriver (ROUTER, tcp port 5555). Each request gets one reply, except
//! `BYE`, which gets none.
//!
//! 0.23 specifics: `SLEEP` carries a bool (true: the master is paused;
//! false: no work), `IDLE`/`BUSY` carry the 9-field stats and `BUILT` the
//! 11-field file states. No software version is exchanged.

use super::convert::{Conv, boolean, seq, text, timedelta, uint};
use super::error::DecodeError;
use super::message::{WireMessage, convert_data, expect_bare};
use super::records::{
    FILE_STATE, FileState, Record, SLAVE_HELLO, SLAVE_STATS, SlaveHello, SlaveStats, files,
    files_value,
};
use super::schema::{Direction, Message, Protocol, Schema as S};
use super::value::{TimeDelta, Value};

/// piwheels' `slave_driver` protocol.
pub static SLAVE_DRIVER: Protocol = Protocol {
    name: "slave_driver",
    recv: &[
        ("HELLO", SLAVE_HELLO),
        ("BYE", S::NoData),
        ("IDLE", SLAVE_STATS),
        (
            "BUILT",
            S::Seq(&[S::Bool, S::TimeDelta, S::Str, S::List(&FILE_STATE)]),
        ),
        ("BUSY", SLAVE_STATS),
        ("SENT", S::NoData),
    ],
    send: &[
        ("ACK", S::Seq(&[S::Int, S::Str])),
        ("DIE", S::NoData),
        ("SLEEP", S::Bool),
        ("BUILD", S::Seq(&[S::Str, S::Str])),
        ("CONT", S::NoData),
        ("SEND", S::Str),
        ("DONE", S::NoData),
    ],
};

/// The outcome of a build, as the slave reports it in `BUILT`.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildResult {
    /// Did the build succeed?
    pub status: bool,
    /// How long it took (may be negative if the slave's clock stepped).
    pub duration: TimeDelta,
    /// The build log.
    pub output: String,
    /// The wheels built, sorted by filename.
    pub files: Vec<FileState>,
}

impl BuildResult {
    fn to_value(&self) -> Value {
        Value::Array(vec![
            self.status.into(),
            self.duration.into(),
            (&self.output).into(),
            files_value(&self.files),
        ])
    }

    fn from_value(v: &Value) -> Conv<Self> {
        let a = seq(v, 4, "BUILT")?;
        Ok(BuildResult {
            status: boolean(&a[0], "status")?,
            duration: timedelta(&a[1], "duration")?,
            output: text(&a[2], "output")?,
            files: files(&a[3])?,
        })
    }
}

/// What a build slave sends to the master.
#[derive(Debug, Clone, PartialEq)]
pub enum SlaveRequest {
    /// `HELLO`: a new slave introduces itself.
    Hello(SlaveHello),
    /// `IDLE`: ready for work.
    Idle(SlaveStats),
    /// `BUSY`: still building.
    Busy(SlaveStats),
    /// `BUILT`: a build finished.
    Built(BuildResult),
    /// `SENT`: a file transfer finished.
    Sent,
    /// `BYE`: the slave is leaving (no reply).
    Bye,
}

impl WireMessage for SlaveRequest {
    const DIRECTION: Direction = Direction::ToMaster;

    fn protocol() -> &'static Protocol {
        &SLAVE_DRIVER
    }

    fn name(&self) -> &'static str {
        match self {
            SlaveRequest::Hello(_) => "HELLO",
            SlaveRequest::Idle(_) => "IDLE",
            SlaveRequest::Busy(_) => "BUSY",
            SlaveRequest::Built(_) => "BUILT",
            SlaveRequest::Sent => "SENT",
            SlaveRequest::Bye => "BYE",
        }
    }

    fn data(&self) -> Option<Value> {
        match self {
            SlaveRequest::Hello(h) => Some(h.to_value()),
            SlaveRequest::Idle(s) | SlaveRequest::Busy(s) => Some(s.to_value()),
            SlaveRequest::Built(b) => Some(b.to_value()),
            SlaveRequest::Sent | SlaveRequest::Bye => None,
        }
    }

    fn from_message(msg: &Message) -> Result<Self, DecodeError> {
        match msg.name.as_str() {
            "HELLO" => convert_data(msg, SlaveHello::from_value).map(SlaveRequest::Hello),
            "IDLE" => convert_data(msg, SlaveStats::from_value).map(SlaveRequest::Idle),
            "BUSY" => convert_data(msg, SlaveStats::from_value).map(SlaveRequest::Busy),
            "BUILT" => convert_data(msg, BuildResult::from_value).map(SlaveRequest::Built),
            "SENT" => expect_bare(msg, SlaveRequest::Sent),
            "BYE" => expect_bare(msg, SlaveRequest::Bye),
            other => Err(DecodeError::unknown_message(other)),
        }
    }
}

/// What the master replies to a build slave.
#[derive(Debug, Clone, PartialEq)]
pub enum SlaveReply {
    /// `ACK [slave_id, pypi_url]`: welcome; use this index URL.
    Ack {
        /// The id the master gave the slave.
        slave_id: u64,
        /// The PyPI simple index the slave should build from.
        pypi_url: String,
    },
    /// `SLEEP paused`: nothing to do; `true` when the master is paused,
    /// `false` when there is simply no work.
    Sleep {
        /// Is the master paused?
        paused: bool,
    },
    /// `BUILD [package, version]`.
    Build {
        /// Package to build.
        package: String,
        /// Version to build.
        version: String,
    },
    /// `CONT`: keep building.
    Cont,
    /// `SEND filename`: transfer this file.
    Send {
        /// The file to send.
        filename: String,
    },
    /// `DONE`: all files received (or the build was thrown away).
    Done,
    /// `DIE`: shut down.
    Die,
}

impl WireMessage for SlaveReply {
    const DIRECTION: Direction = Direction::FromMaster;

    fn protocol() -> &'static Protocol {
        &SLAVE_DRIVER
    }

    fn name(&self) -> &'static str {
        match self {
            SlaveReply::Ack { .. } => "ACK",
            SlaveReply::Sleep { .. } => "SLEEP",
            SlaveReply::Build { .. } => "BUILD",
            SlaveReply::Cont => "CONT",
            SlaveReply::Send { .. } => "SEND",
            SlaveReply::Done => "DONE",
            SlaveReply::Die => "DIE",
        }
    }

    fn data(&self) -> Option<Value> {
        match self {
            SlaveReply::Ack { slave_id, pypi_url } => {
                Some(Value::Array(vec![(*slave_id).into(), pypi_url.into()]))
            }
            SlaveReply::Sleep { paused } => Some((*paused).into()),
            SlaveReply::Build { package, version } => {
                Some(Value::Array(vec![package.into(), version.into()]))
            }
            SlaveReply::Send { filename } => Some(filename.into()),
            SlaveReply::Cont | SlaveReply::Done | SlaveReply::Die => None,
        }
    }

    fn from_message(msg: &Message) -> Result<Self, DecodeError> {
        match msg.name.as_str() {
            "ACK" => convert_data(msg, |v| {
                let a = seq(v, 2, "ACK")?;
                Ok(SlaveReply::Ack {
                    slave_id: uint(&a[0], "slave_id")?,
                    pypi_url: text(&a[1], "pypi_url")?,
                })
            }),
            "SLEEP" => convert_data(msg, |v| {
                Ok(SlaveReply::Sleep {
                    paused: boolean(v, "paused")?,
                })
            }),
            "BUILD" => convert_data(msg, |v| {
                let a = seq(v, 2, "BUILD")?;
                Ok(SlaveReply::Build {
                    package: text(&a[0], "package")?,
                    version: text(&a[1], "version")?,
                })
            }),
            "SEND" => convert_data(msg, |v| {
                Ok(SlaveReply::Send {
                    filename: text(v, "filename")?,
                })
            }),
            "CONT" => expect_bare(msg, SlaveReply::Cont),
            "DONE" => expect_bare(msg, SlaveReply::Done),
            "DIE" => expect_bare(msg, SlaveReply::Die),
            other => Err(DecodeError::unknown_message(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::DecodeErrorKind;
    use crate::protocol::records::samples::*;
    use crate::protocol::test_support::round_trip;

    fn all_requests() -> Vec<SlaveRequest> {
        vec![
            SlaveRequest::Hello(slave_hello()),
            SlaveRequest::Idle(slave_stats()),
            SlaveRequest::Busy(slave_stats()),
            SlaveRequest::Built(BuildResult {
                status: true,
                duration: TimeDelta::new(0, 123, 456_789).unwrap(),
                output: "ok".into(),
                files: vec![file_state()],
            }),
            SlaveRequest::Built(BuildResult {
                status: false,
                duration: TimeDelta::from_secs(-1).unwrap(),
                output: "".into(),
                files: vec![],
            }),
            SlaveRequest::Sent,
            SlaveRequest::Bye,
        ]
    }

    fn all_replies() -> Vec<SlaveReply> {
        vec![
            SlaveReply::Ack {
                slave_id: 1,
                pypi_url: "https://pypi.org/simple".into(),
            },
            SlaveReply::Sleep { paused: false },
            SlaveReply::Sleep { paused: true },
            SlaveReply::Build {
                package: "numpy".into(),
                version: "1.26.4".into(),
            },
            SlaveReply::Cont,
            SlaveReply::Send {
                filename: "numpy-1.26.4-cp311-cp311-linux_armv7l.whl".into(),
            },
            SlaveReply::Done,
            SlaveReply::Die,
        ]
    }

    #[test]
    fn every_message_both_ways() {
        for m in all_requests() {
            round_trip(&m);
        }
        for m in all_replies() {
            round_trip(&m);
        }
    }

    #[test]
    fn known_bytes() {
        assert_eq!(SlaveRequest::Bye.encode(), b"\x63BYE");
        assert_eq!(
            SlaveReply::Sleep { paused: false }.encode(),
            b"\x82\x65SLEEP\xf4"
        );
        let ack = SlaveReply::Ack {
            slave_id: 1,
            pypi_url: "https://pypi.org/simple".into(),
        };
        assert_eq!(
            ack.encode(),
            b"\x82\x63ACK\x82\x01\x77https://pypi.org/simple"
        );
    }

    #[test]
    fn directions_are_separate() {
        let e = SlaveRequest::decode(&SlaveReply::Done.encode()).unwrap_err();
        assert_eq!(e.kind(), DecodeErrorKind::UnknownMessage);
        let e = SlaveReply::decode(&SlaveRequest::Bye.encode()).unwrap_err();
        assert_eq!(e.kind(), DecodeErrorKind::UnknownMessage);
    }

    #[test]
    fn from_message_never_trusts_its_input() {
        for (name, data) in [
            ("HELLO", None),
            ("IDLE", Some(Value::Null)),
            ("BUILT", Some(Value::Array(vec![]))),
            ("SENT", Some(Value::Null)),
            ("NOPE", None),
        ] {
            let msg = Message {
                name: name.into(),
                data,
            };
            assert!(SlaveRequest::from_message(&msg).is_err());
        }
        for (name, data) in [
            (
                "ACK",
                Some(Value::Array(vec![Value::Int(-1), Value::text("u")])),
            ),
            ("SLEEP", Some(Value::Int(0))),
            ("SEND", None),
            ("DIE", Some(Value::Null)),
            ("HELLO", None),
        ] {
            let msg = Message {
                name: name.into(),
                data,
            };
            assert!(SlaveReply::from_message(&msg).is_err());
        }
    }
}
