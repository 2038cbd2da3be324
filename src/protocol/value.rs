//! The data model that piwheels' CBOR dialect carries.
//!
//! [`Value`] mirrors what `cbor2.loads` (5.4.x, with piwheels' tag hook)
//! hands to piwheels: Python's `None`, `bool`, `int`, `float`, `str`,
//! `bytes`, `list`, `dict`, `datetime`, `timedelta`, the `NoData` sentinel,
//! `set`, and `CBORTag` for any tag nobody understood.
//!
//! Invariants kept by the decoder (and relied on by the encoder to give back
//! the bytes piwheels would write):
//! - a [`Value::Map`] has no two keys that Python would call equal (the last
//!   value wins, in the position of the first key, exactly like building a
//!   `dict`); the entries keep their wire order;
//! - a [`Value::Set`] has no duplicate elements and keeps wire order (Python's
//!   order would be its hash order, which is arbitrary anyway);
//! - [`Value::Int`] holds every integer that fits in an `i128`; a bignum
//!   (tag 2/3) too large for that stays a [`Value::Tag`] wrapping its
//!   magnitude bytes without leading zeros, and the schema layer still treats
//!   it as an `int`;
//! - a [`Value::DateTime`] is between years 1 and 9999 (Python's range) and
//!   carries whole microseconds.

use std::collections::hash_map::RandomState;
use std::fmt::{self, Write as _};
use std::hash::{BuildHasher, Hash, Hasher};

use chrono::{DateTime, FixedOffset, TimeZone, Utc};

/// Number of microseconds in a day.
const DAY_MICROS: i128 = 86_400_000_000;

/// A Python `datetime.timedelta`, in its normalised form.
///
/// piwheels sends durations as tag 2001 `[days, seconds, microseconds]`, the
/// three attributes of a Python timedelta, so we keep exactly that shape:
/// `0 <= seconds < 86400`, `0 <= microseconds < 1_000_000` and
/// `|days| <= 999_999_999` (Python's limit; a peer would crash on anything
/// larger, so we can never construct it). Negative durations have negative
/// `days`, e.g. −1 s is `[-1, 86399, 0]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TimeDelta {
    days: i32,
    seconds: u32,
    microseconds: u32,
}

impl TimeDelta {
    /// Python's `timedelta.max.days`.
    pub const MAX_DAYS: i32 = 999_999_999;
    /// The zero duration.
    pub const ZERO: TimeDelta = TimeDelta {
        days: 0,
        seconds: 0,
        microseconds: 0,
    };

    /// Builds a duration from possibly non-normalised parts, as Python's
    /// `timedelta(days, seconds, microseconds)` does; `None` if the result is
    /// outside Python's range.
    pub fn new(days: i64, seconds: i64, microseconds: i64) -> Option<Self> {
        let total = i128::from(days) * DAY_MICROS
            + i128::from(seconds) * 1_000_000
            + i128::from(microseconds);
        Self::from_micros(total)
    }

    /// Builds a duration from a signed number of microseconds; `None` if it
    /// is outside Python's range.
    pub fn from_micros(total: i128) -> Option<Self> {
        let days = total.div_euclid(DAY_MICROS);
        let rest = total.rem_euclid(DAY_MICROS);
        if days.abs() > i128::from(Self::MAX_DAYS) {
            return None;
        }
        Some(TimeDelta {
            days: days as i32,
            seconds: (rest / 1_000_000) as u32,
            microseconds: (rest % 1_000_000) as u32,
        })
    }

    /// A whole number of seconds (may be negative); `None` if out of range.
    pub fn from_secs(seconds: i64) -> Option<Self> {
        Self::new(0, seconds, 0)
    }

    /// Converts a `std::time::Duration`, truncating to microseconds.
    pub fn from_std(d: std::time::Duration) -> Option<Self> {
        Self::from_micros(d.as_micros() as i128)
    }

    /// Converts a chrono duration, truncating towards zero to microseconds.
    pub fn from_chrono(d: chrono::TimeDelta) -> Option<Self> {
        let micros = i128::from(d.num_seconds()) * 1_000_000 + i128::from(d.subsec_nanos() / 1_000);
        Self::from_micros(micros)
    }

