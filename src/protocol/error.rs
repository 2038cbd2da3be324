//! Errors of the message layer, with piwheels' own texts.
//!
//! [`DecodeError`] has exactly the cases piwheels' `recv_msg` raises, and its
//! `Display` is piwheels' text, so logs read the same on both masters. The
//! only difference is the tail of "invalid data for X: …", which quotes the
//! data in CBOR diagnostic notation instead of Python `repr`.

use std::fmt;

use super::value::Value;

/// How much of the offending data an error message quotes.
pub(crate) const DIAG_LIMIT: usize = 1000;

/// Which of piwheels' receive errors happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeErrorKind {
    /// "unable to deserialize data": not a CBOR item we can decode.
    NotCbor,
    /// "unknown message: X": the name is not in the protocol (or is not
    /// text at all).
    UnknownMessage,
    /// "missing data for: X": a bare name for a message that carries data.
    MissingData,
    /// "data not expected for: X": `[name, data]` for a message without data.
    DataNotExpected,
    /// "invalid message structure received": neither a text name nor a
    /// two-element `[name, data]`, or a ROUTER envelope without exactly three
    /// frames.
    InvalidStructure,
    /// "invalid data for X: …": the data failed the schema, or does not fit
    /// the Rust type (a negative size, an id above `u64::MAX`, …).
    InvalidData,
}

/// A rejected message. `Display` gives piwheels' error text; [`detail`]
/// says more (the CBOR error or the field that did not fit) for logs.
///
/// [`detail`]: DecodeError::detail
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    kind: DecodeErrorKind,
    /// The message name as piwheels would print it (for a non-text name,
    /// its diagnostic notation).
    name: String,
    /// The offending data in diagnostic notation (InvalidData only).
    data: String,
    detail: Option<String>,
}

impl DecodeError {
    fn new(kind: DecodeErrorKind, name: String) -> Self {
        DecodeError {
            kind,
            name,
            data: String::new(),
            detail: None,
        }
    }

    pub(crate) fn not_cbor(detail: impl fmt::Display) -> Self {
        let mut e = Self::new(DecodeErrorKind::NotCbor, String::new());
        e.detail = Some(detail.to_string());
        e
    }

    pub(crate) fn invalid_structure(detail: impl Into<String>) -> Self {
        let mut e = Self::new(DecodeErrorKind::InvalidStructure, String::new());
        e.detail = Some(detail.into());
        e
    }

    pub(crate) fn unknown_message(name: impl Into<String>) -> Self {
        Self::new(DecodeErrorKind::UnknownMessage, name.into())
    }

    pub(crate) fn missing_data(name: &str) -> Self {
        Self::new(DecodeErrorKind::MissingData, name.to_owned())
    }

    pub(crate) fn data_not_expected(name: &str) -> Self {
        Self::new(DecodeErrorKind::DataNotExpected, name.to_owned())
    }

    pub(crate) fn invalid_data(name: &str, data: &Value, detail: Option<String>) -> Self {
        DecodeError {
            kind: DecodeErrorKind::InvalidData,
            name: name.to_owned(),
            data: data.diag_truncated(DIAG_LIMIT),
            detail,
        }
    }

    /// Which error this is.
    pub fn kind(&self) -> DecodeErrorKind {
        self.kind
    }

    /// The message name the error is about (empty for NotCbor and
    /// InvalidStructure).
    pub fn message_name(&self) -> &str {
        &self.name
    }

    /// Extra explanation beyond piwheels' text, if any.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            DecodeErrorKind::NotCbor => f.write_str("unable to deserialize data"),
            DecodeErrorKind::UnknownMessage => write!(f, "unknown message: {}", self.name),
            DecodeErrorKind::MissingData => write!(f, "missing data for: {}", self.name),
            DecodeErrorKind::DataNotExpected => write!(f, "data not expected for: {}", self.name),
            DecodeErrorKind::InvalidStructure => f.write_str("invalid message structure received"),
            DecodeErrorKind::InvalidData => {
                write!(f, "invalid data for {}: {}", self.name, self.data)
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a generic message could not be sent; the texts are those of
/// piwheels' `dump_msg`. Typed messages cannot fail to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// "unknown message: X"
    UnknownMessage(String),
    /// "data must be specified for X"
    DataRequired(String),
    /// "no data expected for X"
    NoDataExpected(String),
    /// "invalid data for X: …"
    InvalidData {
        /// The message name.
        name: String,
        /// The data, in diagnostic notation.
        data: String,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::UnknownMessage(n) => write!(f, "unknown message: {n}"),
            EncodeError::DataRequired(n) => write!(f, "data must be specified for {n}"),
            EncodeError::NoDataExpected(n) => write!(f, "no data expected for {n}"),
            EncodeError::InvalidData { name, data } => write!(f, "invalid data for {name}: {data}"),
        }
    }
}

impl std::error::Error for EncodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_match_piwheels() {
        assert_eq!(
            DecodeError::not_cbor("x").to_string(),
            "unable to deserialize data"
        );
        assert_eq!(DecodeError::not_cbor("x").detail(), Some("x"));
        assert_eq!(
            DecodeError::unknown_message("FOO").to_string(),
            "unknown message: FOO"
        );
        assert_eq!(
            DecodeError::missing_data("IDLE").to_string(),
            "missing data for: IDLE"
        );
        assert_eq!(
            DecodeError::data_not_expected("BYE").to_string(),
            "data not expected for: BYE"
        );
        assert_eq!(
            DecodeError::invalid_structure("x").to_string(),
            "invalid message structure received"
        );
        let e = DecodeError::invalid_data("KILL", &Value::text("1"), None);
        assert_eq!(e.to_string(), "invalid data for KILL: \"1\"");
        assert_eq!(e.kind(), DecodeErrorKind::InvalidData);
        assert_eq!(e.message_name(), "KILL");
        assert_eq!(
            EncodeError::DataRequired("IDLE".into()).to_string(),
            "data must be specified for IDLE"
        );
        assert_eq!(
            EncodeError::NoDataExpected("BYE".into()).to_string(),
            "no data expected for BYE"
        );
        assert_eq!(
            EncodeError::UnknownMessage("X".into()).to_string(),
            "unknown message: X"
        );
        assert_eq!(
            EncodeError::InvalidData {
                name: "SLEEP".into(),
                data: "0".into()
            }
            .to_string(),
            "invalid data for SLEEP: 0"
        );
    }
}
