//! XML-RPC for the one method the master calls, `changelog_since_serial`:
//! the request body and a streaming parser of the response.
//!
//! The parser reads the HTTP body through a `BufRead` and hands each
//! changelog entry to a callback as soon as its closing tag is read, so a
//! response of 50,000 entries is never held as text: what stays in memory
//! is the entries themselves (in the compact [`ChangelogEntry`] form, whose
//! action is already classified) and one read buffer.
//!
//! It accepts what PyPI (Python's `xmlrpc.server`) really sends: an array of
//! 5-element arrays `(name, version, timestamp, action, serial)`, strings
//! with or without `<string>` (a `<value>` without a type is a string),
//! `<nil/>` for a missing version, `<int>`/`<i4>`/`<i8>`, entities and
//! character references, UTF-8, and XML-RPC faults. Anything else is an
//! error with a reason; the parser never panics, whatever the input, and
//! bounds what it keeps (text of one value, nesting, entries).

use std::io::BufRead;

use quick_xml::events::Event;

/// Longest text kept of one value, in bytes. Longer text is cut (at a
/// character boundary): enough to see that a name is over the 200
/// characters piwheels accepts, without letting a hostile response make us
/// hold megabytes.
pub const MAX_VALUE_BYTES: usize = 4096;

/// Most entries accepted in one response (PyPI sends at most about 50,000).
pub const MAX_ENTRIES: usize = 200_000;

/// Deepest nesting of values accepted (PyPI's entries are two deep).
const MAX_DEPTH: usize = 8;

/// Most items in one nested array or struct.
const MAX_ITEMS: usize = 64;

/// The highest serial the database can store (`set_pypi_serial` takes an
/// INTEGER, as in piwheels).
pub const MAX_SERIAL: i64 = i32::MAX as i64;

/// The latest timestamp accepted (9999-12-31T23:59:59Z).
pub const MAX_TIMESTAMP: i64 = 253_402_300_799;

/// What a changelog action means to piwheels 0.23 (`PyPIEvents`' regular
/// expressions, applied when the entry is parsed so the action text need
/// not be kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `^add ([^ ]+) file`: a file was uploaded; `source` when the file
    /// type is `source`.
    AddFile {
        /// The file is an sdist.
        source: bool,
    },
    /// `^create$`: a new project.
    Create,
    /// `^remove(?: (?:project|release))?$`: a project or release was
    /// removed (0.23's end-anchored pattern: "remove file", "remove Owner"
    /// and the like are *not* removals).
    Remove,
    /// `^yank release$`.
    Yank,
    /// `^unyank release$`.
    Unyank,
    /// Anything else ("new release", "update classifiers", role changes,
    /// unknown actions): ignored, but still counted for the serial.
    Other,
}

/// Python's `$` also matches just before a final newline.
fn py_full_match(s: &str, literal: &str) -> bool {
    s == literal || s.strip_suffix('\n') == Some(literal)
}

impl Action {
    /// Classifies an action string exactly as piwheels 0.23 does.
    pub fn classify(action: &str) -> Action {
        if let Some(rest) = action.strip_prefix("add ") {
            // `[^ ]+` then " file": the file type is one or more non-space
            // characters (Python's `[^ ]` matches newlines too).
            if let Some(end) = rest.find(' ') {
                if end > 0 && rest[end..].starts_with(" file") {
                    return Action::AddFile {
                        source: &rest[..end] == "source",
                    };
                }
            }
        }
        if py_full_match(action, "create") {
            Action::Create
        } else if py_full_match(action, "remove")
            || py_full_match(action, "remove project")
            || py_full_match(action, "remove release")
        {
            Action::Remove
        } else if py_full_match(action, "yank release") {
            Action::Yank
        } else if py_full_match(action, "unyank release") {
            Action::Unyank
        } else {
            Action::Other
        }
    }
}

/// One entry of PyPI's changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogEntry {
    /// The project name as PyPI spells it (not canonicalised). Empty for
    /// [`Action::Other`], whose names are never used.
    pub name: Box<str>,
    /// The version (`None`: `<nil/>`).
    pub version: Option<Box<str>>,
    /// Unix time, seconds.
    pub timestamp: i64,
    /// What happened.
    pub action: Action,
    /// PyPI's serial of the event.
    pub serial: i64,
}

