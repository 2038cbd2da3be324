//! The piwheels wire protocol: CBOR encoding and the message sets of every
//! socket. (Filled in by the protocol work.)
