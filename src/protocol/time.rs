//! Datetimes and timedeltas the way cbor2 and Python build them.
//!
//! - Tag 0 text must look like `YYYY-MM-DDTHH:MM:SS[.f+](Z|±HH:MM)`: seconds
//!   and a zone are required, `Z` is upper-case, fractions beyond six digits
//!   are truncated (cbor2's rule). Digits are ASCII only.
//! - Tag 1 epochs (int or float) become UTC datetimes, rounding a float's
//!   fraction to microseconds half-to-even as `datetime.fromtimestamp` does.
//! - Everything must fall in Python's `datetime` range (years 1–9999);
//!   anything else is an error, where Python would raise (and, in piwheels,
//!   crash the receiving task).
//! - Tag 2001 components go through the same arithmetic as Python's
//!   `timedelta(days, seconds, microseconds)` constructor, so ints, bools and
//!   floats are accepted and the result is normalised.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, TimeZone, Timelike, Utc};

use super::value::{TimeDelta, Value};

/// Earliest and latest epoch seconds Python's `datetime` can hold
/// (0001-01-01T00:00:00 and 9999-12-31T23:59:59).
const MIN_EPOCH: i64 = -62_135_596_800;
const MAX_EPOCH: i64 = 253_402_300_799;

fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = s.get(at..at + n)?;
    let mut v = 0u32;
    for &b in part {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(b - b'0');
    }
    Some(v)
}

/// Parses tag 0 text as cbor2 does.
pub(crate) fn parse_datetime(text: &str) -> Result<DateTime<FixedOffset>, &'static str> {
    const BAD: &str = "invalid datetime string";
    let s = text.as_bytes();
    let year = digits(s, 0, 4).ok_or(BAD)?;
    let month = digits(s, 5, 2).ok_or(BAD)?;
    let day = digits(s, 8, 2).ok_or(BAD)?;
    let hour = digits(s, 11, 2).ok_or(BAD)?;
    let minute = digits(s, 14, 2).ok_or(BAD)?;
    let second = digits(s, 17, 2).ok_or(BAD)?;
    if s[4] != b'-' || s[7] != b'-' || s[10] != b'T' || s[13] != b':' || s[16] != b':' {
        return Err(BAD);
    }
    let mut pos = 19;
    let mut micros = 0u32;
    if s.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while s.get(pos).is_some_and(u8::is_ascii_digit) {
            pos += 1;
        }
        if pos == start {
            return Err(BAD);
        }
        // The first six digits, padded on the right; the rest are dropped.
        for i in 0..6 {
            let d = s.get(start + i).filter(|_| start + i < pos);
            micros = micros * 10 + d.map_or(0, |b| u32::from(b - b'0'));
        }
    }
    let offset_secs = match s.get(pos) {
        Some(b'Z') if pos + 1 == s.len() => 0,
        Some(&sign @ (b'+' | b'-')) if pos + 6 == s.len() && s[pos + 3] == b':' => {
            let oh = digits(s, pos + 1, 2).ok_or(BAD)?;
            let om = digits(s, pos + 4, 2).ok_or(BAD)?;
            if oh > 23 || om > 59 {
                return Err("time zone offset out of range");
            }
            let secs = (oh * 3600 + om * 60) as i32;
            if sign == b'-' { -secs } else { secs }
        }
        _ => return Err(BAD),
    };
    if !(1..=9999).contains(&year) {
        return Err("year is out of range");
    }
    let offset = FixedOffset::east_opt(offset_secs).ok_or("time zone offset out of range")?;
    let date =
        NaiveDate::from_ymd_opt(year as i32, month, day).ok_or("day is out of range for month")?;
    if hour > 23 || minute > 59 || second > 59 {
        return Err("time is out of range");
    }
    let naive = date
        .and_hms_micro_opt(hour, minute, second, micros)
        .ok_or("time is out of range")?;
    offset
        .from_local_datetime(&naive)
        .single()
        .ok_or("datetime is out of range")
}

