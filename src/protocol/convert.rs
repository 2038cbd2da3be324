//! Checked conversions from [`Value`] to Rust types, for the typed layer.
//!
//! These never panic and never assume the schema already ran: every shape
//! and range is checked again, so the typed `from_message`/`from_value`
//! functions are safe on any value. They follow the schema rules (a bool is
//! accepted where an int is expected, an int is not a float) and add the Rust
//! type's range on top.

use std::fmt;

use chrono::{DateTime, Utc};

use super::value::{TimeDelta, Value};

/// A value that does not fit the typed record: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    field: &'static str,
    reason: &'static str,
}

impl FieldError {
    pub(crate) fn new(field: &'static str, reason: &'static str) -> Self {
        FieldError { field, reason }
    }

    /// The field (or record) that did not fit.
    pub fn field(&self) -> &'static str {
        self.field
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for FieldError {}

pub(crate) type Conv<T> = Result<T, FieldError>;

/// An array of exactly `n` elements.
pub(crate) fn seq<'a>(v: &'a Value, n: usize, field: &'static str) -> Conv<&'a [Value]> {
    match v {
        Value::Array(a) if a.len() == n => Ok(a),
        Value::Array(_) => Err(FieldError::new(field, "wrong number of elements")),
        _ => Err(FieldError::new(field, "expected an array")),
    }
}

pub(crate) fn text(v: &Value, field: &'static str) -> Conv<String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or(FieldError::new(field, "expected a text string"))
}

pub(crate) fn opt_text(v: &Value, field: &'static str) -> Conv<Option<String>> {
    match v {
        Value::Null => Ok(None),
        Value::Text(s) => Ok(Some(s.clone())),
        _ => Err(FieldError::new(field, "expected a text string or null")),
    }
}

/// A non-negative integer that fits `u64`.
///
/// A bool is accepted as 0/1 because piwheels' validator accepts it
/// (`isinstance(True, int)` in Python); once typed it is a number, so we
/// re-encode it as an int, not as a bool.
pub(crate) fn uint(v: &Value, field: &'static str) -> Conv<u64> {
    match v {
        Value::Int(i) => {
            u64::try_from(*i).map_err(|_| FieldError::new(field, "integer out of range 0..2**64"))
        }
        Value::Bool(b) => Ok(u64::from(*b)),
        Value::Tag(2 | 3, _) => Err(FieldError::new(field, "integer out of range 0..2**64")),
        _ => Err(FieldError::new(field, "expected an integer")),
    }
}

/// `int` or null, as in `Any(int, None)`.
pub(crate) fn opt_uint(v: &Value, field: &'static str) -> Conv<Option<u64>> {
    match v {
        Value::Null => Ok(None),
        other => uint(other, field).map(Some),
    }
}

pub(crate) fn float(v: &Value, field: &'static str) -> Conv<f64> {
    match v {
        Value::Float(f) => Ok(*f),
        _ => Err(FieldError::new(field, "expected a float")),
    }
}

pub(crate) fn boolean(v: &Value, field: &'static str) -> Conv<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        _ => Err(FieldError::new(field, "expected a bool")),
    }
}

/// A datetime, converted to UTC (an offset on the wire is not kept).
pub(crate) fn datetime(v: &Value, field: &'static str) -> Conv<DateTime<Utc>> {
    match v {
        Value::DateTime(dt) => Ok(dt.with_timezone(&Utc)),
        _ => Err(FieldError::new(field, "expected a datetime")),
    }
}

pub(crate) fn timedelta(v: &Value, field: &'static str) -> Conv<TimeDelta> {
    match v {
        Value::TimeDelta(td) => Ok(*td),
        _ => Err(FieldError::new(field, "expected a timedelta")),
    }
}

/// `[T]`.
pub(crate) fn list<T>(
    v: &Value,
    field: &'static str,
    f: impl Fn(&Value) -> Conv<T>,
) -> Conv<Vec<T>> {
    match v {
        Value::Array(a) => a.iter().map(f).collect(),
        _ => Err(FieldError::new(field, "expected an array")),
    }
}

pub(crate) fn text_list(v: &Value, field: &'static str) -> Conv<Vec<String>> {
    list(v, field, |x| text(x, field))
}

/// `{str: T}`, in wire order.
pub(crate) fn text_map<T>(
    v: &Value,
    field: &'static str,
    f: impl Fn(&Value) -> Conv<T>,
) -> Conv<Vec<(String, T)>> {
    match v {
        Value::Map(m) => m
            .iter()
            .map(|(k, x)| Ok((text(k, field)?, f(x)?)))
            .collect(),
        _ => Err(FieldError::new(field, "expected a map")),
    }
}

/// Builds a `{str: T}` map value from ordered pairs.
pub(crate) fn map_value<T>(pairs: &[(String, T)], f: impl Fn(&T) -> Value) -> Value {
    Value::Map(
        pairs
            .iter()
            .map(|(k, v)| (Value::text(k.as_str()), f(v)))
            .collect(),
    )
}

/// Builds a list of text values.
pub(crate) fn text_list_value(items: &[String]) -> Value {
    Value::Array(items.iter().map(Value::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint_ranges() {
        assert_eq!(uint(&Value::Int(0), "x"), Ok(0));
        assert_eq!(uint(&Value::Int(i128::from(u64::MAX)), "x"), Ok(u64::MAX));
        assert!(uint(&Value::Int(i128::from(u64::MAX) + 1), "x").is_err());
        assert!(uint(&Value::Int(-1), "x").is_err());
        assert_eq!(uint(&Value::Bool(true), "x"), Ok(1));
        assert!(uint(&Value::Float(1.0), "x").is_err());
        assert!(uint(&Value::Tag(2, Box::new(Value::Bytes(vec![1; 20]))), "x").is_err());
        assert_eq!(opt_uint(&Value::Null, "x"), Ok(None));
        assert_eq!(opt_uint(&Value::Int(3), "x"), Ok(Some(3)));
    }

    #[test]
    fn shapes() {
        let a = Value::Array(vec![Value::Int(1)]);
        assert!(seq(&a, 1, "x").is_ok());
        assert!(seq(&a, 2, "x").is_err());
        assert!(seq(&Value::Null, 1, "x").is_err());
        assert!(float(&Value::Int(1), "x").is_err());
        assert!(boolean(&Value::Int(1), "x").is_err());
        assert!(text(&Value::Bytes(vec![]), "x").is_err());
        assert_eq!(opt_text(&Value::Null, "x"), Ok(None));
        assert!(opt_text(&Value::Undefined, "x").is_err());
        assert!(datetime(&Value::text("2024-01-01T00:00:00Z"), "x").is_err());
        assert!(timedelta(&Value::Int(0), "x").is_err());
        assert!(text_list(&Value::Array(vec![Value::Int(1)]), "x").is_err());
        assert!(
            text_map(
                &Value::Map(vec![(Value::Int(1), Value::Int(1))]),
                "x",
                |v| uint(v, "x")
            )
            .is_err()
        );
        let e = FieldError::new("disk_size", "bad");
        assert_eq!(e.to_string(), "disk_size: bad");
        assert_eq!(e.field(), "disk_size");
    }
}