    /// The `days` attribute (may be negative).
    pub fn days(&self) -> i32 {
        self.days
    }

    /// The `seconds` attribute, `0..86400`.
    pub fn seconds(&self) -> u32 {
        self.seconds
    }

    /// The `microseconds` attribute, `0..1_000_000`.
    pub fn microseconds(&self) -> u32 {
        self.microseconds
    }

    /// The whole duration in microseconds.
    pub fn total_micros(&self) -> i128 {
        i128::from(self.days) * DAY_MICROS
            + i128::from(self.seconds) * 1_000_000
            + i128::from(self.microseconds)
    }

    /// Is this duration negative?
    pub fn is_negative(&self) -> bool {
        self.days < 0
    }

    /// As a chrono duration (always representable: chrono's range is far
    /// wider than Python's).
    pub fn to_chrono(&self) -> chrono::TimeDelta {
        // Python's range in microseconds overflows i64, so go via seconds.
        let secs = i64::from(self.days) * 86_400 + i64::from(self.seconds);
        chrono::TimeDelta::new(secs, self.microseconds * 1_000).unwrap_or(chrono::TimeDelta::MAX)
    }

    /// As a `std::time::Duration`; `None` when negative.
    pub fn to_std(&self) -> Option<std::time::Duration> {
        let micros = u64::try_from(self.total_micros()).ok()?;
        Some(std::time::Duration::from_micros(micros))
    }
}

impl fmt::Display for TimeDelta {
    /// Python's `str(timedelta)`: `[-N day[s], ]H:MM:SS[.ffffff]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.days != 0 {
            let plural = if self.days.abs() == 1 { "" } else { "s" };
            write!(f, "{} day{}, ", self.days, plural)?;
        }
        let (h, m, s) = (
            self.seconds / 3600,
            self.seconds % 3600 / 60,
            self.seconds % 60,
        );
        write!(f, "{h}:{m:02}:{s:02}")?;
        if self.microseconds != 0 {
            write!(f, ".{:06}", self.microseconds)?;
        }
        Ok(())
    }
}

/// One decoded CBOR item, in piwheels' (Python's) terms.
///
/// Equality is structural, except that datetimes compare by instant (as in
/// Python and chrono) and NaN is unequal to itself. For Python's looser
/// key equality (`1 == 1.0 == True`) see [`Value::py_eq`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// CBOR `null` (Python `None`).
    Null,
    /// CBOR `undefined` (cbor2's `undefined` sentinel); no schema accepts it.
    Undefined,
    /// CBOR `true`/`false`.
    Bool(bool),
    /// An integer (major types 0/1, or a bignum that fits).
    Int(i128),
    /// A float of any width (half, single and double all decode to `f64`).
    Float(f64),
    /// A text string (major type 3), always valid UTF-8.
    Text(String),
    /// A byte string (major type 2).
    Bytes(Vec<u8>),
    /// An array (Python list).
    Array(Vec<Value>),
    /// A map (Python dict), in wire order, without duplicate keys.
    Map(Vec<(Value, Value)>),
    /// Tag 0 (RFC 3339 text) or tag 1 (epoch); the offset is kept so that a
    /// non-UTC datetime re-encodes as piwheels would (it never writes one).
    DateTime(DateTime<FixedOffset>),
    /// piwheels' tag 2001.
    TimeDelta(TimeDelta),
    /// piwheels' tag 2002, the `NoData` sentinel (whatever the tag wraps).
    NoData,
    /// Tag 258 (Python set), in wire order, without duplicates.
    Set(Vec<Value>),
    /// Any other tag, kept as cbor2 keeps a `CBORTag`; no schema accepts it
    /// except `Extra` (and the `int` rule for oversized bignums).
    Tag(u64, Box<Value>),
    /// A CBOR simple value other than false/true/null/undefined.
    Simple(u8),
}

impl Value {
    /// Shorthand for a text value.
    pub fn text(s: impl Into<String>) -> Value {
        Value::Text(s.into())
    }

