//! Apache `LogFormat` strings and the access-log lines they produce.
//!
//! piwheels reads logs with the `lars` library, which compiles an Apache
//! `LogFormat` string (or one of the short-cuts `common`, `combined` and
//! `common_vhost`) into a line parser. This is the same idea, limited to
//! what piw-logger needs: the client address (`%h`/`%a`), the time (`%t`),
//! the request line (`%r`), the final status (`%>s`) and the request headers
//! (`%{User-Agent}i`, `%{Referer}i`). Every other directive Apache knows is
//! accepted and its value skipped; an unknown one is an error when the
//! format is compiled, not on every line.
//!
//! Lines are parsed strictly: literal text must match, quoted fields must
//! close, the time must be Apache's `[dd/Mon/yyyy:HH:MM:SS +zzzz]` and the
//! status a number. A line that does not fit is a [`LineError`] saying
//! where and why; the caller skips it. A request line that is not
//! `METHOD TARGET [PROTOCOL]` is *not* an error: Apache logs garbage
//! requests (TLS on port 80, scanners) as they came, with status 400, so
//! such a line parses with `request: None` and is simply not a hit.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};

/// Apache's `common` format.
pub const COMMON: &str = r#"%h %l %u %t "%r" %>s %b"#;
/// Apache's `common` format with the virtual host first.
pub const COMMON_VHOST: &str = r#"%v %h %l %u %t "%r" %>s %b"#;
/// Apache's (and nginx's) `combined` format, piw-logger's default.
pub const COMBINED: &str = r#"%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i""#;

/// The `LogFormat` string for a `--format` value: the short-cuts piwheels
/// accepts, or the value itself.
pub fn format_string(name: &str) -> &str {
    match name {
        "common" => COMMON,
        "combined" => COMBINED,
        "common_vhost" => COMMON_VHOST,
        other => other,
    }
}

/// The fields piw-logger uses; everything else is [`Field::Skip`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    RemoteHost,
    Time,
    Request,
    Status,
    UserAgent,
    Skip,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Literal(String),
    Field { field: Field, quoted: bool },
}

/// A `LogFormat` string that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormatError {}

/// A compiled `LogFormat`.
#[derive(Debug, Clone)]
pub struct LogFormat {
    items: Vec<Item>,
    has_user_agent: bool,
}

/// One parsed access-log line. Borrowed from the line where possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    /// `%h`: the client's address as logged (an IP address unless Apache
    /// resolves host names).
    pub remote_host: Cow<'a, str>,
    /// `%t`, converted to UTC.
    pub time: DateTime<Utc>,
    /// `%r`, if it was a well-formed request line.
    pub request: Option<Request<'a>>,
    /// `%>s`.
    pub status: u16,
    /// `%{User-Agent}i`, `None` when logged as `-` (or not in the format).
    pub user_agent: Option<Cow<'a, str>>,
}

/// The parts of a request line piw-logger uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// `GET`, `HEAD`, ...
    pub method: Cow<'a, str>,
    /// The path, without query string or fragment, percent-decoded.
    pub path: Cow<'a, str>,
}

/// Why a line does not fit the format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// Byte offset in the line where parsing stopped.
    pub column: usize,
    pub reason: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at column {})", self.reason, self.column + 1)
    }
}

impl std::error::Error for LineError {}

fn err<T>(column: usize, reason: impl Into<String>) -> Result<T, LineError> {
    Err(LineError {
        column,
        reason: reason.into(),
    })
}

