//! A hand-written CBOR codec for exactly the dialect piwheels speaks
//! (cbor2 5.4 plus piwheels' `default`/`tag_hook` in `transport.py`).
//!
//! Decoding ([`decode`]) guarantees:
//! - it never panics and never trusts a length: a head may declare 2^64
//!   items, but nothing is allocated beyond what the remaining input could
//!   possibly hold (every item takes at least one byte);
//! - nesting (arrays, maps and tags) is limited to [`MAX_DEPTH`], so hostile
//!   input cannot exhaust the stack;
//! - time is linear in the input (maps deduplicate through a hash index);
//! - only the first item is read; trailing bytes are ignored, as
//!   `cbor2.loads` ignores them;
//! - indefinite-length strings, arrays and maps are accepted (string chunks
//!   are concatenated; each text chunk must be valid UTF-8 on its own);
//! - tags 28 (shareable) and 55799 (self-describe) are dropped, tags 0/1
//!   become datetimes, 2/3 integers, 258 sets, 2001 timedeltas and 2002
//!   NoData; any other tag is kept as [`Value::Tag`];
//! - malformed tag contents (a bad datetime, a 2001 that is not three
//!   numbers, a timedelta or epoch out of Python's range, NaN, …) are
//!   decoding errors. piwheels lets several of these escape as uncaught
//!   Python exceptions that kill the master; here they are ordinary errors.
//!
//! Encoding ([`encode`]) writes what cbor2 writes for the same Python value:
//! shortest heads, definite lengths, float64 for every float except
//! NaN/±infinity (float16, as cbor2 does), tag 0 text datetimes, bignum tags
//! beyond 64 bits, and maps in their stored order.

use std::fmt;

use super::time;
use super::value::{MapBuilder, Value, dedup_set};

/// Deepest nesting of arrays, maps and tags the decoder accepts. piwheels'
/// deepest real message (the PROJDATA reply) nests about eight levels.
pub const MAX_DEPTH: usize = 64;

/// Most items (of any kind, nested ones included) one payload may hold. A
/// decoded item costs tens of bytes while its encoding can be one byte, so
/// without a cap a 64 MiB frame of tiny items would cost gigabytes. No
/// message a piwheels peer sends on an external socket comes near this
/// (a `BUILT` is a few hundred items; its build log is one).
pub const MAX_ITEMS: usize = 100_000;

/// Why some bytes are not a CBOR item piwheels could have sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CborError {
    /// Byte offset where the problem was found.
    pub offset: usize,
    /// What was wrong.
    pub kind: CborErrorKind,
}

/// The kinds of [`CborError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CborErrorKind {
    /// The input ended inside an item (this includes empty input and heads
    /// declaring more content than the input holds).
    Truncated,
    /// Not well-formed CBOR (reserved additional information, a misplaced
    /// break, a bad indefinite-length chunk, …).
    Malformed(&'static str),
    /// A text string that is not UTF-8.
    InvalidUtf8,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// More than [`MAX_ITEMS`] items.
    TooManyItems,
    /// A tag piwheels understands, with content it cannot turn into a value.
    BadTagContent(u64, &'static str),
    /// The input starts with a lone break byte (0xff). cbor2 returns its
    /// break marker object for this rather than raising, so the message
    /// layer reports it as a structure error, not as undecodable data.
    LoneBreak,
}

impl fmt::Display for CborError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            CborErrorKind::Truncated => write!(f, "truncated input at byte {}", self.offset),
            CborErrorKind::Malformed(why) => write!(f, "{why} at byte {}", self.offset),
            CborErrorKind::InvalidUtf8 => write!(f, "invalid UTF-8 at byte {}", self.offset),
            CborErrorKind::TooDeep => {
                write!(f, "nested deeper than {MAX_DEPTH} at byte {}", self.offset)
            }
            CborErrorKind::BadTagContent(tag, why) => {
                write!(f, "tag {tag}: {why} at byte {}", self.offset)
            }
            CborErrorKind::TooManyItems => {
                write!(f, "more than {MAX_ITEMS} items at byte {}", self.offset)
            }
            CborErrorKind::LoneBreak => f.write_str("lone break byte"),
        }
    }
}