/// Why a response could not be used.
#[derive(Debug)]
pub enum XmlRpcError {
    /// The server answered with an XML-RPC fault (PyPI answers -32500 when
    /// it rate-limits).
    Fault {
        /// `faultCode`.
        code: i64,
        /// `faultString`.
        message: String,
    },
    /// The body is not a well-formed response of the expected shape
    /// (garbage, truncated, wrong types, ...).
    Malformed(String),
    /// Reading the body failed (timeout, connection reset, bad gzip).
    Io(std::io::Error),
}

impl std::fmt::Display for XmlRpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            XmlRpcError::Fault { code, message } => {
                write!(f, "XML-RPC fault {code}: {}", shorten(message, 200))
            }
            XmlRpcError::Malformed(why) => write!(f, "malformed XML-RPC response: {why}"),
            XmlRpcError::Io(e) => write!(f, "reading the response failed: {e}"),
        }
    }
}

impl std::error::Error for XmlRpcError {}

/// `s`, cut to at most `max` characters with "..." when longer, and with
/// control characters escaped (for log lines about hostile input).
pub fn shorten(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push_str("...");
    }
    out
}

/// The body of a `changelog_since_serial(serial)` call.
pub fn changelog_request(serial: i64) -> String {
    format!(
        "<?xml version='1.0'?>\n<methodCall>\n<methodName>changelog_since_serial</methodName>\n\
         <params>\n<param>\n<value><int>{serial}</int></value>\n</param>\n</params>\n\
         </methodCall>\n"
    )
}

/// Parses a `changelog_since_serial` response from `reader`, calling `each`
/// for every entry in order. Returns the number of entries.
///
/// On error, entries already handed to `each` must be discarded by the
/// caller: a response is used whole or not at all.
pub fn parse_changelog<R: BufRead>(
    reader: R,
    mut each: impl FnMut(ChangelogEntry),
) -> Result<usize, XmlRpcError> {
    let mut p = Parser::new(reader);
    let mut n = 0;
    p.response(|value| {
        if n >= MAX_ENTRIES {
            return Err(malformed(format!("more than {MAX_ENTRIES} entries")));
        }
        let entry = to_entry(value, n)?;
        n += 1;
        each(entry);
        Ok(())
    })?;
    Ok(n)
}

/// A parsed XML-RPC value (only inside one changelog entry or a fault).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Double(f64),
    Bool(bool),
    Nil,
    Array(Vec<Value>),
    Struct(Vec<(String, Value)>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Int(_) => "int",
            Value::Double(_) => "double",
            Value::Bool(_) => "boolean",
            Value::Nil => "nil",
            Value::Array(_) => "array",
            Value::Struct(_) => "struct",
        }
    }
}

fn malformed(why: impl Into<String>) -> XmlRpcError {
    XmlRpcError::Malformed(why.into())
}

