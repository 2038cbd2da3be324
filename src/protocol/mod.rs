//! The piwheels wire protocol, byte for byte compatible with piwheels 0.23
//! peers: CBOR encoding and the message sets of the sockets. Sans-IO: nothing here touches a socket.
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
//!   [`log`] (`lumberjack`).
//!
//! Invariants:
//! - Decoding never panics, on any input, at any layer; every failure is a
//!   [`DecodeError`] whose [`kind`](DecodeError::kind) is one of piwheels'
//!   six receive errors and whose `Display` is piwheels' text.
//! - Decoding is linear in the input, allocates in proportion to the input
//!   (never to a declared length) and limits nesting to [`cbor::MAX_DEPTH`].
//! - Where piwheels crashes on hostile input (unhashable names, bad tag
//!   contents, deep nesting, invalid UTF-8) we return an ordinary error.

pub mod cbor;
pub mod control;
pub mod convert;
pub mod error;
pub mod import;
pub mod log;
pub mod message;
pub mod records;
pub mod schema;
pub mod slave;
pub mod status;
mod time;
pub mod value;

pub use control::ControlMessage;
pub use convert::FieldError;
pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use import::{ImportReply, ImportRequest, RebuildPart};
pub use log::LogMessage;
pub use message::WireMessage;
pub use records::{
    BuildState, ClientInfo, DownloadState, FileState, MasterHello, MasterStats, PageHit, Record,
    SearchState, SlaveHello, SlaveStats,
};
pub use schema::{Direction, Message, Protocol, Schema};
pub use slave::{BuildResult, SlaveReply, SlaveRequest};
pub use status::{SlaveStatus, StatusMessage};
pub use value::{TimeDelta, Value};

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