impl LogFormat {
    /// Compiles a `LogFormat` string (see [`format_string`] for the
    /// short-cuts).
    pub fn new(spec: &str) -> Result<LogFormat, FormatError> {
        let mut items: Vec<Item> = Vec::new();
        let mut literal = String::new();
        let mut chars = spec.chars().peekable();
        let bad = |why: String| FormatError(format!("log format {spec:?}: {why}"));
        while let Some(c) = chars.next() {
            if c != '%' {
                literal.push(c);
                continue;
            }
            if chars.peek() == Some(&'%') {
                chars.next();
                literal.push('%');
                continue;
            }
            // Modifiers: status conditions (`!400,501`) and `<`/`>`.
            while chars
                .peek()
                .is_some_and(|c| matches!(c, '<' | '>' | '!' | ',' | '0'..='9'))
            {
                chars.next();
            }
            let mut arg = None;
            if chars.peek() == Some(&'{') {
                chars.next();
                let mut a = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => a.push(c),
                        None => return Err(bad("unterminated %{...}".into())),
                    }
                }
                arg = Some(a);
            }
            let Some(letter) = chars.next() else {
                return Err(bad("a lone % at the end".into()));
            };
            // `%^ti` / `%^to` (trailers) take two more letters.
            let field = match (letter, arg.as_deref()) {
                ('h' | 'a', _) => Field::RemoteHost,
                ('t', None) => Field::Time,
                ('t', Some(a)) => {
                    return Err(bad(format!(
                        "%{{{a}}}t (a custom time format) is not supported; use %t"
                    )));
                }
                ('r', None) => Field::Request,
                ('s', None) => Field::Status,
                ('i', Some(h)) if h.eq_ignore_ascii_case("user-agent") => Field::UserAgent,
                ('i' | 'o' | 'e' | 'n' | 'C' | 'x', Some(_)) => Field::Skip,
                (
                    'A' | 'b' | 'B' | 'D' | 'f' | 'H' | 'k' | 'l' | 'L' | 'm' | 'p' | 'P' | 'q'
                    | 'R' | 'T' | 'u' | 'U' | 'v' | 'V' | 'X' | 'I' | 'O' | 'S',
                    _,
                ) => Field::Skip,
                ('^', _) => {
                    chars.next();
                    chars.next();
                    Field::Skip
                }
                (other, _) => {
                    return Err(bad(format!("unknown directive %{other}")));
                }
            };
            // A directive between double quotes is a quoted field: its
            // value may contain spaces and escaped quotes.
            let quoted = literal.ends_with('"') && chars.peek() == Some(&'"');
            if quoted {
                literal.pop();
                chars.next();
            }
            if !literal.is_empty() {
                items.push(Item::Literal(std::mem::take(&mut literal)));
            }
            if let Some(Item::Field { .. }) = items.last() {
                if !quoted {
                    return Err(bad(
                        "two fields without text between them cannot be told apart".into(),
                    ));
                }
            }
            items.push(Item::Field { field, quoted });
        }
        if !literal.is_empty() {
            items.push(Item::Literal(literal));
        }
        for (needed, what) in [
            (Field::RemoteHost, "%h"),
            (Field::Time, "%t"),
            (Field::Request, "%r"),
            (Field::Status, "%>s"),
        ] {
            if !items
                .iter()
                .any(|i| matches!(i, Item::Field { field, .. } if *field == needed))
            {
                return Err(bad(format!("piw-logger needs {what} in the format")));
            }
        }
        let has_user_agent = items.iter().any(|i| {
            matches!(
                i,
                Item::Field {
                    field: Field::UserAgent,
                    ..
                }
            )
        });
        Ok(LogFormat {
            items,
            has_user_agent,
        })
    }

    /// Whether lines carry the user agent. Without it nothing is logged
    /// (piwheels only logs hits with a user agent).
    pub fn has_user_agent(&self) -> bool {
        self.has_user_agent
    }

    /// Parses one line (without its line terminator; trailing white space
    /// is ignored).
    pub fn parse<'a>(&self, line: &'a str) -> Result<Entry<'a>, LineError> {
        let line = line.trim_end_matches(['\r', '\n', ' ', '\t']);
        let mut pos = 0;
        let mut host = None;
        let mut time = None;
        let mut request = None;
        let mut status = None;
        let mut user_agent = None;
        for (i, item) in self.items.iter().enumerate() {
            match item {
                Item::Literal(text) => {
                    if !line[pos..].starts_with(text.as_str()) {
                        return if pos >= line.len() {
                            err(pos, "the line ends too early")
                        } else {
                            err(pos, format!("expected {text:?}"))
                        };
                    }
                    pos += text.len();
                }
                Item::Field { field, quoted } => {
                    let start = pos;
                    let value: Cow<'a, str> = if *quoted {
                        let (v, end) = quoted_field(line, pos)?;
                        pos = end;
                        v
                    } else if *field == Field::Time || line[pos..].starts_with('[') {
                        let Some(len) = line[pos..].find(']') else {
                            return err(pos, "unterminated [time]");
                        };
                        let v = &line[pos..pos + len + 1];
                        pos += len + 1;
                        Cow::Borrowed(v)
                    } else {
                        let end = match self.items.get(i + 1) {
                            Some(Item::Literal(next)) => {
                                let stop = next.chars().next().unwrap_or(' ');
                                match line[pos..].find(stop) {
                                    Some(n) => pos + n,
                                    None => return err(pos, "the line ends too early"),
                                }
                            }
                            _ => line.len(),
                        };
                        let v = &line[pos..end];
                        pos = end;
                        Cow::Borrowed(v)
                    };
                    match field {
                        Field::RemoteHost => host = Some(value),
                        Field::Time => {
                            time = Some(parse_time(&value).map_err(|why| LineError {
                                column: start,
                                reason: why,
                            })?)
                        }
                        Field::Request => request = Some(parse_request(value)),
                        Field::Status => match value.parse::<u16>() {
                            Ok(s) => status = Some(s),
                            Err(_) => {
                                return err(start, format!("status {value:?} is not a number"));
                            }
                        },
                        Field::UserAgent => {
                            user_agent = (value != "-").then_some(value);
                        }
                        Field::Skip => {}
                    }
                }
            }
        }
        if pos < line.len() {
            return err(pos, "unexpected text after the last field");
        }
        // The format guarantees these are present (checked in `new`).
        match (host, time, request, status) {
            (Some(remote_host), Some(time), Some(request), Some(status)) => Ok(Entry {
                remote_host,
                time,
                request,
                status,
                user_agent,
            }),
            _ => err(pos, "missing fields"),
        }
    }
}

