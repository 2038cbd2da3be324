//! The status protocol (`monitor_stats`): the master (PUB, no topic frame)
//! tells monitors (SUB) about itself and its slaves. Tasks inside the master
//! push the same messages to the main thread, which republishes them.

use chrono::{DateTime, Utc};

use super::convert::{datetime, seq, text, uint};
use super::error::DecodeError;
use super::message::{WireMessage, convert_data};
use super::records::{
    MASTER_HELLO, MASTER_STATS, MasterHello, MasterStats, Record, SlaveHello, SlaveStats,
};
use super::schema::{Direction, Message, Protocol, Schema as S};
use super::slave::SlaveReply;
use super::value::Value;

/// piwheels' `monitor_stats` protocol.
pub static MONITOR_STATS: Protocol = Protocol {
    name: "monitor_stats",
    recv: &[],
    send: &[
        ("HELLO", MASTER_HELLO),
        ("STATS", MASTER_STATS),
        ("SLAVE", S::Seq(&[S::Int, S::DateTime, S::Str, S::Extra])),
    ],
};

/// `SLAVE [slave_id, timestamp, msg, data]`: something about one slave.
///
/// `msg`/`data` are a reply the master sent (with [`Value::NoData`] when the
/// reply had none), `"HELLO"` with the slave's hello, or `"STATS"` with its
/// stats. `data` is schema `Extra`, so it stays a generic [`Value`].
#[derive(Debug, Clone, PartialEq)]
pub struct SlaveStatus {
    /// The slave's id.
    pub slave_id: u64,
    /// When it happened (for a reply: when the request arrived).
    pub timestamp: DateTime<Utc>,
    /// A message name, e.g. `"BUILD"`, `"HELLO"`, `"STATS"`, `"DIE"`.
    pub msg: String,
    /// Its data, or `NoData`.
    pub data: Value,
}

impl SlaveStatus {
    /// The status for a reply the master sent to a slave.
    pub fn reply(slave_id: u64, timestamp: DateTime<Utc>, reply: &SlaveReply) -> Self {
        SlaveStatus {
            slave_id,
            timestamp,
            msg: reply.name().to_owned(),
            data: reply.data().unwrap_or(Value::NoData),
        }
    }

    /// The status replaying a slave's `HELLO`.
    pub fn hello(slave_id: u64, timestamp: DateTime<Utc>, hello: &SlaveHello) -> Self {
        SlaveStatus {
            slave_id,
            timestamp,
            msg: "HELLO".to_owned(),
            data: hello.to_value(),
        }
    }

    /// The status relaying a slave's `IDLE`/`BUSY` stats.
    pub fn stats(slave_id: u64, timestamp: DateTime<Utc>, stats: &SlaveStats) -> Self {
        SlaveStatus {
            slave_id,
            timestamp,
            msg: "STATS".to_owned(),
            data: stats.to_value(),
        }
    }
}

/// What the master publishes to monitors.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusMessage {
    /// `HELLO MasterHello`: sent first when a monitor says hello.
    Hello(MasterHello),
    /// `STATS MasterStats`: every 10 s, and replayed for a new monitor.
    Stats(MasterStats),
    /// `SLAVE [...]`.
    Slave(SlaveStatus),
}

impl WireMessage for StatusMessage {
    const DIRECTION: Direction = Direction::FromMaster;

    fn protocol() -> &'static Protocol {
        &MONITOR_STATS
    }

    fn name(&self) -> &'static str {
        match self {
            StatusMessage::Hello(_) => "HELLO",
            StatusMessage::Stats(_) => "STATS",
            StatusMessage::Slave(_) => "SLAVE",
        }
    }

    fn data(&self) -> Option<Value> {
        Some(match self {
            StatusMessage::Hello(h) => h.to_value(),
            StatusMessage::Stats(s) => s.to_value(),
            StatusMessage::Slave(s) => Value::Array(vec![
                s.slave_id.into(),
                s.timestamp.into(),
                (&s.msg).into(),
                s.data.clone(),
            ]),
        })
    }

    fn from_message(msg: &Message) -> Result<Self, DecodeError> {
        match msg.name.as_str() {
            "HELLO" => convert_data(msg, MasterHello::from_value).map(StatusMessage::Hello),
            "STATS" => convert_data(msg, MasterStats::from_value).map(StatusMessage::Stats),
            "SLAVE" => convert_data(msg, |v| {
                let a = seq(v, 4, "SLAVE")?;
                Ok(StatusMessage::Slave(SlaveStatus {
                    slave_id: uint(&a[0], "slave_id")?,
                    timestamp: datetime(&a[1], "timestamp")?,
                    msg: text(&a[2], "msg")?,
                    data: a[3].clone(),
                }))
            }),
            other => Err(DecodeError::unknown_message(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::records::samples::*;
    use crate::protocol::test_support::round_trip;

    #[test]
    fn every_message() {
        round_trip(&StatusMessage::Hello(master_hello()));
        round_trip(&StatusMessage::Stats(master_stats()));
        round_trip(&StatusMessage::Slave(SlaveStatus::hello(
            1,
            ts(),
            &slave_hello(),
        )));
        round_trip(&StatusMessage::Slave(SlaveStatus::stats(
            1,
            ts(),
            &slave_stats(),
        )));
        round_trip(&StatusMessage::Slave(SlaveStatus::reply(
            2,
            ts(),
            &SlaveReply::Sleep { paused: false },
        )));
        let done = SlaveStatus::reply(2, ts(), &SlaveReply::Done);
        assert_eq!(done.data, Value::NoData);
        round_trip(&StatusMessage::Slave(done));
        round_trip(&StatusMessage::Slave(SlaveStatus {
            slave_id: 3,
            timestamp: ts(),
            msg: "DIE".into(),
            data: Value::Null,
        }));
    }
}
