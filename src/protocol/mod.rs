//! The piwheels wire protocol, byte for byte compatible with piwheels 0.23
//! peers: CBOR encoding, the message sets of every socket, ROUTER envelopes
//! and the raw file-transfer frames. Sans-IO: nothing here touches a socket.
//!
//! Layers, bottom up:
//! - [`value`] and [`cbor`]: the data model and a hand-written codec for
//!   piwheels' cbor2 dialect (tags 0/1 datetimes, 2001 timedeltas, 2002
//!   NoData, 258 sets; float64 everywhere; shortest int heads).
//! - [`schema`]: voluptuous-style schemas and the [`Protocol`] tables;
//!   [`Protocol::decode`]/[`Protocol::encode`] validate any message of any
//!   protocol generically.
//! - [`records`]: the compound records (SlaveHello, SlaveStats, FileState,
//!   BuildState, MasterStats, …) as schemas and typed structs.
//! - Typed message enums for the external protocols, all implementing
//!   [`WireMessage`]: [`slave`] (`slave_driver`), [`import`] (`mr_chase`),
//!   [`control`] (`master_control`), [`status`] (`monitor_stats`) and
//!   [`log`] (`lumberjack`). [`internal`] has the tables of the rest.
//! - [`router`] (REQ envelopes on ROUTER sockets) and
//!   [`file`](mod@file) (the file queue's raw frames).
//!
//! Invariants:
//! - Decoding never panics, on any input, at any layer; every failure is a
//!   [`DecodeError`] whose [`kind`](DecodeError::kind) is one of piwheels'
//!   six receive errors and whose `Display` is piwheels' text.
//! - Decoding is linear in the input, allocates in proportion to the input
//!   (never to a declared length) and limits nesting to [`cbor::MAX_DEPTH`].
//! - Every message piwheels 0.23 can send decodes, and re-encoding it gives
//!   piwheels' bytes exactly (tests/wire_vectors.rs checks all of them).
//! - Where piwheels crashes on hostile input (unhashable names, bad tag
//!   contents, deep nesting, invalid UTF-8, missing file-transfer frames)
//!   we return an ordinary error; the mapping is documented in
//!   tests/wire_vectors.rs.

pub mod cbor;
pub mod control;
pub mod convert;
pub mod error;
pub mod file;
pub mod import;
pub mod internal;
pub mod log;
pub mod message;
pub mod records;
pub mod router;
pub mod schema;
pub mod slave;
pub mod status;
mod time;
pub mod value;

pub use control::ControlMessage;
pub use convert::FieldError;
pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use file::{FileFrameError, MasterFrame, PeerFrame};
pub use import::{ImportReply, ImportRequest, RebuildPart};
pub use log::LogMessage;
pub use message::WireMessage;
pub use records::{
    BuildState, ClientInfo, DownloadState, FileState, MasterHello, MasterStats, PageHit, Record,
    SearchState, SlaveHello, SlaveStats,
};
pub use router::{RouterRequest, parse_router_frames, router_frames};
pub use schema::{Direction, Message, Protocol, Schema};
pub use slave::{BuildResult, SlaveReply, SlaveRequest};
pub use status::{SlaveStatus, StatusMessage};
pub use value::{TimeDelta, Value};

/// Every CBOR protocol of piwheels 0.23, external and internal.
pub static PROTOCOLS: &[&Protocol] = &[
    &slave::SLAVE_DRIVER,
    &import::MR_CHASE,
    &control::MASTER_CONTROL,
    &status::MONITOR_STATS,
    &log::LUMBERJACK,
    &internal::TASK_CONTROL,
    &internal::SLAVE_DRIVER_CONTROL,
    &internal::BIG_BROTHER_CONTROL,
    &internal::BIG_BROTHER,
    &internal::THE_SCRIBE,
    &internal::THE_ARCHITECT,
    &internal::CLOUD_GAZER,
    &internal::FILE_JUGGLER_FILES,
    &internal::FILE_JUGGLER_FS,
    &internal::THE_ORACLE,
    &internal::SENSE_STICK,
];

/// Looks a protocol up by piwheels' name for it (e.g. `"slave_driver"`).
pub fn protocol(name: &str) -> Option<&'static Protocol> {
    PROTOCOLS.iter().copied().find(|p| p.name == name)
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// Checks a typed message against its protocol: the generic encoder
    /// accepts it and gives the same bytes, and both decoders give it back.
    pub fn round_trip<M: WireMessage + PartialEq + std::fmt::Debug>(m: &M) {
        let bytes = m.encode();
        let generic = M::protocol()
            .encode(M::DIRECTION, m.name(), m.data().as_ref())
            .unwrap_or_else(|e| panic!("{m:?} fails its schema: {e}"));
        assert_eq!(bytes, generic, "{m:?}");
        assert_eq!(&M::decode(&bytes).unwrap(), m);
        let msg = M::protocol().decode(M::DIRECTION, &bytes).unwrap();
        assert_eq!(msg, m.to_message());
        // The other direction of the same protocol never accepts it, unless
        // the name exists there too.
        let other = M::protocol().decode(M::DIRECTION.reversed(), &bytes);
        if M::protocol()
            .schema(M::DIRECTION.reversed(), m.name())
            .is_none()
        {
            assert_eq!(other.unwrap_err().kind(), DecodeErrorKind::UnknownMessage);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry() {
        assert_eq!(PROTOCOLS.len(), 16);
        for p in PROTOCOLS {
            assert_eq!(protocol(p.name).map(|q| q.name), Some(p.name));
            // No duplicate names within a direction.
            for dir in [Direction::ToMaster, Direction::FromMaster] {
                let names: Vec<_> = p.messages(dir).iter().map(|(n, _)| *n).collect();
                let mut sorted = names.clone();
                sorted.sort_unstable();
                sorted.dedup();
                assert_eq!(sorted.len(), names.len(), "{}", p.name);
            }
        }
        assert!(protocol("nope").is_none());
    }
}
