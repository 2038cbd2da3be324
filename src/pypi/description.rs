//! Project descriptions from PyPI's JSON API, the 0.23 way: `info.summary`
//! of `<pypi-json>/<package>/json`, a null summary meaning "", longer than
//! 200 characters cut to 199 plus '…'.
//!
//! The document is read as a stream and only `info.summary` is kept: the
//! JSON of a big project lists every file of every release and runs to
//! megabytes, none of which the master needs.

use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

/// The longest description stored (the column is VARCHAR(200)).
pub const MAX_DESCRIPTION_CHARS: usize = 200;

/// 0.23's rule for a summary: None → "", over 200 characters → the first
/// 199 and '…'.
pub fn cut_summary(summary: Option<String>) -> String {
    let Some(s) = summary else {
        return String::new();
    };
    match s.char_indices().nth(MAX_DESCRIPTION_CHARS) {
        None => s,
        Some(_) => {
            let end = s
                .char_indices()
                .nth(MAX_DESCRIPTION_CHARS - 1)
                .map_or(s.len(), |(i, _)| i);
            let mut out = s[..end].to_owned();
            out.push('…');
            out
        }
    }
}

/// Why a JSON document gave no description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SummaryError {
    /// `info` or `info.summary` is missing (0.23 logs this as an error).
    Missing(&'static str),
    /// Not JSON, or the summary is not a string or null.
    Invalid(String),
}

impl fmt::Display for SummaryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SummaryError::Missing(what) => write!(f, "'{what}' missing"),
            SummaryError::Invalid(why) => write!(f, "invalid project JSON: {why}"),
        }
    }
}

/// Reads `info.summary` out of a project's JSON and applies
/// [`cut_summary`].
pub fn read_summary(reader: impl Read) -> Result<String, SummaryError> {
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(reader));
    let found = Document
        .deserialize(&mut de)
        .map_err(|e| SummaryError::Invalid(e.to_string()))?;
    de.end().map_err(|e| SummaryError::Invalid(e.to_string()))?;
    match found {
        None => Err(SummaryError::Missing("info")),
        Some(None) => Err(SummaryError::Missing("summary")),
        // Control characters (NUL above all) have no place in a one-line
        // summary and PostgreSQL refuses NUL: replaced before cutting.
        Some(Some(summary)) => Ok(cut_summary(
            summary.map(|s| crate::db::sanitize(&s).into_owned()),
        )),
    }
}

/// The top level: `None` when there is no `info`; `Some(None)` when `info`
/// has no `summary`; `Some(Some(None))` for a null summary.
struct Document;

impl<'de> DeserializeSeed<'de> for Document {
    type Value = Option<Option<Option<String>>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Document {
    type Value = Option<Option<Option<String>>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut info = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "info" && info.is_none() {
                info = Some(map.next_value_seed(Info)?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(info)
    }
}

/// `info`: `None` when there is no `summary`.
struct Info;

impl<'de> DeserializeSeed<'de> for Info {
    type Value = Option<Option<String>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Info {
    type Value = Option<Option<String>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object for info")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut summary = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "summary" && summary.is_none() {
                summary = Some(map.next_value::<Option<String>>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(summary)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_follows_0_23() {
        assert_eq!(cut_summary(None), "");
        assert_eq!(cut_summary(Some("short".into())), "short");
        let exact = "é".repeat(200);
        assert_eq!(cut_summary(Some(exact.clone())), exact);
        let long = "é".repeat(201);
        let cut = cut_summary(Some(long));
        assert_eq!(cut.chars().count(), 200);
        assert!(cut.ends_with('…'));
        assert_eq!(cut.chars().filter(|&c| c == 'é').count(), 199);
    }

    #[test]
    fn reads_only_the_summary() {
        let doc = r#"{"releases": {"1.0": [{"filename": "x"}]},
                      "info": {"name": "Foo", "summary": "A \"foo\" \u00e9", "version": "1.0"},
                      "urls": []}"#;
        assert_eq!(read_summary(doc.as_bytes()).unwrap(), "A \"foo\" é");
        let doc = r#"{"info": {"summary": null}}"#;
        assert_eq!(read_summary(doc.as_bytes()).unwrap(), "");
        let doc = r#"{"info": {"summary": "a\u0000b\u0007c"}}"#;
        assert_eq!(read_summary(doc.as_bytes()).unwrap(), "a\u{fffd}b\u{fffd}c");
    }

    #[test]
    fn missing_and_invalid() {
        assert_eq!(read_summary(&b"{}"[..]), Err(SummaryError::Missing("info")));
        assert_eq!(
            read_summary(&br#"{"info": {"name": "x"}}"#[..]),
            Err(SummaryError::Missing("summary"))
        );
        assert_eq!(
            read_summary(&br#"{"info": null}"#[..]),
            Err(SummaryError::Missing("summary"))
        );
        for bad in [
            &b"<html>"[..],
            b"{\"info\": {\"summary\": 3}}",
            b"{\"info\": ",
            b"[1]",
            b"{} x",
        ] {
            assert!(
                matches!(read_summary(bad), Err(SummaryError::Invalid(_))),
                "{bad:?}"
            );
        }
    }
}