    /// The text, if this is a text string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an int (not a bool).
    pub fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The elements, if this is an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The entries, if this is a map.
    pub fn as_map(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Looks up a text key in a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// Is this CBOR null?
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Builds a map from pairs, applying Python's dict rules to duplicate
    /// keys (the first key's position, the last value).
    pub fn map_from_pairs(pairs: impl IntoIterator<Item = (Value, Value)>) -> Value {
        let mut m = MapBuilder::default();
        for (k, v) in pairs {
            m.insert(k, v);
        }
        Value::Map(m.finish())
    }

    /// Python's `==` as used for dict keys and set members: numbers compare
    /// by value across int/float/bool, maps and sets ignore order, datetimes
    /// compare by instant, NaN is never equal.
    pub fn py_eq(&self, other: &Value) -> bool {
        use Value::*;
        if let (Some(a), Some(b)) = (self.number(), other.number()) {
            return a.eq(&b);
        }
        match (self, other) {
            (Null, Null) | (Undefined, Undefined) | (NoData, NoData) => true,
            (Text(a), Text(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (Array(a), Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.py_eq(y)),
            (Map(a), Map(b)) => {
                a.len() == b.len()
                    && (a
                        .iter()
                        .zip(b)
                        .all(|((ka, va), (kb, vb))| ka.py_eq(kb) && va.py_eq(vb))
                        || a.iter()
                            .all(|(ka, va)| b.iter().any(|(kb, vb)| ka.py_eq(kb) && va.py_eq(vb))))
            }
            (Set(a), Set(b)) => {
                a.len() == b.len()
                    && (a.iter().zip(b).all(|(x, y)| x.py_eq(y))
                        || a.iter().all(|x| b.iter().any(|y| x.py_eq(y))))
            }
            (DateTime(a), DateTime(b)) => a == b,
            (TimeDelta(a), TimeDelta(b)) => a == b,
            (Tag(ta, a), Tag(tb, b)) => ta == tb && a.py_eq(b),
            (Simple(a), Simple(b)) => a == b,
            _ => false,
        }
    }

    /// A hash consistent with [`Value::py_eq`].
    pub fn py_hash<H: Hasher>(&self, h: &mut H) {
        if let Some(n) = self.number() {
            0u8.hash(h);
            match n {
                Number::Int(i) => i.hash(h),
                Number::Float(f) => f.to_bits().hash(h),
            }
            return;
        }
        match self {
            Value::Null => 1u8.hash(h),
            Value::Undefined => 2u8.hash(h),
            Value::NoData => 3u8.hash(h),
            Value::Text(s) => {
                4u8.hash(h);
                s.hash(h);
            }
            Value::Bytes(b) => {
                5u8.hash(h);
                b.hash(h);
            }
            Value::Array(a) => {
                6u8.hash(h);
                a.len().hash(h);
                for v in a {
                    v.py_hash(h);
                }
            }
            Value::Map(m) => {
                7u8.hash(h);
                m.len().hash(h);
                // Order-insensitive: add up independent per-entry hashes.
                let mut sum = 0u64;
                for (k, v) in m {
                    let mut eh = FixedHasher::default();
                    k.py_hash(&mut eh);
                    v.py_hash(&mut eh);
                    sum = sum.wrapping_add(eh.finish());
                }
                sum.hash(h);
            }
            Value::Set(s) => {
                8u8.hash(h);
                s.len().hash(h);
                let mut sum = 0u64;
                for v in s {
                    let mut eh = FixedHasher::default();
                    v.py_hash(&mut eh);
                    sum = sum.wrapping_add(eh.finish());
                }
                sum.hash(h);
            }
            Value::DateTime(dt) => {
                9u8.hash(h);
                dt.timestamp().hash(h);
                dt.timestamp_subsec_micros().hash(h);
            }
            Value::TimeDelta(td) => {
                10u8.hash(h);
                td.hash(h);
            }
            Value::Tag(t, v) => {
                11u8.hash(h);
                t.hash(h);
                v.py_hash(h);
            }
            Value::Simple(s) => {
                12u8.hash(h);
                s.hash(h);
            }
            Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
        }
    }

    /// The numeric view Python uses for `==` between int, float and bool.
    fn number(&self) -> Option<Number> {
        match self {
            Value::Bool(b) => Some(Number::Int(i128::from(*b))),
            Value::Int(i) => Some(Number::Int(*i)),
            Value::Float(f) => {
                // Integral floats in range hash and compare as the int.
                if f.is_finite() && f.fract() == 0.0 && f.abs() < 1.0e38 {
                    Some(Number::Int(*f as i128))
                } else {
                    Some(Number::Float(*f))
                }
            }
            _ => None,
        }
    }

    /// The diagnostic text, cut to about `limit` characters (with `...`).
    ///
    /// Error messages quote the offending data; this keeps a 10 MB payload
    /// from turning into a 10 MB log line.
    pub fn diag_truncated(&self, limit: usize) -> String {
        let mut out = LimitedWriter {
            buf: String::new(),
            limit,
            cut: false,
        };
        // An Err here only means the limit was hit.
        let _ = write!(out, "{self}");
        if out.cut {
            out.buf.push_str("...");
        }
        out.buf
    }
}

#[derive(PartialEq)]
enum Number {
    Int(i128),
    Float(f64),
}

/// A deterministic hasher for the order-insensitive sub-hashes; the outer
/// table (see [`MapBuilder`]) is randomly keyed, so this needs no secrecy.
#[derive(Default)]
struct FixedHasher(std::collections::hash_map::DefaultHasher);

impl Hasher for FixedHasher {
    fn finish(&self) -> u64 {
        self.0.finish()
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes)
    }
}

struct LimitedWriter {
    buf: String,
    limit: usize,
    cut: bool,
}

impl fmt::Write for LimitedWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.buf.len() + s.len() <= self.limit {
            self.buf.push_str(s);
            return Ok(());
        }
        for c in s.chars() {
            if self.buf.len() + c.len_utf8() > self.limit {
                break;
            }
            self.buf.push(c);
        }
        self.cut = true;
        Err(fmt::Error)
    }
}

