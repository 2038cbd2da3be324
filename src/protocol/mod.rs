//! The piwheels wire protocol, byte for byte compatible with piwheels 0.23
//! peers. Sans-IO: nothing here touches a socket.
//!
//! Layers, bottom up:
//! - [`value`] and [`cbor`]: the data model and a hand-written codec for
//!   piwheels' cbor2 dialect (tags 0/1 datetimes, 2001 timedeltas, 2002
//!   NoData, 258 sets; float64 everywhere; shortest int heads).
//!
//! Invariants:
//! - Decoding never panics, on any input.
//! - Decoding is linear in the input, allocates in proportion to the input
//!   (never to a declared length) and limits nesting to [`cbor::MAX_DEPTH`].

pub mod cbor;
mod time;
pub mod value;

pub use value::{TimeDelta, Value};