/// Reads a double-quoted field starting at `pos` (at the opening quote) and
/// returns its unescaped text and the position after the closing quote.
fn quoted_field(line: &str, pos: usize) -> Result<(Cow<'_, str>, usize), LineError> {
    let bytes = line.as_bytes();
    if bytes.get(pos) != Some(&b'"') {
        return err(pos, "expected '\"'");
    }
    let start = pos + 1;
    let mut i = start;
    let mut escaped = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                escaped = true;
                i += 2;
            }
            b'"' => {
                let raw = &line[start..i];
                let text = if escaped {
                    unescape(raw)
                } else {
                    Cow::Borrowed(raw)
                };
                return Ok((text, i + 1));
            }
            _ => i += 1,
        }
    }
    err(pos, "unterminated quoted field")
}

/// Undoes Apache's (and nginx's) log escaping: `\"`, `\\`, `\xHH` and the
/// C escapes. Bytes that are not UTF-8 afterwards become U+FFFD.
fn unescape(raw: &str) -> Cow<'_, str> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 >= b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let (byte, used) = match b[i + 1] {
            b'"' => (b'"', 2),
            b'\\' => (b'\\', 2),
            b'n' => (b'\n', 2),
            b't' => (b'\t', 2),
            b'r' => (b'\r', 2),
            b'b' => (8, 2),
            b'v' => (11, 2),
            b'x' if i + 3 < b.len() && hex(b[i + 2]).is_some() && hex(b[i + 3]).is_some() => (
                hex(b[i + 2]).unwrap_or(0) * 16 + hex(b[i + 3]).unwrap_or(0),
                4,
            ),
            _ => (b'\\', 1),
        };
        out.push(byte);
        i += used;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parses Apache's `[18/Mar/2019:14:24:56 +0000]` into UTC.
fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    let bad = || format!("{s:?} is not a time like [18/Mar/2019:14:24:56 +0000]");
    let inner = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or_else(bad)?;
    let b = inner.as_bytes();
    // ASCII only: the fields below are sliced by byte offset, which would
    // panic inside a multi-byte character (found by the logger fuzz target).
    if b.len() != 26
        || !inner.is_ascii()
        || b[2] != b'/'
        || b[6] != b'/'
        || b[11] != b':'
        || b[14] != b':'
        || b[17] != b':'
        || b[20] != b' '
    {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<u32, String> {
        let t = &inner[r];
        if t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let month = match &inner[3..6] {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return Err(bad()),
    };
    let day = num(0..2)?;
    let year = num(7..11)?;
    let (hh, mm, ss) = (num(12..14)?, num(15..17)?, num(18..20)?);
    let sign = match b[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return Err(bad()),
    };
    let (oh, om) = (num(22..24)?, num(24..26)?);
    if om > 59 || oh > 23 {
        return Err(bad());
    }
    let local = NaiveDate::from_ymd_opt(year as i32, month, day)
        .and_then(|d| d.and_hms_opt(hh, mm, ss))
        .ok_or_else(bad)?;
    let offset = chrono::TimeDelta::seconds(sign * i64::from(oh * 3600 + om * 60));
    Ok(DateTime::from_naive_utc_and_offset(local - offset, Utc))
}

/// Splits a request line; `None` if it is not `METHOD TARGET [PROTOCOL]`.
fn parse_request(line: Cow<'_, str>) -> Option<Request<'_>> {
    fn split(line: &str) -> Option<(&str, &str)> {
        let mut parts = line.split(' ');
        let method = parts.next()?;
        let target = parts.next()?;
        match (parts.next(), parts.next()) {
            (None, None) => {}
            (Some(proto), None) if proto.starts_with("HTTP/") => {}
            _ => return None,
        }
        if method.is_empty() || !method.bytes().all(|c| c.is_ascii_uppercase()) {
            return None;
        }
        let path = match target.find("://") {
            Some(n) if !target[..n].contains('/') => {
                let rest = &target[n + 3..];
                rest.find('/').map_or("/", |p| &rest[p..])
            }
            _ => target,
        };
        let path = path.split(['?', '#']).next().unwrap_or("");
        if path.is_empty() {
            return None;
        }
        Some((method, path))
    }
    match line {
        Cow::Borrowed(l) => {
            let (method, path) = split(l)?;
            Some(Request {
                method: Cow::Borrowed(method),
                path: percent_decode(path),
            })
        }
        Cow::Owned(l) => {
            let (method, path) = split(&l)?;
            Some(Request {
                method: Cow::Owned(method.to_owned()),
                path: Cow::Owned(percent_decode(path).into_owned()),
            })
        }
    }
}

/// Decodes `%HH` escapes in a URL path (invalid ones stay as they are).
fn percent_decode(path: &str) -> Cow<'_, str> {
    if !path.contains('%') {
        return Cow::Borrowed(path);
    }
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn combined() -> LogFormat {
        LogFormat::new(COMBINED).unwrap()
    }

    #[test]
    fn parses_a_pip_line() {
        let line = r#"2a00:1098:0:80:1000:3b:1:1 - - [18/Mar/2019:14:24:56 +0000] "GET /simple/markupsafe/ HTTP/1.1" 200 2655 "-" "pip/9.0.1 {\"cpu\":\"armv7l\",\"python\":\"3.5.3\"}""#;
        let e = combined().parse(line).unwrap();
        assert_eq!(e.remote_host, "2a00:1098:0:80:1000:3b:1:1");
        assert_eq!(
            e.time,
            Utc.with_ymd_and_hms(2019, 3, 18, 14, 24, 56).unwrap()
        );
        let r = e.request.unwrap();
        assert_eq!((&*r.method, &*r.path), ("GET", "/simple/markupsafe/"));
        assert_eq!(e.status, 200);
        assert_eq!(
            e.user_agent.as_deref(),
            Some(r#"pip/9.0.1 {"cpu":"armv7l","python":"3.5.3"}"#)
        );
    }

    #[test]
    fn time_zones_become_utc() {
        let line = r#"1.2.3.4 - - [11/Oct/2019:06:26:55 +0100] "GET / HTTP/1.1" 200 6153 "-" "x""#;
        let e = combined().parse(line).unwrap();
        assert_eq!(
            e.time,
            Utc.with_ymd_and_hms(2019, 10, 11, 5, 26, 55).unwrap()
        );
        let line = r#"1.2.3.4 - - [31/Dec/2019:22:30:00 -0230] "GET / HTTP/1.1" 200 6153 "-" "x""#;
        let e = combined().parse(line).unwrap();
        assert_eq!(e.time, Utc.with_ymd_and_hms(2020, 1, 1, 1, 0, 0).unwrap());
    }

    #[test]
    fn non_ascii_time_is_a_bad_line() {
        // 26 bytes between the brackets, one multi-byte character inside a
        // field: an error, not a panic.
        let line =
            "1.2.3.4 - - [28/Nov/2020:08:00:00 +0\u{fffd}] \"GET / HTTP/1.1\" 200 1 \"-\" \"x\"";
        assert!(combined().parse(line).is_err());
        let line =
            "1.2.3.4 - - [28/N\u{e9}/2020:08:00:00 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"x\"";
        assert!(combined().parse(line).is_err());
    }

    #[test]
    fn dash_means_no_user_agent() {
        let line = r#"1.2.3.4 - - [11/Oct/2019:06:26:55 +0000] "GET / HTTP/1.1" 200 - "-" "-""#;
        let e = combined().parse(line).unwrap();
        assert_eq!(e.user_agent, None);
    }

    #[test]
    fn escapes_are_undone() {
        let line = r#"1.2.3.4 - - [11/Oct/2019:06:26:55 +0000] "GET /a%2Bb.whl?x=1 HTTP/1.1" 200 1 "-" "a\\b \"q\" \x41\xff""#;
        let e = combined().parse(line).unwrap();
        assert_eq!(e.user_agent.as_deref(), Some("a\\b \"q\" A\u{fffd}"));
        assert_eq!(&*e.request.unwrap().path, "/a+b.whl");
    }

    #[test]
    fn garbage_requests_parse_without_a_request() {
        for req in [
            r"\x16\x03\x01\x02",
            "-",
            "GET",
            "get / HTTP/1.1",
            "GET / HTTP/1.1 extra",
        ] {
            let line = format!(r#"1.2.3.4 - - [11/Oct/2019:06:26:55 +0000] "{req}" 400 0 "-" "-""#);
            let e = combined().parse(&line).unwrap();
            assert_eq!(e.request, None, "{req}");
        }
        let line = r#"1.2.3.4 - - [11/Oct/2019:06:26:55 +0000] "GET http://example.com/simple/x/ HTTP/1.0" 200 0 "-" "-""#;
        assert_eq!(
            &*combined().parse(line).unwrap().request.unwrap().path,
            "/simple/x/"
        );
    }

    #[test]
    fn lines_that_do_not_fit_say_why() {
        let f = combined();
        for (line, why) in [
            ("", "ends too early"),
            ("hello world", "ends too early"),
            (
                r#"1.2.3.4 - - [11/Oct/2019:06:26:55 +0000] "GET / HTTP/1.1" abc 1 "-" "x""#,
                "not a number",
            ),
            (
                r#"1.2.3.4 - - [41/Oct/2019:06:26:55 +0000] "GET / HTTP/1.1" 200 1 "-" "x""#,
                "not a time",
            ),
            (
                r#"1.2.3.4 - - [11/Oct/2019:06:26:55 +0000] "GET / HTTP/1.1" 200 1 "-" "x"#,
                "unterminated",
            ),
            (
                r#"1.2.3.4 - - [11/Oct/2019:06:26:55 +0000] "GET / HTTP/1.1" 200 1 "-" "x" more"#,
                "after the last field",
            ),
        ] {
            let e = f.parse(line).unwrap_err();
            assert!(e.reason.contains(why), "{line}: {e}");
        }
    }

    #[test]
    fn other_formats() {
        let f = LogFormat::new(format_string("common")).unwrap();
        assert!(!f.has_user_agent());
        let e = f
            .parse(r#"1.2.3.4 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#)
            .unwrap();
        assert_eq!(e.status, 200);
        assert_eq!(e.user_agent, None);
        let f = LogFormat::new(format_string("common_vhost")).unwrap();
        assert!(f
            .parse(r#"www.piwheels.org 1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326"#)
            .is_ok());
        let f =
            LogFormat::new(r#"%a %{X-Forwarded-For}i %t "%r" %>s "%{User-agent}i" %D"#).unwrap();
        let e = f
            .parse(r#"1.2.3.4 5.6.7.8 [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 "curl/8" 1234"#)
            .unwrap();
        assert_eq!(e.user_agent.as_deref(), Some("curl/8"));
    }

    #[test]
    fn bad_formats_are_refused() {
        for (spec, why) in [
            ("%h %t %r %s %Z", "unknown directive"),
            ("%h %{%Y}t %r %s", "custom time"),
            ("%h %t \"%r\" %b", "needs %>s"),
            ("%h%l %t \"%r\" %s", "cannot be told apart"),
            ("%h %t \"%r\" %s %{abc", "unterminated"),
        ] {
            let e = LogFormat::new(spec).unwrap_err();
            assert!(e.0.contains(why), "{spec}: {e}");
        }
    }
}