/// Builds a map or set with Python's duplicate rules in linear time.
///
/// Small maps (the usual case) are searched linearly; past
/// [`MapBuilder::LINEAR_LIMIT`] entries keys are indexed by a randomly keyed
/// hash of [`Value::py_hash`], with collisions chained through the entry
/// list, so a hostile map cannot force quadratic work.
#[derive(Default)]
pub(crate) struct MapBuilder {
    entries: Vec<(Value, Value)>,
    /// hash → index of the latest entry with that hash (once indexed).
    heads: std::collections::HashMap<u64, usize>,
    /// For each entry, the previous entry with the same hash.
    chain: Vec<Option<usize>>,
    state: Option<RandomState>,
}

impl MapBuilder {
    const LINEAR_LIMIT: usize = 16;

    pub(crate) fn with_capacity(n: usize) -> Self {
        MapBuilder {
            entries: Vec::with_capacity(n),
            ..Default::default()
        }
    }

    fn key_hash(state: &RandomState, k: &Value) -> u64 {
        let mut h = state.build_hasher();
        k.py_hash(&mut h);
        h.finish()
    }

    fn link(&mut self, i: usize, hash: u64) {
        let prev = self.heads.insert(hash, i);
        self.chain.push(prev);
    }

    /// Inserts or replaces; returns `true` if the key was new.
    pub(crate) fn insert(&mut self, k: Value, v: Value) -> bool {
        let Some(state) = &self.state else {
            if let Some(e) = self.entries.iter_mut().find(|(ek, _)| ek.py_eq(&k)) {
                e.1 = v;
                return false;
            }
            self.entries.push((k, v));
            if self.entries.len() > Self::LINEAR_LIMIT {
                let state = RandomState::new();
                let hashes: Vec<u64> = self
                    .entries
                    .iter()
                    .map(|(k, _)| Self::key_hash(&state, k))
                    .collect();
                for (i, h) in hashes.into_iter().enumerate() {
                    self.link(i, h);
                }
                self.state = Some(state);
            }
            return true;
        };
        let hash = Self::key_hash(state, &k);
        let mut at = self.heads.get(&hash).copied();
        while let Some(i) = at {
            if self.entries[i].0.py_eq(&k) {
                self.entries[i].1 = v;
                return false;
            }
            at = self.chain[i];
        }
        self.link(self.entries.len(), hash);
        self.entries.push((k, v));
        true
    }