fn to_entry(value: Value, index: usize) -> Result<ChangelogEntry, XmlRpcError> {
    let bad = |why: String| malformed(format!("entry {index}: {why}"));
    let Value::Array(items) = value else {
        return Err(bad(format!("expected an array, got {}", value.kind())));
    };
    if items.len() != 5 {
        return Err(bad(format!("expected 5 items, got {}", items.len())));
    }
    let mut items = items.into_iter();
    let (name, version, timestamp, action, serial) = (
        items.next(),
        items.next(),
        items.next(),
        items.next(),
        items.next(),
    );
    let serial = match serial {
        Some(Value::Int(s)) if (0..=MAX_SERIAL).contains(&s) => s,
        Some(Value::Int(s)) => return Err(bad(format!("serial {s} out of range"))),
        Some(v) => return Err(bad(format!("serial is a {}", v.kind()))),
        None => unreachable!("five items"),
    };
    let timestamp = match timestamp {
        Some(Value::Int(t)) => t,
        Some(Value::Double(t)) if t.is_finite() => t.floor() as i64,
        Some(v) => return Err(bad(format!("timestamp is a {}", v.kind()))),
        None => unreachable!("five items"),
    };
    if !(0..=MAX_TIMESTAMP).contains(&timestamp) {
        return Err(bad(format!("timestamp {timestamp} out of range")));
    }
    let action = match action {
        Some(Value::Str(a)) => Action::classify(&a),
        Some(v) => return Err(bad(format!("action is a {}", v.kind()))),
        None => unreachable!("five items"),
    };
    let name = match name {
        Some(Value::Str(n)) => n,
        Some(v) => return Err(bad(format!("name is a {}", v.kind()))),
        None => unreachable!("five items"),
    };
    let version = match version {
        Some(Value::Str(v)) => Some(v),
        Some(Value::Nil) => None,
        Some(v) => return Err(bad(format!("version is a {}", v.kind()))),
        None => unreachable!("five items"),
    };
    if action == Action::Other {
        // Never looked at again: keep only what the ordering buffer needs.
        return Ok(ChangelogEntry {
            name: Box::from(""),
            version: None,
            timestamp,
            action,
            serial,
        });
    }
    Ok(ChangelogEntry {
        name: name.into_boxed_str(),
        version: version.map(String::into_boxed_str),
        timestamp,
        action,
        serial,
    })
}

/// The elements of XML-RPC (by local name, so `ex:nil` and `ex:i8` of the
/// Apache extensions are understood too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    MethodResponse,
    Params,
    Param,
    Value,
    Array,
    Data,
    Struct,
    Member,
    Name,
    Fault,
    String,
    Int,
    Boolean,
    Double,
    Nil,
    DateTime,
    Base64,
    Unknown,
}