impl std::error::Error for CborError {}

/// Decodes the first CBOR item in `buf` (trailing bytes are ignored).
pub fn decode(buf: &[u8]) -> Result<Value> {
    if buf.first() == Some(&0xff) {
        return Err(CborError {
            offset: 0,
            kind: CborErrorKind::LoneBreak,
        });
    }
    Decoder {
        buf,
        pos: 0,
        items: 0,
    }
    .item(0)
}

enum Len {
    Definite(u64),
    Indefinite,
}

struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Items decoded so far, against [`MAX_ITEMS`].
    items: usize,
}

type Result<T> = std::result::Result<T, CborError>;

impl<'a> Decoder<'a> {
    fn err<T>(&self, at: usize, kind: CborErrorKind) -> Result<T> {
        Err(CborError { offset: at, kind })
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        if n > self.remaining() as u64 {
            return self.err(self.pos, CborErrorKind::Truncated);
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.buf[start..self.pos])
    }

    fn uint(&mut self, n: u64) -> Result<u64> {
        let bytes = self.take(n)?;
        Ok(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// Reads an initial byte and its argument: (major type, additional
    /// information, length/value).
    fn head(&mut self) -> Result<(u8, u8, Len)> {
        let at = self.pos;
        let ib = self.take(1)?[0];
        let (major, ai) = (ib >> 5, ib & 0x1f);
        let len = match ai {
            0..=23 => Len::Definite(u64::from(ai)),
            24 => Len::Definite(self.uint(1)?),
            25 => Len::Definite(self.uint(2)?),
            26 => Len::Definite(self.uint(4)?),
            27 => Len::Definite(self.uint(8)?),
            31 => Len::Indefinite,
            _ => {
                return self.err(
                    at,
                    CborErrorKind::Malformed("reserved additional information"),
                );
            }
        };
        Ok((major, ai, len))
    }

    fn item(&mut self, depth: usize) -> Result<Value> {
        let at = self.pos;
        match self.item_or_break(depth)? {
            Some(v) => Ok(v),
            None => self.err(at, CborErrorKind::Malformed("unexpected break")),
        }
    }

    /// One item, or `None` for a break byte (only meaningful inside an
    /// indefinite-length container).
    fn item_or_break(&mut self, depth: usize) -> Result<Option<Value>> {
        let at = self.pos;
        if depth > MAX_DEPTH {
            return self.err(at, CborErrorKind::TooDeep);
        }
        self.items += 1;
        if self.items > MAX_ITEMS {
            return self.err(at, CborErrorKind::TooManyItems);
        }
        let (major, ai, len) = self.head()?;
        let value = match major {
            0 => Value::Int(i128::from(self.definite(len, at)?)),
            1 => Value::Int(-1 - i128::from(self.definite(len, at)?)),
            2 => Value::Bytes(self.bytes(len)?),
            3 => Value::Text(self.text(len)?),
            4 => self.array(len, depth)?,
            5 => self.map(len, depth)?,
            6 => {
                let tag = self.definite(len, at)?;
                self.tag(tag, at, depth)?
            }
            // Major 7: additional information 31 is the break byte.
            _ => match len {
                Len::Indefinite => return Ok(None),
                Len::Definite(n) => Self::simple(ai, n),
            },
        };
        Ok(Some(value))
    }

    /// Integers and tags have no indefinite-length form.
    fn definite(&self, len: Len, at: usize) -> Result<u64> {
        match len {
            Len::Definite(n) => Ok(n),
            Len::Indefinite => self.err(
                at,
                CborErrorKind::Malformed("indefinite length not allowed"),
            ),
        }
    }

    fn simple(ai: u8, n: u64) -> Value {
        match ai {
            20 => Value::Bool(false),
            21 => Value::Bool(true),
            22 => Value::Null,
            23 => Value::Undefined,
            25 => Value::Float(f16_to_f64(n as u16)),
            26 => Value::Float(f64::from(f32::from_bits(n as u32))),
            27 => Value::Float(f64::from_bits(n)),
            // 0..=19 directly, or 24 with a following byte (cbor2 keeps any
            // byte value as a CBORSimpleValue).
            _ => Value::Simple(n as u8),
        }
    }

    /// The chunks of a byte or text string, concatenated.
    fn chunks(
        &mut self,
        major: u8,
        len: Len,
        mut sink: impl FnMut(&'a [u8], usize) -> Result<()>,
    ) -> Result<()> {
        match len {
            Len::Definite(n) => {
                let at = self.pos;
                let chunk = self.take(n)?;
                sink(chunk, at)
            }
            Len::Indefinite => loop {
                let at = self.pos;
                if self.buf.get(self.pos) == Some(&0xff) {
                    self.pos += 1;
                    return Ok(());
                }
                match self.head()? {
                    (m, _, Len::Definite(n)) if m == major => {
                        let start = self.pos;
                        let chunk = self.take(n)?;
                        sink(chunk, start)?;
                    }
                    _ => {
                        return self.err(
                            at,
                            CborErrorKind::Malformed("bad chunk in indefinite-length string"),
                        );
                    }
                }
            },
        }
    }

    fn bytes(&mut self, len: Len) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.chunks(2, len, |chunk, _| {
            out.extend_from_slice(chunk);
            Ok(())
        })?;
        Ok(out)
    }

    fn text(&mut self, len: Len) -> Result<String> {
        let mut out = String::new();
        self.chunks(3, len, |chunk, at| match std::str::from_utf8(chunk) {
            Ok(s) => {
                out.push_str(s);
                Ok(())
            }
            Err(e) => Err(CborError {
                offset: at + e.valid_up_to(),
                kind: CborErrorKind::InvalidUtf8,
            }),
        })?;
        Ok(out)
    }

    fn array(&mut self, len: Len, depth: usize) -> Result<Value> {
        let mut items = Vec::new();
        match len {
            Len::Definite(n) => {
                // Each item needs at least one byte: a larger count cannot be
                // satisfied, so fail before allocating anything for it.
                if n > self.remaining() as u64 {
                    return self.err(self.pos, CborErrorKind::Truncated);
                }
                items.reserve_exact(n as usize);
                for _ in 0..n {
                    items.push(self.item(depth + 1)?);
                }
            }
            Len::Indefinite => {
                while let Some(v) = self.item_or_break(depth + 1)? {
                    items.push(v);
                }
            }
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, len: Len, depth: usize) -> Result<Value> {
        let mut map;
        match len {
            Len::Definite(n) => {
                if n > (self.remaining() / 2) as u64 {
                    return self.err(self.pos, CborErrorKind::Truncated);
                }
                map = MapBuilder::with_capacity(n as usize);
                for _ in 0..n {
                    let k = self.item(depth + 1)?;
                    let v = self.item(depth + 1)?;
                    map.insert(k, v);
                }
            }
            Len::Indefinite => {
                map = MapBuilder::default();
                while let Some(k) = self.item_or_break(depth + 1)? {
                    let v = self.item(depth + 1)?;
                    map.insert(k, v);
                }
            }
        }
        Ok(Value::Map(map.finish()))
    }

    fn tag(&mut self, tag: u64, at: usize, depth: usize) -> Result<Value> {
        let inner = self.item(depth + 1)?;
        let bad = |why| CborError {
            offset: at,
            kind: CborErrorKind::BadTagContent(tag, why),
        };
        Ok(match (tag, inner) {
            (0, Value::Text(s)) => Value::DateTime(time::parse_datetime(&s).map_err(bad)?),
            (0, _) => return Err(bad("datetime must be a text string")),
            (1, Value::Int(i)) => Value::DateTime(time::datetime_from_epoch_int(i).map_err(bad)?),
            (1, Value::Bool(b)) => {
                Value::DateTime(time::datetime_from_epoch_int(i128::from(b)).map_err(bad)?)
            }
            (1, Value::Float(f)) => {
                Value::DateTime(time::datetime_from_epoch_float(f).map_err(bad)?)
            }
            (1, _) => return Err(bad("epoch must be a number")),
            (2 | 3, Value::Bytes(b)) => bignum(tag, b),
            (2 | 3, _) => return Err(bad("bignum must be a byte string")),
            (28 | 55799, v) => v,
            (258, Value::Array(items)) => Value::Set(dedup_set(items)),
            (258, _) => return Err(bad("set must be an array")),
            (2001, Value::Array(parts)) => {
                Value::TimeDelta(time::timedelta_from_parts(&parts).map_err(bad)?)
            }
            (2001, _) => return Err(bad("timedelta must be an array")),
            (2002, _) => Value::NoData,
            (t, v) => Value::Tag(t, Box::new(v)),
        })
    }
}

/// Tag 2/3: an integer if it fits `i128`, else the tag kept with its
/// magnitude stripped of leading zeros (cbor2 would write it that way).
fn bignum(tag: u64, bytes: Vec<u8>) -> Value {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let mag = &bytes[first..];
    if mag.len() <= 16 {
        let n = mag.iter().fold(0u128, |acc, &b| (acc << 8) | u128::from(b));
        if let Ok(n) = i128::try_from(n) {
            return Value::Int(if tag == 2 { n } else { -1 - n });
        }
    }
    Value::Tag(tag, Box::new(Value::Bytes(mag.to_vec())))
}

fn f16_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        _ => (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    }
}

/// Encodes one value as cbor2 (with piwheels' `default` hook) would.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(v, &mut out);
    out
}

fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= 0xff {
        out.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= 0xffff {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_int(out: &mut Vec<u8>, i: i128) {
    if let Ok(n) = u64::try_from(i) {
        head(out, 0, n);
    } else if let Ok(n) = u64::try_from(-1 - i) {
        head(out, 1, n);
    } else {
        let (tag, mag) = if i >= 0 {
            (2, i as u128)
        } else {
            (3, (-1 - i) as u128)
        };
        let bytes = mag.to_be_bytes();
        let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        head(out, 6, tag);
        head(out, 2, (16 - first) as u64);
        out.extend_from_slice(&bytes[first..]);
    }
}

/// Appends the encoding of `v` to `out`.
pub fn encode_into(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.push(0xf6),
        Value::Undefined => out.push(0xf7),
        Value::Bool(false) => out.push(0xf4),
        Value::Bool(true) => out.push(0xf5),
        Value::Int(i) => encode_int(out, *i),
        Value::Float(x) => {
            if x.is_nan() {
                out.extend_from_slice(&[0xf9, 0x7e, 0x00]);
            } else if x.is_infinite() {
                out.extend_from_slice(if *x > 0.0 {
                    &[0xf9, 0x7c, 0x00]
                } else {
                    &[0xf9, 0xfc, 0x00]
                });
            } else {
                out.push(0xfb);
                out.extend_from_slice(&x.to_bits().to_be_bytes());
            }
        }
        Value::Text(s) => {
            head(out, 3, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            head(out, 2, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Array(items) => {
            head(out, 4, items.len() as u64);
            for item in items {
                encode_into(item, out);
            }
        }
        Value::Map(entries) => {
            head(out, 5, entries.len() as u64);
            for (k, v) in entries {
                encode_into(k, out);
                encode_into(v, out);
            }
        }
        Value::DateTime(dt) => {
            head(out, 6, 0);
            let s = time::format_datetime(dt);
            head(out, 3, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Value::TimeDelta(td) => {
            head(out, 6, 2001);
            head(out, 4, 3);
            encode_int(out, i128::from(td.days()));
            encode_int(out, i128::from(td.seconds()));
            encode_int(out, i128::from(td.microseconds()));
        }
        Value::NoData => {
            head(out, 6, 2002);
            out.push(0xf6);
        }
        Value::Set(items) => {
            head(out, 6, 258);
            head(out, 4, items.len() as u64);
            for item in items {
                encode_into(item, out);
            }
        }
        Value::Tag(t, inner) => {
            head(out, 6, *t);
            encode_into(inner, out);
        }
        Value::Simple(n) => {
            if *n < 20 {
                out.push(0xe0 | n);
            } else {
                out.extend_from_slice(&[0xf8, *n]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::value::{TimeDelta, utc_datetime};

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn to_hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn rt(h: &str) -> String {
        to_hex(&encode(&decode(&hex(h)).unwrap()))
    }

    fn kind(h: &str) -> CborErrorKind {
        decode(&hex(h)).unwrap_err().kind
    }

    #[test]
    fn ints_use_shortest_heads() {
        for (i, h) in [
            (0i128, "00"),
            (23, "17"),
            (24, "1818"),
            (255, "18ff"),
            (256, "190100"),
            (65535, "19ffff"),
            (65536, "1a00010000"),
            (4294967295, "1affffffff"),
            (4294967296, "1b0000000100000000"),
            (18446744073709551615, "1bffffffffffffffff"),
            (18446744073709551616, "c249010000000000000000"),
            (-1, "20"),
            (-24, "37"),
            (-25, "3818"),
            (-18446744073709551616, "3bffffffffffffffff"),
            (-18446744073709551617, "c349010000000000000000"),
        ] {
            assert_eq!(to_hex(&encode(&Value::Int(i))), h, "{i}");
            assert_eq!(decode(&hex(h)).unwrap(), Value::Int(i), "{h}");
        }
        assert_eq!(
            decode(&hex("1b0000000080000000")).unwrap(),
            Value::Int(0x8000_0000)
        );
        assert_eq!(rt("1b0000000080000000"), "1a80000000");
        assert_eq!(
            to_hex(&encode(&Value::Int(i128::MAX))),
            format!("c250{}", "7f".to_owned() + &"ff".repeat(15))
        );
        assert_eq!(
            decode(&encode(&Value::Int(i128::MIN))).unwrap(),
            Value::Int(i128::MIN)
        );
    }

    #[test]
    fn bignums() {
        assert_eq!(decode(&hex("c240")).unwrap(), Value::Int(0));
        assert_eq!(decode(&hex("c3420001")).unwrap(), Value::Int(-2));
        // Too big for i128: kept as the tag, leading zeros stripped.
        let big = format!("c25200{}", "01".repeat(17));
        let v = decode(&hex(&big)).unwrap();
        assert_eq!(v, Value::Tag(2, Box::new(Value::Bytes(vec![1; 17]))));
        assert_eq!(to_hex(&encode(&v)), format!("c251{}", "01".repeat(17)));
        assert!(matches!(kind("c201"), CborErrorKind::BadTagContent(2, _)));
    }

    #[test]
    fn floats_are_float64_except_nan_and_inf() {
        assert_eq!(to_hex(&encode(&Value::Float(1.25))), "fb3ff4000000000000");
        assert_eq!(to_hex(&encode(&Value::Float(0.0))), "fb0000000000000000");
        assert_eq!(to_hex(&encode(&Value::Float(-0.0))), "fb8000000000000000");
        assert_eq!(to_hex(&encode(&Value::Float(f64::NAN))), "f97e00");
        assert_eq!(to_hex(&encode(&Value::Float(-f64::NAN))), "f97e00");
        assert_eq!(to_hex(&encode(&Value::Float(f64::INFINITY))), "f97c00");
        assert_eq!(to_hex(&encode(&Value::Float(f64::NEG_INFINITY))), "f9fc00");
        assert_eq!(decode(&hex("f93e00")).unwrap(), Value::Float(1.5));
        assert_eq!(decode(&hex("fa42360000")).unwrap(), Value::Float(45.5));
        assert_eq!(
            decode(&hex("f90001")).unwrap(),
            Value::Float(2f64.powi(-24))
        );
        assert_eq!(
            decode(&hex("f9fc00")).unwrap(),
            Value::Float(f64::NEG_INFINITY)
        );
        assert!(matches!(decode(&hex("f97e00")).unwrap(), Value::Float(x) if x.is_nan()));
        assert_eq!(decode(&hex("f9c000")).unwrap(), Value::Float(-2.0));
    }

    #[test]
    fn simple_values() {
        assert_eq!(decode(&hex("f4")).unwrap(), Value::Bool(false));
        assert_eq!(decode(&hex("f5")).unwrap(), Value::Bool(true));
        assert_eq!(decode(&hex("f6")).unwrap(), Value::Null);
        assert_eq!(decode(&hex("f7")).unwrap(), Value::Undefined);
        assert_eq!(decode(&hex("e5")).unwrap(), Value::Simple(5));
        assert_eq!(decode(&hex("f8ff")).unwrap(), Value::Simple(255));
        assert_eq!(rt("e5"), "e5");
        assert_eq!(rt("f8ff"), "f8ff");
        assert_eq!(rt("f814"), "f814");
        assert_eq!(rt("f7"), "f7");
    }

    #[test]
    fn strings() {
        assert_eq!(decode(&hex("63425945")).unwrap(), Value::text("BYE"));
        assert_eq!(decode(&hex("7f6242596145ff")).unwrap(), Value::text("BYE"));
        assert_eq!(
            decode(&hex("5f4101420203ff")).unwrap(),
            Value::Bytes(vec![1, 2, 3])
        );
        assert_eq!(decode(&hex("7fff")).unwrap(), Value::text(""));
        // A byte chunk inside a text string, or a nested indefinite chunk.
        assert!(matches!(kind("7f4142ff"), CborErrorKind::Malformed(_)));
        assert!(matches!(kind("7f7fffff"), CborErrorKind::Malformed(_)));
        // Each chunk must be valid UTF-8 on its own.
        assert_eq!(kind("7f61c361a9ff"), CborErrorKind::InvalidUtf8);
        assert_eq!(kind("63c3a9"), CborErrorKind::Truncated);
        assert_eq!(decode(&hex("63c3a9")).unwrap_err().offset, 1);
        assert_eq!(decode(&hex("62c3a9")).unwrap(), Value::text("é"));
        assert_eq!(kind("61ff"), CborErrorKind::InvalidUtf8);
        assert_eq!(kind("7b7fffffffffffffff425945"), CborErrorKind::Truncated);
        assert_eq!(kind("5b7fffffffffffffff425945"), CborErrorKind::Truncated);
        assert_eq!(to_hex(&encode(&Value::text("é"))), "62c3a9");
        assert_eq!(
            to_hex(&encode(&Value::Bytes(vec![0; 24]))),
            format!("5818{}", "00".repeat(24))
        );
    }

    #[test]
    fn containers() {
        assert_eq!(
            decode(&hex("9f0102ff")).unwrap(),
            Value::Array(vec![Value::Int(1), Value::Int(2)])
        );
        assert_eq!(rt("9f0102ff"), "820102");
        assert_eq!(rt("bf616101616202ff"), "a2616101616202");
        assert_eq!(kind("9b7fffffffffffffff63425945"), CborErrorKind::Truncated);
        assert_eq!(kind("bb7fffffffffffffff63425945"), CborErrorKind::Truncated);
        assert_eq!(kind("9f01"), CborErrorKind::Truncated);
        // Break where a map value belongs.
        assert!(matches!(kind("bf01ff"), CborErrorKind::Malformed(_)));
        // Break inside a definite array.
        assert!(matches!(kind("82ff01"), CborErrorKind::Malformed(_)));
        // Duplicate keys: last value wins in the first key's place.
        assert_eq!(rt("a3616101616202616103"), "a2616103616202");
        assert_eq!(rt("a2016161f56162"), "a1016162");
        // Map keys may be anything, even containers.
        assert_eq!(rt("a1820102f6"), "a1820102f6");
        let mut long = vec![0x98, 0xff];
        long.extend(std::iter::repeat_n(0u8, 255));
        assert_eq!(encode(&decode(&long).unwrap()), long);
    }

    #[test]
    fn top_level_quirks() {
        assert_eq!(kind(""), CborErrorKind::Truncated);
        assert_eq!(kind("ff"), CborErrorKind::LoneBreak);
        assert_eq!(kind("ff00"), CborErrorKind::LoneBreak);
        assert!(matches!(kind("1c"), CborErrorKind::Malformed(_)));
        assert!(matches!(kind("fc"), CborErrorKind::Malformed(_)));
        assert!(matches!(kind("1f"), CborErrorKind::Malformed(_)));
        assert!(matches!(kind("df00"), CborErrorKind::Malformed(_)));
        // Trailing bytes are ignored.
        assert_eq!(decode(&hex("6342594500ff")).unwrap(), Value::text("BYE"));
    }

    #[test]
    fn depth_is_limited() {
        let mut deep = vec![0x81; MAX_DEPTH];
        deep.push(0x00);
        assert!(decode(&deep).is_ok());
        let mut deeper = vec![0x81; MAX_DEPTH + 1];
        deeper.push(0x00);
        assert_eq!(decode(&deeper).unwrap_err().kind, CborErrorKind::TooDeep);
        let mut tags = vec![];
        for _ in 0..1000 {
            tags.extend_from_slice(&[0xd9, 0xd9, 0xf7]);
        }
        tags.push(0);
        assert_eq!(decode(&tags).unwrap_err().kind, CborErrorKind::TooDeep);
        let maps: Vec<u8> = std::iter::repeat_n([0xa1, 0x00], 100)
            .flatten()
            .chain([0])
            .collect();
        assert_eq!(decode(&maps).unwrap_err().kind, CborErrorKind::TooDeep);
        let indef = vec![0x9f; 10_000];
        assert_eq!(decode(&indef).unwrap_err().kind, CborErrorKind::TooDeep);
    }

    #[test]
    fn tags() {
        let dt = decode(&hex("c074323032302d30312d30325430333a30343a30355a")).unwrap();
        assert_eq!(
            dt,
            Value::from(utc_datetime(2020, 1, 2, 3, 4, 5, 0).unwrap())
        );
        assert_eq!(
            rt("c074323032302d30312d30325430333a30343a30355a"),
            "c074323032302d30312d30325430333a30343a30355a"
        );
        assert_eq!(
            rt("c11a65e1c340"),
            "c074323032342d30332d30315431323a30303a30305a"
        );
        assert_eq!(
            decode(&hex("c1f5")).unwrap(),
            Value::from(utc_datetime(1970, 1, 1, 0, 0, 1, 0).unwrap())
        );
        assert!(matches!(
            kind("c01a65e1c340"),
            CborErrorKind::BadTagContent(0, _)
        ));
        assert!(matches!(kind("c16131"), CborErrorKind::BadTagContent(1, _)));
        assert!(matches!(
            kind("c1fb4415af1d78b58c40"),
            CborErrorKind::BadTagContent(1, _)
        ));
        assert!(matches!(
            kind("c1f97e00"),
            CborErrorKind::BadTagContent(1, _)
        ));
        // Timedeltas.
        assert_eq!(
            to_hex(&encode(&Value::TimeDelta(
                TimeDelta::from_secs(10800).unwrap()
            ))),
            "d907d18300192a3000"
        );
        assert_eq!(
            to_hex(&encode(&Value::TimeDelta(
                TimeDelta::from_secs(-1).unwrap()
            ))),
            "d907d183201a0001517f00"
        );
        assert_eq!(rt("d907d183001a00015f9000"), "d907d18301190e1000");
        assert!(matches!(
            kind("d907d18200192a30"),
            CborErrorKind::BadTagContent(2001, _)
        ));
        assert!(matches!(
            kind("d907d1192a30"),
            CborErrorKind::BadTagContent(2001, _)
        ));
        assert!(matches!(
            kind("d907d1836130192a3000"),
            CborErrorKind::BadTagContent(2001, _)
        ));
        assert!(matches!(
            kind("d907d1831a3b9aca000000"),
            CborErrorKind::BadTagContent(2001, _)
        ));
        // NoData, whatever it wraps.
        assert_eq!(decode(&hex("d907d2f6")).unwrap(), Value::NoData);
        assert_eq!(decode(&hex("d907d200")).unwrap(), Value::NoData);
        assert_eq!(rt("d907d2820102"), "d907d2f6");
        // Sets deduplicate, keep order.
        assert_eq!(rt("d9010283010201"), "d90102820102");
        assert!(matches!(
            kind("d9010201"),
            CborErrorKind::BadTagContent(258, _)
        ));
        // Dropped tags.
        assert_eq!(decode(&hex("d9d9f763425945")).unwrap(), Value::text("BYE"));
        assert_eq!(decode(&hex("d81c63425945")).unwrap(), Value::text("BYE"));
        // Unknown tags are kept.
        assert_eq!(
            decode(&hex("d81e820100")).unwrap(),
            Value::Tag(
                30,
                Box::new(Value::Array(vec![Value::Int(1), Value::Int(0)]))
            )
        );
        assert_eq!(rt("d823635b2878"), "d823635b2878");
        assert_eq!(rt("db000000010000000000"), "db000000010000000000");
    }
}