    pub(crate) fn finish(self) -> Vec<(Value, Value)> {
        self.entries
    }
}

/// Builds a set (first occurrence kept, wire order).
pub(crate) fn dedup_set(items: Vec<Value>) -> Vec<Value> {
    let mut m = MapBuilder::with_capacity(items.len());
    for v in items {
        m.insert(v, Value::Null);
    }
    m.finish().into_iter().map(|(k, _)| k).collect()
}

fn write_text(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 || c == '\u{7f}' => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

fn write_float(f: &mut fmt::Formatter<'_>, x: f64) -> fmt::Result {
    if x.is_nan() {
        f.write_str("NaN")
    } else if x.is_infinite() {
        f.write_str(if x > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        write!(f, "{x:?}")
    }
}

fn write_seq<'a>(
    f: &mut fmt::Formatter<'_>,
    open: &str,
    items: impl Iterator<Item = &'a Value>,
    close: &str,
) -> fmt::Result {
    f.write_str(open)?;
    for (i, v) in items.enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{v}")?;
    }
    f.write_str(close)
}

impl fmt::Display for Value {
    /// RFC 8949 diagnostic notation (without encoding indicators), which is
    /// what error texts quote: `invalid data for IDLE: [0("…"), 1, …]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Undefined => f.write_str("undefined"),
            Value::Bool(b) => f.write_str(if *b { "true" } else { "false" }),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write_float(f, *x),
            Value::Text(s) => write_text(f, s),
            Value::Bytes(b) => {
                f.write_str("h'")?;
                for byte in b {
                    write!(f, "{byte:02x}")?;
                }
                f.write_char('\'')
            }
            Value::Array(a) => write_seq(f, "[", a.iter(), "]"),
            Value::Map(m) => {
                f.write_char('{')?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_char('}')
            }
            Value::DateTime(dt) => {
                f.write_str("0(")?;
                write_text(f, &crate::protocol::time::format_datetime(dt))?;
                f.write_char(')')
            }
            Value::TimeDelta(td) => write!(
                f,
                "2001([{}, {}, {}])",
                td.days, td.seconds, td.microseconds
            ),
            Value::NoData => f.write_str("2002(null)"),
            Value::Set(s) => write_seq(f, "258([", s.iter(), "])"),
            Value::Tag(t, v) => write!(f, "{t}({v})"),
            Value::Simple(s) => write!(f, "simple({s})"),
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<u64> for Value {
    fn from(i: u64) -> Self {
        Value::Int(i128::from(i))
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i128::from(i))
    }
}