impl Tag {
    fn of(local: &[u8]) -> Tag {
        match local {
            b"methodResponse" => Tag::MethodResponse,
            b"params" => Tag::Params,
            b"param" => Tag::Param,
            b"value" => Tag::Value,
            b"array" => Tag::Array,
            b"data" => Tag::Data,
            b"struct" => Tag::Struct,
            b"member" => Tag::Member,
            b"name" => Tag::Name,
            b"fault" => Tag::Fault,
            b"string" => Tag::String,
            b"int" | b"i4" | b"i8" => Tag::Int,
            b"boolean" => Tag::Boolean,
            b"double" => Tag::Double,
            b"nil" => Tag::Nil,
            b"dateTime.iso8601" => Tag::DateTime,
            b"base64" => Tag::Base64,
            _ => Tag::Unknown,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Start(Tag),
    End(Tag),
    Empty(Tag),
    Text,
    Eof,
}

struct Parser<R> {
    reader: quick_xml::Reader<R>,
    buf: Vec<u8>,
    /// Text read since it was last cleared (entities resolved), cut at
    /// [`MAX_VALUE_BYTES`].
    text: String,
}

fn push_bounded(text: &mut String, s: &str) {
    let room = MAX_VALUE_BYTES.saturating_sub(text.len());
    if s.len() <= room {
        text.push_str(s);
    } else {
        let mut cut = room;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        text.push_str(&s[..cut]);
    }
}

impl<R: BufRead> Parser<R> {
    fn new(reader: R) -> Parser<R> {
        let mut reader = quick_xml::Reader::from_reader(reader);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        config.trim_text(false);
        Parser {
            reader,
            buf: Vec::with_capacity(8192),
            text: String::new(),
        }
    }

    fn xml_error(&self, e: impl std::fmt::Display) -> XmlRpcError {
        malformed(format!("{e} (at byte {})", self.reader.buffer_position()))
    }

    /// The next token; text (with entities resolved) is appended to
    /// `self.text`.
    fn next(&mut self) -> Result<Tok, XmlRpcError> {
        loop {
            self.buf.clear();
            let event = match self.reader.read_event_into(&mut self.buf) {
                Ok(e) => e,
                Err(quick_xml::Error::Io(e)) => {
                    return Err(XmlRpcError::Io(std::io::Error::new(
                        e.kind(),
                        e.to_string(),
                    )));
                }
                Err(e) => {
                    let pos = self.reader.buffer_position();
                    return Err(malformed(format!("{e} (at byte {pos})")));
                }
            };
            let tok = match event {
                Event::Start(e) => Tok::Start(Tag::of(e.local_name().as_ref())),
                Event::End(e) => Tok::End(Tag::of(e.local_name().as_ref())),
                Event::Empty(e) => Tok::Empty(Tag::of(e.local_name().as_ref())),
                Event::Text(t) => {
                    let s = t.xml10_content().map_err(|e| self_error(&e))?;
                    push_bounded(&mut self.text, &s);
                    Tok::Text
                }
                Event::CData(c) => {
                    let s = c.decode().map_err(|e| self_error(&e))?;
                    push_bounded(&mut self.text, &s);
                    Tok::Text
                }
                Event::GeneralRef(r) => {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => c,
                        Ok(None) => match &*r as &[u8] {
                            b"amp" => '&',
                            b"lt" => '<',
                            b"gt" => '>',
                            b"quot" => '"',
                            b"apos" => '\'',
                            other => {
                                let name = String::from_utf8_lossy(other).into_owned();
                                return Err(self.xml_error(format!(
                                    "unknown entity &{};",
                                    shorten(&name, 40)
                                )));
                            }
                        },
                        Err(e) => return Err(self.xml_error(e)),
                    };
                    let mut tmp = [0u8; 4];
                    push_bounded(&mut self.text, resolved.encode_utf8(&mut tmp));
                    Tok::Text
                }
                Event::Eof => Tok::Eof,
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => continue,
            };
            if let Tok::Start(Tag::Unknown) | Tok::End(Tag::Unknown) | Tok::Empty(Tag::Unknown) =
                tok
            {
                return Err(self.xml_error("unexpected element"));
            }
            return Ok(tok);
        }
    }

    /// The next token that is not (whitespace) text; other text between
    /// elements is an error.
    fn next_tag(&mut self) -> Result<Tok, XmlRpcError> {
        self.text.clear();
        loop {
            match self.next()? {
                Tok::Text => continue,
                tok => {
                    if !self.text.trim().is_empty() {
                        let t = shorten(self.text.trim(), 40);
                        return Err(self.xml_error(format!("unexpected text {t:?}")));
                    }
                    return Ok(tok);
                }
            }
        }
    }

    fn expect(&mut self, want: Tok) -> Result<(), XmlRpcError> {
        match self.next_tag()? {
            tok if tok == want => Ok(()),
            Tok::Eof => Err(malformed("the response is truncated")),
            tok => Err(self.xml_error(format!("expected {want:?}, found {tok:?}"))),
        }
    }

    /// The whole response: each element of the top-level array goes to
    /// `each`; a fault becomes [`XmlRpcError::Fault`].
    fn response(
        &mut self,
        mut each: impl FnMut(Value) -> Result<(), XmlRpcError>,
    ) -> Result<(), XmlRpcError> {
        match self.next_tag()? {
            Tok::Start(Tag::MethodResponse) => {}
            Tok::Eof => return Err(malformed("the response is empty")),
            tok => return Err(self.xml_error(format!("expected a methodResponse, found {tok:?}"))),
        }
        match self.next_tag()? {
            Tok::Start(Tag::Params) => {}
            Tok::Start(Tag::Fault) => return Err(self.fault()),
            Tok::Eof => return Err(malformed("the response is truncated")),
            tok => return Err(self.xml_error(format!("expected params, found {tok:?}"))),
        }
        self.expect(Tok::Start(Tag::Param))?;
        self.expect(Tok::Start(Tag::Value))?;
        match self.next_tag()? {
            Tok::Start(Tag::Array) => {}
            Tok::Eof => return Err(malformed("the response is truncated")),
            tok => return Err(self.xml_error(format!("expected an array, found {tok:?}"))),
        }
        match self.next_tag()? {
            Tok::Empty(Tag::Data) => {}
            Tok::Start(Tag::Data) => loop {
                match self.next_tag()? {
                    Tok::Start(Tag::Value) => {
                        let v = self.value(1)?;
                        each(v)?;
                    }
                    Tok::Empty(Tag::Value) => each(Value::Str(String::new()))?,
                    Tok::End(Tag::Data) => break,
                    Tok::Eof => return Err(malformed("the response is truncated")),
                    tok => return Err(self.xml_error(format!("expected a value, found {tok:?}"))),
                }
            },
            Tok::Eof => return Err(malformed("the response is truncated")),
            tok => return Err(self.xml_error(format!("expected data, found {tok:?}"))),
        }
        self.expect(Tok::End(Tag::Array))?;
        self.expect(Tok::End(Tag::Value))?;
        self.expect(Tok::End(Tag::Param))?;
        self.expect(Tok::End(Tag::Params))?;
        self.expect(Tok::End(Tag::MethodResponse))?;
        match self.next_tag()? {
            Tok::Eof => Ok(()),
            tok => Err(self.xml_error(format!("unexpected {tok:?} after the response"))),
        }
    }

    /// After `<fault>`: the fault as an error (or why it is malformed).
    fn fault(&mut self) -> XmlRpcError {
        let result = (|| {
            self.expect(Tok::Start(Tag::Value))?;
            let v = self.value(1)?;
            self.expect(Tok::End(Tag::Fault))?;
            Ok::<_, XmlRpcError>(v)
        })();
        match result {
            Ok(Value::Struct(members)) => {
                let mut code = None;
                let mut message = String::new();
                for (name, value) in members {
                    match (name.as_str(), value) {
                        ("faultCode", Value::Int(c)) => code = Some(c),
                        ("faultString", Value::Str(s)) => message = s,
                        _ => {}
                    }
                }
                match code {
                    Some(code) => XmlRpcError::Fault { code, message },
                    None => malformed("a fault without an integer faultCode"),
                }
            }
            Ok(v) => malformed(format!("a fault that is a {}", v.kind())),
            Err(e) => e,
        }
    }

    /// After `<value>`: the value, up to and including `</value>`.
    fn value(&mut self, depth: usize) -> Result<Value, XmlRpcError> {
        if depth > MAX_DEPTH {
            return Err(self.xml_error("values nested too deep"));
        }
        self.text.clear();
        let tok = loop {
            match self.next()? {
                Tok::Text => continue,
                tok => break tok,
            }
        };
        let value = match tok {
            // No type: the text is a string (whitespace included).
            Tok::End(Tag::Value) => return Ok(Value::Str(std::mem::take(&mut self.text))),
            Tok::Eof => return Err(malformed("the response is truncated")),
            Tok::Start(tag) | Tok::Empty(tag) if !self.text.trim().is_empty() => {
                let _ = tag;
                let t = shorten(self.text.trim(), 40);
                return Err(self.xml_error(format!("text {t:?} beside a typed value")));
            }
            Tok::Empty(Tag::Nil) => Value::Nil,
            Tok::Empty(Tag::String) => Value::Str(String::new()),
            Tok::Empty(Tag::Array) => Value::Array(Vec::new()),
            Tok::Empty(Tag::Struct) => Value::Struct(Vec::new()),
            Tok::Start(Tag::Nil) => {
                self.expect(Tok::End(Tag::Nil))?;
                Value::Nil
            }
            Tok::Start(Tag::String) => Value::Str(self.text_until(Tag::String)?),
            Tok::Start(Tag::DateTime) => Value::Str(self.text_until(Tag::DateTime)?),
            Tok::Start(Tag::Base64) => Value::Str(self.text_until(Tag::Base64)?),
            Tok::Start(Tag::Int) => {
                let t = self.text_until(Tag::Int)?;
                match t.trim().parse::<i64>() {
                    Ok(i) => Value::Int(i),
                    Err(_) => {
                        return Err(self.xml_error(format!("bad integer {:?}", shorten(&t, 40))));
                    }
                }
            }
            Tok::Start(Tag::Double) => {
                let t = self.text_until(Tag::Double)?;
                match t.trim().parse::<f64>() {
                    Ok(d) => Value::Double(d),
                    Err(_) => {
                        return Err(self.xml_error(format!("bad double {:?}", shorten(&t, 40))));
                    }
                }
            }
            Tok::Start(Tag::Boolean) => {
                let t = self.text_until(Tag::Boolean)?;
                match t.trim() {
                    "1" => Value::Bool(true),
                    "0" => Value::Bool(false),
                    other => {
                        return Err(self.xml_error(format!("bad boolean {:?}", shorten(other, 40))));
                    }
                }
            }
            Tok::Start(Tag::Array) => self.array(depth)?,
            Tok::Start(Tag::Struct) => self.structure(depth)?,
            tok => return Err(self.xml_error(format!("unexpected {tok:?} in a value"))),
        };
        self.expect(Tok::End(Tag::Value))?;
        Ok(value)
    }

    /// Text up to `</tag>`; no elements inside.
    fn text_until(&mut self, tag: Tag) -> Result<String, XmlRpcError> {
        self.text.clear();
        loop {
            match self.next()? {
                Tok::Text => continue,
                Tok::End(t) if t == tag => return Ok(std::mem::take(&mut self.text)),
                Tok::Eof => return Err(malformed("the response is truncated")),
                tok => return Err(self.xml_error(format!("unexpected {tok:?} in {tag:?}"))),
            }
        }
    }

    /// After `<array>`: its items, up to and including `</array>`.
    fn array(&mut self, depth: usize) -> Result<Value, XmlRpcError> {
        let mut items = Vec::new();
        match self.next_tag()? {
            Tok::Empty(Tag::Data) => {}
            Tok::Start(Tag::Data) => loop {
                match self.next_tag()? {
                    Tok::Start(Tag::Value) => {
                        if items.len() >= MAX_ITEMS {
                            return Err(self.xml_error("an array with too many items"));
                        }
                        items.push(self.value(depth + 1)?);
                    }
                    Tok::Empty(Tag::Value) => items.push(Value::Str(String::new())),
                    Tok::End(Tag::Data) => break,
                    Tok::Eof => return Err(malformed("the response is truncated")),
                    tok => return Err(self.xml_error(format!("unexpected {tok:?} in data"))),
                }
            },
            Tok::Eof => return Err(malformed("the response is truncated")),
            tok => return Err(self.xml_error(format!("expected data, found {tok:?}"))),
        }
        self.expect(Tok::End(Tag::Array))?;
        Ok(Value::Array(items))
    }

    /// After `<struct>`: its members, up to and including `</struct>`.
    fn structure(&mut self, depth: usize) -> Result<Value, XmlRpcError> {
        let mut members = Vec::new();
        loop {
            match self.next_tag()? {
                Tok::Start(Tag::Member) => {
                    if members.len() >= MAX_ITEMS {
                        return Err(self.xml_error("a struct with too many members"));
                    }
                    self.expect(Tok::Start(Tag::Name))?;
                    let name = self.text_until(Tag::Name)?;
                    let value = match self.next_tag()? {
                        Tok::Start(Tag::Value) => self.value(depth + 1)?,
                        Tok::Empty(Tag::Value) => Value::Str(String::new()),
                        Tok::Eof => return Err(malformed("the response is truncated")),
                        tok => {
                            return Err(self.xml_error(format!("expected a value, found {tok:?}")));
                        }
                    };
                    self.expect(Tok::End(Tag::Member))?;
                    members.push((name, value));
                }
                Tok::End(Tag::Struct) => return Ok(Value::Struct(members)),
                Tok::Eof => return Err(malformed("the response is truncated")),
                tok => return Err(self.xml_error(format!("unexpected {tok:?} in a struct"))),
            }
        }
    }
}

fn self_error(e: &dyn std::fmt::Display) -> XmlRpcError {
    malformed(format!("bad text: {e}"))
}

/// Serialises a fault response (for the fake PyPI and tests).
pub fn fault_response(code: i64, message: &str) -> String {
    format!(
        "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n\
         <member>\n<name>faultCode</name>\n<value><int>{code}</int></value>\n</member>\n\
         <member>\n<name>faultString</name>\n<value><string>{}</string></value>\n</member>\n\
         </struct></value>\n</fault>\n</methodResponse>\n",
        escape(message)
    )
}

/// Escapes text for XML element content.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['&', '<', '>']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Result<Vec<ChangelogEntry>, XmlRpcError> {
        let mut out = Vec::new();
        parse_changelog(xml.as_bytes(), |e| out.push(e))?;
        Ok(out)
    }

    fn entry(
        name: &str,
        version: Option<&str>,
        ts: i64,
        action: Action,
        serial: i64,
    ) -> ChangelogEntry {
        ChangelogEntry {
            name: name.into(),
            version: version.map(Into::into),
            timestamp: ts,
            action,
            serial,
        }
    }

    /// What Python's xmlrpc.server sends for changelog_since_serial.
    const PYPI_SHAPE: &str = "<?xml version='1.0'?>