/// Formats a datetime as piwheels does: Python's `isoformat()` with
/// `+00:00` written as `Z`, and the six-digit fraction only when
/// microseconds are non-zero.
///
/// Years outside 1–9999 (which our decoder never produces, but chrono can
/// represent) are clamped to that range, as a Python peer could not decode
/// them at all.
pub(crate) fn format_datetime(dt: &DateTime<FixedOffset>) -> String {
    let local = dt.naive_local();
    let (year, mut month, mut day, mut h, mut m, mut s, mut micro) = (
        local.year(),
        local.month(),
        local.day(),
        local.hour(),
        local.minute(),
        local.second(),
        // chrono keeps leap seconds as nanos >= 1e9; Python cannot.
        (local.nanosecond() / 1_000).min(999_999),
    );
    let year = if year < 1 {
        (month, day, h, m, s, micro) = (1, 1, 0, 0, 0, 0);
        1
    } else if year > 9999 {
        (month, day, h, m, s, micro) = (12, 31, 23, 59, 59, 999_999);
        9999
    } else {
        year
    };
    let mut out = format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}");
    if micro != 0 {
        out.push_str(&format!(".{micro:06}"));
    }
    let off = dt.offset().local_minus_utc();
    if off == 0 {
        out.push('Z');
    } else {
        let sign = if off < 0 { '-' } else { '+' };
        let a = off.unsigned_abs();
        out.push_str(&format!("{sign}{:02}:{:02}", a / 3600, a % 3600 / 60));
        if a % 60 != 0 {
            out.push_str(&format!(":{:02}", a % 60));
        }
    }
    out
}

fn from_epoch_parts(secs: i64, micros: u32) -> Result<DateTime<FixedOffset>, &'static str> {
    if !(MIN_EPOCH..=MAX_EPOCH).contains(&secs) {
        return Err("timestamp out of range");
    }
    Utc.timestamp_opt(secs, micros * 1_000)
        .single()
        .map(|dt| dt.fixed_offset())
        .ok_or("timestamp out of range")
}

/// Tag 1 with an integer (or bool, which Python treats as one).
pub(crate) fn datetime_from_epoch_int(secs: i128) -> Result<DateTime<FixedOffset>, &'static str> {
    let secs = i64::try_from(secs).map_err(|_| "timestamp out of range")?;
    from_epoch_parts(secs, 0)
}

/// Tag 1 with a float: split like C's `modf`, round the fraction to
/// microseconds half-to-even, carry into the seconds.
pub(crate) fn datetime_from_epoch_float(t: f64) -> Result<DateTime<FixedOffset>, &'static str> {
    if t.is_nan() {
        return Err("invalid value NaN (not a number)");
    }
    if !t.is_finite() || t.abs() > 1.0e15 {
        return Err("timestamp out of range");
    }
    let int_part = t.trunc();
    let mut micros = ((t - int_part) * 1e6).round_ties_even();
    let mut secs = int_part as i64;
    if micros >= 1e6 {
        micros -= 1e6;
        secs += 1;
    } else if micros < 0.0 {
        micros += 1e6;
        secs -= 1;
    }
    from_epoch_parts(secs, micros as u32)
}