impl From<u32> for Value {
    fn from(i: u32) -> Self {
        Value::Int(i128::from(i))
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Self {
        Value::Float(x)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Value::Text(s.clone())
    }
}

impl From<TimeDelta> for Value {
    fn from(td: TimeDelta) -> Self {
        Value::TimeDelta(td)
    }
}

impl From<DateTime<Utc>> for Value {
    fn from(dt: DateTime<Utc>) -> Self {
        Value::DateTime(dt.fixed_offset())
    }
}

impl From<DateTime<FixedOffset>> for Value {
    fn from(dt: DateTime<FixedOffset>) -> Self {
        Value::DateTime(dt)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None` becomes CBOR null (Python `None`).
    fn from(o: Option<T>) -> Self {
        o.map_or(Value::Null, Into::into)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::Array(v.into_iter().map(Into::into).collect())
    }
}

/// The text piwheels writes inside tag 0 for `dt`: Python's `isoformat()`
/// with `+00:00` as `Z` and the fraction only when microseconds are
/// non-zero, e.g. `2024-03-01T12:00:05.123456Z`.
pub fn format_datetime(dt: &DateTime<FixedOffset>) -> String {
    crate::protocol::time::format_datetime(dt)
}

/// A UTC datetime at whole seconds plus microseconds; handy in tests and for
/// callers building records by hand.
pub fn utc_datetime(
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    micro: u32,
) -> Option<DateTime<Utc>> {
    let dt = Utc
        .with_ymd_and_hms(year, month, day, hour, min, sec)
        .single()?;
    dt.checked_add_signed(chrono::TimeDelta::microseconds(i64::from(micro)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timedelta_normalises_like_python() {
        let td = TimeDelta::new(0, -1, 0).unwrap();
        assert_eq!((td.days(), td.seconds(), td.microseconds()), (-1, 86399, 0));
        let td = TimeDelta::new(0, 90000, 0).unwrap();
        assert_eq!((td.days(), td.seconds(), td.microseconds()), (1, 3600, 0));
        let td = TimeDelta::new(0, 0, -1).unwrap();
        assert_eq!(
            (td.days(), td.seconds(), td.microseconds()),
            (-1, 86399, 999_999)
        );
        assert!(TimeDelta::new(999_999_999, 86399, 999_999).is_some());
        assert!(TimeDelta::new(1_000_000_000, 0, 0).is_none());
        assert!(TimeDelta::new(-999_999_999, 0, 0).is_some());
        assert!(TimeDelta::new(-1_000_000_000, 0, 0).is_none());
        assert!(TimeDelta::new(-999_999_999, -1, 0).is_none());
    }

    #[test]
    fn timedelta_conversions() {
        let td = TimeDelta::from_secs(10800).unwrap();
        assert_eq!(td.to_std(), Some(std::time::Duration::from_secs(10800)));
        assert_eq!(td.to_chrono(), chrono::TimeDelta::seconds(10800));
        assert_eq!(TimeDelta::from_chrono(td.to_chrono()), Some(td));
        let neg = TimeDelta::from_secs(-1).unwrap();
        assert!(neg.is_negative());
        assert_eq!(neg.to_std(), None);
        let max = TimeDelta::new(999_999_999, 86399, 999_999).unwrap();
        assert_eq!(TimeDelta::from_chrono(max.to_chrono()), Some(max));
        let min = TimeDelta::new(-999_999_999, 0, 0).unwrap();
        assert_eq!(TimeDelta::from_chrono(min.to_chrono()), Some(min));
        assert_eq!(min.to_chrono().num_days(), -999_999_999);
        assert_eq!(TimeDelta::from_chrono(neg.to_chrono()), Some(neg));
        assert_eq!(
            TimeDelta::from_std(std::time::Duration::from_micros(1_500_000)),
            TimeDelta::new(0, 1, 500_000)
        );
        assert_eq!(td.to_string(), "3:00:00");
        assert_eq!(neg.to_string(), "-1 day, 23:59:59");
        assert_eq!(
            TimeDelta::new(2, 1, 5).unwrap().to_string(),
            "2 days, 0:00:01.000005"
        );
    }

    #[test]
    fn py_eq_follows_python() {
        assert!(Value::Int(1).py_eq(&Value::Bool(true)));
        assert!(Value::Int(1).py_eq(&Value::Float(1.0)));
        assert!(!Value::Int(1).py_eq(&Value::Float(1.5)));
        assert!(!Value::Float(f64::NAN).py_eq(&Value::Float(f64::NAN)));
        assert!(!Value::text("1").py_eq(&Value::Int(1)));
        assert!(!Value::text("a").py_eq(&Value::Bytes(b"a".to_vec())));
        let a = Value::Map(vec![
            (Value::text("a"), Value::Int(1)),
            (Value::text("b"), Value::Int(2)),
        ]);
        let b = Value::Map(vec![
            (Value::text("b"), Value::Int(2)),
            (Value::text("a"), Value::Int(1)),
        ]);
        assert!(a.py_eq(&b));
        let mut ha = FixedHasher::default();
        let mut hb = FixedHasher::default();
        a.py_hash(&mut ha);
        b.py_hash(&mut hb);
        assert_eq!(ha.finish(), hb.finish());
    }

    #[test]
    fn map_from_pairs_keeps_first_key_last_value() {
        let m = Value::map_from_pairs(vec![
            (Value::Int(1), Value::text("a")),
            (Value::text("x"), Value::Null),
            (Value::Float(1.0), Value::text("b")),
            (Value::Bool(true), Value::text("c")),
        ]);
        assert_eq!(
            m,
            Value::Map(vec![
                (Value::Int(1), Value::text("c")),
                (Value::text("x"), Value::Null),
            ])
        );
    }

    #[test]
    fn map_builder_dedups_past_the_linear_limit() {
        let pairs = (0..100).map(|i| (Value::Int(i), Value::Int(0))).chain(
            (0..100)
                .rev()
                .map(|i| (Value::Float(i as f64), Value::Int(i))),
        );
        let m = Value::map_from_pairs(pairs);
        let entries = m.as_map().unwrap();
        assert_eq!(entries.len(), 100);
        for (i, (k, v)) in entries.iter().enumerate() {
            assert_eq!(k, &Value::Int(i as i128));
            assert_eq!(v, &Value::Int(i as i128));
        }
        let set = dedup_set((0..50).chain(0..50).map(Value::Int).collect());
        assert_eq!(set.len(), 50);
    }

    #[test]
    fn map_builder_is_linear() {
        // 200k distinct keys must not take quadratic time.
        let start = std::time::Instant::now();
        let m = Value::map_from_pairs((0..200_000).map(|i| (Value::Int(i), Value::Null)));
        assert_eq!(m.as_map().map(<[_]>::len), Some(200_000));
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn display_is_diagnostic_notation() {
        let v = Value::Array(vec![
            Value::text("a\"b\n"),
            Value::Int(-5),
            Value::Float(1.5),
            Value::Float(f64::NAN),
            Value::Float(f64::NEG_INFINITY),
            Value::Bytes(vec![0, 0xff]),
            Value::Map(vec![(Value::text("k"), Value::Null)]),
            Value::TimeDelta(TimeDelta::new(0, 5, 0).unwrap()),
            Value::NoData,
            Value::Set(vec![Value::Bool(true)]),
            Value::Tag(37, Box::new(Value::Undefined)),
            Value::Simple(99),
            Value::from(utc_datetime(2020, 1, 2, 3, 4, 5, 0).unwrap()),
        ]);
        assert_eq!(
            v.to_string(),
            "[\"a\\\"b\\n\", -5, 1.5, NaN, -Infinity, h'00ff', {\"k\": null}, \
             2001([0, 5, 0]), 2002(null), 258([true]), 37(undefined), simple(99), \
             0(\"2020-01-02T03:04:05Z\")]"
        );
    }

    #[test]
    fn diag_truncated_cuts_long_values() {
        let v = Value::text("x".repeat(10_000));
        let d = v.diag_truncated(100);
        assert!(d.len() <= 103);
        assert!(d.ends_with("..."));
        assert_eq!(Value::Int(5).diag_truncated(100), "5");
        // Never splits a UTF-8 character.
        let d = Value::text("é".repeat(100)).diag_truncated(10);
        assert!(d.ends_with("..."));
    }

    #[test]
    fn accessors() {
        let m = Value::Map(vec![(Value::text("apt"), Value::Array(vec![]))]);
        assert_eq!(m.get("apt"), Some(&Value::Array(vec![])));
        assert_eq!(m.get("pip"), None);
        assert_eq!(Value::from(None::<String>), Value::Null);
        assert_eq!(Value::from(Some("x")), Value::text("x"));
        assert_eq!(
            Value::from(vec!["a", "b"]).as_array().map(<[_]>::len),
            Some(2)
        );
        assert!(Value::Null.is_null());
        assert_eq!(Value::Int(3).as_int(), Some(3));
        assert_eq!(Value::Bool(true).as_int(), None);
    }
}