<methodResponse>
<params>
<param>
<value><array><data>
<value><array><data>
<value><string>foo</string></value>
<value><nil/></value>
<value><int>1500000000</int></value>
<value><string>create</string></value>
<value><int>1000001</int></value>
</data></array></value>
<value><array><data>
<value><string>Foo_Bar</string></value>
<value><string>1.0</string></value>
<value><int>1500000001</int></value>
<value><string>add source file Foo_Bar-1.0.tar.gz</string></value>
<value><int>1000002</int></value>
</data></array></value>
</data></array></value>
</param>
</params>
</methodResponse>
";

    #[test]
    fn pypi_shape() {
        let got = parse(PYPI_SHAPE).unwrap();
        assert_eq!(
            got,
            vec![
                entry("foo", None, 1_500_000_000, Action::Create, 1_000_001),
                entry(
                    "Foo_Bar",
                    Some("1.0"),
                    1_500_000_001,
                    Action::AddFile { source: true },
                    1_000_002
                ),
            ]
        );
    }

    #[test]
    fn untyped_values_entities_and_utf8() {
        let xml = "<methodResponse><params><param><value><array><data>\
            <value><array><data><value>caf\u{e9}&amp;&lt;&#x263A;&#65;</value>\
            <value><string> 1.0 </string></value><value><i4>7</i4></value>\
            <value>add py3 file x.whl</value><value><i8>2</i8></value></data></array></value>\
            </data></array></value></param></params></methodResponse>";
        let got = parse(xml).unwrap();
        assert_eq!(
            got,
            vec![entry(
                "caf\u{e9}&<\u{263a}A",
                Some(" 1.0 "),
                7,
                Action::AddFile { source: false },
                2
            )]
        );
    }

    #[test]
    fn empty_changelog() {
        let xml = "<?xml version='1.0'?>\n<methodResponse><params><param><value><array><data>\n\
                   </data></array></value></param></params></methodResponse>";
        assert_eq!(parse(xml).unwrap(), vec![]);
        let xml = "<methodResponse><params><param><value><array><data/></array></value>\
                   </param></params></methodResponse>";
        assert_eq!(parse(xml).unwrap(), vec![]);
    }

    #[test]
    fn faults() {
        let xml = fault_response(-32500, "HTTPTooManyRequests: rate limited <slow down>");
        match parse(&xml) {
            Err(XmlRpcError::Fault { code, message }) => {
                assert_eq!(code, -32500);
                assert_eq!(message, "HTTPTooManyRequests: rate limited <slow down>");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn other_actions_keep_only_serial_and_time() {
        let xml = PYPI_SHAPE.replace("create", "new release");
        let got = parse(&xml).unwrap();
        assert_eq!(
            got[0],
            entry("", None, 1_500_000_000, Action::Other, 1_000_001)
        );
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        for bad in [
            "",
            "not xml at all",
            "<html><body>502 Bad Gateway</body></html>",
            &PYPI_SHAPE[..PYPI_SHAPE.len() / 2],
            &PYPI_SHAPE[..PYPI_SHAPE.len() - 20],
            "<methodResponse><params><param><value><int>1</int></value></param></params></methodResponse>",
            &PYPI_SHAPE.replace("<int>1000001</int>", "<string>x</string>"),
            &PYPI_SHAPE.replace("<int>1000001</int>", "<int>x</int>"),
            &PYPI_SHAPE.replace("<int>1000001</int>", "<int>99999999999</int>"),
            &PYPI_SHAPE.replace("<value><nil/></value>\n", ""),
            &PYPI_SHAPE.replace("<string>foo</string>", "<string>f&bogus;oo</string>"),
            &PYPI_SHAPE.replace("</methodResponse>", "</methodResponse><x/>"),
            &PYPI_SHAPE.replace("<string>foo</string>", "<frob>foo</frob>"),
            &PYPI_SHAPE.replace(
                "</data></array></value>\n<value><array>",
                "</data></array></valu>\n<value><array>",
            ),
        ] {
            match parse(bad) {
                Err(XmlRpcError::Malformed(why)) => assert!(!why.is_empty()),
                other => panic!("{bad:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn long_values_are_cut_not_refused() {
        let long = "x".repeat(100_000);
        let xml = PYPI_SHAPE.replace("<string>foo</string>", &format!("<string>{long}</string>"));
        let got = parse(&xml).unwrap();
        assert_eq!(got[0].name.len(), MAX_VALUE_BYTES);
        let long = "\u{e9}".repeat(5000);
        let xml = PYPI_SHAPE.replace("<string>foo</string>", &format!("<string>{long}</string>"));
        let got = parse(&xml).unwrap();
        assert!(got[0].name.len() <= MAX_VALUE_BYTES && got[0].name.chars().all(|c| c == '\u{e9}'));
    }

    #[test]
    fn control_characters_pass_through_for_the_caller_to_judge() {
        let xml = PYPI_SHAPE.replace("<string>foo</string>", "<string>f\u{1}o&#0;o</string>");
        // &#0; is not a character at all: refused by the reference resolver.
        assert!(parse(&xml).is_err());
        let xml = PYPI_SHAPE.replace("<string>foo</string>", "<string>f\u{1}oo</string>");
        assert_eq!(&*parse(&xml).unwrap()[0].name, "f\u{1}oo");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = "<value><array><data>".repeat(50);
        let xml = format!(
            "<methodResponse><params><param><value><array><data>{deep}</data></array></value></param></params></methodResponse>"
        );
        assert!(matches!(parse(&xml), Err(XmlRpcError::Malformed(_))));
    }

    #[test]
    fn action_classification_matches_0_23() {
        use Action::*;
        let table = [
            ("create", Create),
            ("create\n", Create),
            ("create project", Other),
            (" create", Other),
            ("add source file foo-1.0.tar.gz", AddFile { source: true }),
            (
                "add py3 file foo-1.0-py3-none-any.whl",
                AddFile { source: false },
            ),
            ("add cp39 file foo.whl", AddFile { source: false }),
            ("add source file", AddFile { source: true }),
            ("add sourcefile x", Other),
            ("add  file x", Other),
            ("add file x", Other),
            ("remove", Remove),
            ("remove project", Remove),
            ("remove release", Remove),
            ("remove release\n", Remove),
            ("remove file foo-1.0.tar.gz", Other),
            ("remove Owner alice", Other),
            ("remove Maintainer bob", Other),
            ("remove project now", Other),
            ("yank release", Yank),
            ("unyank release", Unyank),
            ("yank release foo", Other),
            ("new release", Other),
            ("update classifiers", Other),
            ("", Other),
        ];
        for (action, want) in table {
            assert_eq!(Action::classify(action), want, "{action:?}");
        }
    }

    #[test]
    fn request_body() {
        let body = changelog_request(1234);
        assert!(body.contains("<methodName>changelog_since_serial</methodName>"));
        assert!(body.contains("<value><int>1234</int></value>"));
    }

    #[test]
    fn shorten_escapes_controls() {
        assert_eq!(shorten("a\u{1}b", 10), "a\\u{1}b");
        assert_eq!(shorten("abcdef", 3), "abc...");
    }
}