/// Tag 2001: `timedelta(days=…, seconds=…, microseconds=…)` with Python's
/// exact arithmetic for ints and its float handling (integral parts exact,
/// fractional microseconds accumulated and rounded half-to-even at the end).
pub(crate) fn timedelta_from_parts(parts: &[Value]) -> Result<TimeDelta, &'static str> {
    let [days, seconds, micros] = parts else {
        return Err("timedelta needs exactly [days, seconds, microseconds]");
    };
    const OVERFLOW: &str = "timedelta out of range";
    let mut acc: i128 = 0;
    let mut leftover = 0.0f64;
    for (v, factor) in [
        (days, 86_400_000_000i128),
        (seconds, 1_000_000),
        (micros, 1),
    ] {
        match v {
            Value::Int(i) => {
                acc = i
                    .checked_mul(factor)
                    .and_then(|p| acc.checked_add(p))
                    .ok_or(OVERFLOW)?;
            }
            Value::Bool(b) => acc += i128::from(*b) * factor,
            Value::Float(f) => {
                if f.is_nan() {
                    return Err("cannot convert float NaN to integer");
                }
                // Anything this large is far outside ±999999999 days.
                if !f.is_finite() || f.abs() > 1.0e30 {
                    return Err(OVERFLOW);
                }
                let int_part = f.trunc();
                let frac = f - int_part;
                acc = (int_part as i128)
                    .checked_mul(factor)
                    .and_then(|p| acc.checked_add(p))
                    .ok_or(OVERFLOW)?;
                if frac != 0.0 {
                    let scaled = frac * factor as f64;
                    let whole = scaled.trunc();
                    acc += whole as i128;
                    leftover += scaled - whole;
                }
            }
            _ => return Err("unsupported type for timedelta component"),
        }
    }
    if leftover != 0.0 {
        let mut whole = leftover.round();
        if (whole - leftover).abs() == 0.5 {
            let odd = (acc & 1) as f64;
            whole = 2.0 * ((leftover + odd) * 0.5).round() - odd;
        }
        acc = acc.checked_add(whole as i128).ok_or(OVERFLOW)?;
    }
    TimeDelta::from_micros(acc).ok_or(OVERFLOW)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<String, &'static str> {
        parse_datetime(s).map(|d| format_datetime(&d))
    }

    #[test]
    fn parses_what_cbor2_parses() {
        assert_eq!(p("2024-03-01T12:00:00Z").unwrap(), "2024-03-01T12:00:00Z");
        assert_eq!(
            p("2024-03-01T12:00:05.123456Z").unwrap(),
            "2024-03-01T12:00:05.123456Z"
        );
        assert_eq!(
            p("2024-03-01T12:00:05.123456789Z").unwrap(),
            "2024-03-01T12:00:05.123456Z"
        );
        assert_eq!(
            p("2024-03-01T12:00:05.5Z").unwrap(),
            "2024-03-01T12:00:05.500000Z"
        );
        assert_eq!(
            p("2024-03-01T12:00:00.000000Z").unwrap(),
            "2024-03-01T12:00:00Z"
        );
        assert_eq!(
            p("2024-03-01T14:00:00+02:00").unwrap(),
            "2024-03-01T14:00:00+02:00"
        );
        assert_eq!(
            p("2024-03-01T07:30:00-04:30").unwrap(),
            "2024-03-01T07:30:00-04:30"
        );
        assert_eq!(
            p("2024-03-01T12:00:00+00:00").unwrap(),
            "2024-03-01T12:00:00Z"
        );
        assert_eq!(
            p("2024-03-01T12:00:00-00:00").unwrap(),
            "2024-03-01T12:00:00Z"
        );
        assert_eq!(p("0001-01-01T00:00:00Z").unwrap(), "0001-01-01T00:00:00Z");
        assert_eq!(
            p("9999-12-31T23:59:59.999999Z").unwrap(),
            "9999-12-31T23:59:59.999999Z"
        );
        let a = parse_datetime("2024-03-01T14:00:00+02:00").unwrap();
        let b = parse_datetime("2024-03-01T12:00:00Z").unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn rejects_what_cbor2_rejects() {
        for bad in [
            "2024-03-01T12:00:00z",
            "2024-03-01T12:00:00",
            "2024-03-01T12:00Z",
            "2024-03-01 12:00:00Z",
            "2024-13-01T12:00:00Z",
            "2024-02-30T12:00:00Z",
            "2024-03-01T24:00:00Z",
            "2024-03-01T12:60:00Z",
            "2024-03-01T12:00:60Z",
            "0000-01-01T00:00:00Z",
            "2024-03-01T12:00:00.Z",
            "2024-03-01T12:00:00+2:00",
            "2024-03-01T12:00:00+02:00x",
            "2024-03-01T12:00:00+0200",
            "2024-03-01T12:00:00+24:00",
            "2024-03-01T12:00:00Zjunk",
            "",
            "２０２４-03-01T12:00:00Z",
            "-2024-03-01T12:00:00Z",
        ] {
            assert!(parse_datetime(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn epochs() {
        let f = |x: f64| datetime_from_epoch_float(x).map(|d| format_datetime(&d));
        assert_eq!(
            format_datetime(&datetime_from_epoch_int(1_709_294_400).unwrap()),
            "2024-03-01T12:00:00Z"
        );
        assert_eq!(f(1_709_294_400.25).unwrap(), "2024-03-01T12:00:00.250000Z");
        assert_eq!(f(-0.5).unwrap(), "1969-12-31T23:59:59.500000Z");
        assert_eq!(f(-1.0).unwrap(), "1969-12-31T23:59:59Z");
        assert_eq!(f(0.9999999).unwrap(), "1970-01-01T00:00:01Z");
        assert!(f(1e20).is_err());
        assert!(f(f64::NAN).is_err());
        assert!(f(f64::INFINITY).is_err());
        assert!(datetime_from_epoch_int(i128::MAX).is_err());
        assert!(datetime_from_epoch_int(i128::from(MAX_EPOCH) + 1).is_err());
        assert!(datetime_from_epoch_int(i128::from(MIN_EPOCH)).is_ok());
        assert!(datetime_from_epoch_int(i128::from(MIN_EPOCH) - 1).is_err());
    }

    #[test]
    fn format_clamps_out_of_python_range() {
        let far = Utc
            .with_ymd_and_hms(12000, 1, 1, 0, 0, 0)
            .unwrap()
            .fixed_offset();
        assert_eq!(format_datetime(&far), "9999-12-31T23:59:59.999999Z");
        let early = Utc
            .with_ymd_and_hms(-5, 1, 1, 0, 0, 0)
            .unwrap()
            .fixed_offset();
        assert_eq!(format_datetime(&early), "0001-01-01T00:00:00Z");
    }

    fn td(parts: &[Value]) -> Result<(i32, u32, u32), &'static str> {
        timedelta_from_parts(parts).map(|t| (t.days(), t.seconds(), t.microseconds()))
    }

    #[test]
    fn timedelta_like_python() {
        use Value::{Bool, Float, Int};
        assert_eq!(td(&[Int(0), Int(10800), Int(0)]), Ok((0, 10800, 0)));
        assert_eq!(td(&[Int(0), Int(90000), Int(0)]), Ok((1, 3600, 0)));
        assert_eq!(td(&[Int(0), Int(-1), Int(0)]), Ok((-1, 86399, 0)));
        assert_eq!(td(&[Int(0), Float(1.5), Int(0)]), Ok((0, 1, 500_000)));
        assert_eq!(td(&[Float(0.5), Int(0), Int(0)]), Ok((0, 43200, 0)));
        assert_eq!(td(&[Int(0), Int(0), Float(0.5)]), Ok((0, 0, 0)));
        assert_eq!(td(&[Int(0), Int(0), Float(1.5)]), Ok((0, 0, 2)));
        assert_eq!(td(&[Int(0), Int(0), Float(2.5)]), Ok((0, 0, 2)));
        assert_eq!(td(&[Int(0), Int(0), Float(-0.5)]), Ok((0, 0, 0)));
        assert_eq!(td(&[Bool(true), Bool(false), Int(0)]), Ok((1, 0, 0)));
        assert_eq!(
            td(&[Int(-999_999_999), Int(0), Int(0)]),
            Ok((-999_999_999, 0, 0))
        );
        assert!(td(&[Int(1_000_000_000), Int(0), Int(0)]).is_err());
        assert!(td(&[Int(i128::MAX), Int(0), Int(0)]).is_err());
        assert!(td(&[Int(0), Float(f64::NAN), Int(0)]).is_err());
        assert!(td(&[Int(0), Float(f64::INFINITY), Int(0)]).is_err());
        assert!(td(&[Float(1e300), Int(0), Int(0)]).is_err());
        assert!(td(&[Value::text("0"), Int(0), Int(0)]).is_err());
        assert!(td(&[Int(0), Int(0)]).is_err());
        assert!(td(&[Int(0), Int(0), Int(0), Int(0)]).is_err());
    }
}
