//! Wheel files: their names, their `.dist-info/METADATA`, and the
//! requirements in it.
//!
//! Used by the build slave (which reports each wheel it built), by the
//! master's file juggler (which must never trust a file name a slave sends,
//! and writes PEP 658 `.metadata` files) and by piw-import.
//!
//! - [`WheelName`] splits a file name the way piwheels does (package =
//!   first `-` part, version = second, then python, ABI and platform tags
//!   from the end; the retired ABI tag `noabi` becomes `none`) after
//!   [`validate_filename`] has checked that it is a plain, harmless wheel
//!   file name.
//! - [`Metadata`] parses METADATA's RFC 822 header block the way Python's
//!   `email` parser splits it (continuation lines, case-insensitive names,
//!   the block ends at the first blank line or the first line that is not a
//!   header).
//! - [`Requirement`] parses a `Requires-Dist` value (PEP 508) far enough to
//!   know its name and whether its marker restricts it to extras;
//!   [`pip_dependencies`] turns a list of them into piwheels' `"pip"`
//!   dependency list.
//! - [`read_metadata`] finds and reads METADATA inside a wheel, with a size
//!   cap, and [`hash_file`] gives a file's size and lower-case SHA-256.

use std::fmt;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

/// The longest file name accepted (most file systems' limit, in bytes).
pub const MAX_FILENAME_LEN: usize = 255;

/// The largest METADATA read out of a wheel (real ones are a few KiB; long
/// descriptions reach a few hundred).
pub const MAX_METADATA_SIZE: u64 = 16 << 20;

/// Why a file name is not an acceptable wheel file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WheelNameError {
    /// The name is empty.
    Empty,
    /// Longer than [`MAX_FILENAME_LEN`] bytes (the length).
    TooLong(usize),
    /// Contains a NUL byte.
    Nul,
    /// Contains `/` or `\`.
    PathSeparator,
    /// Starts with a dot (`.`, `..`, hidden files).
    LeadingDot,
    /// Contains a character outside `A-Z a-z 0-9 . _ + ! -` (the character).
    BadCharacter(char),
    /// Does not end in `.whl`.
    NotWheel,
    /// The stem does not have 5 or 6 `-` separated parts (the count).
    PartCount(usize),
    /// One of the `-` separated parts is empty.
    EmptyPart,
}

impl fmt::Display for WheelNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WheelNameError::Empty => f.write_str("empty file name"),
            WheelNameError::TooLong(n) => {
                write!(
                    f,
                    "file name is {n} bytes long (at most {MAX_FILENAME_LEN})"
                )
            }
            WheelNameError::Nul => f.write_str("file name contains NUL"),
            WheelNameError::PathSeparator => f.write_str("file name contains a path separator"),
            WheelNameError::LeadingDot => f.write_str("file name starts with a dot"),
            WheelNameError::BadCharacter(c) => {
                write!(f, "file name contains the character {c:?}")
            }
            WheelNameError::NotWheel => f.write_str("file name does not end in .whl"),
            WheelNameError::PartCount(n) => write!(
                f,
                "wheel name has {n} dash-separated parts (needs 5 or 6: \
                 name-version[-build]-python-abi-platform)"
            ),
            WheelNameError::EmptyPart => f.write_str("wheel name has an empty part"),
        }
    }
}

impl std::error::Error for WheelNameError {}

fn allowed_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '!' | '-')
}

/// Checks that `name` is a plain wheel file name that is safe to use as a
/// path component, in a URL and in HTML without escaping: at most 255
/// bytes; no NUL, path separator or leading dot (so never `.` or `..`);
/// only ASCII letters, digits and `. _ + ! -`; ends in `.whl`; and 5 or 6
/// non-empty `-` separated parts.
pub fn validate_filename(name: &str) -> Result<(), WheelNameError> {
    if name.is_empty() {
        return Err(WheelNameError::Empty);
    }
    if name.len() > MAX_FILENAME_LEN {
        return Err(WheelNameError::TooLong(name.len()));
    }
    if name.contains('\0') {
        return Err(WheelNameError::Nul);
    }
    if name.contains(['/', '\\']) {
        return Err(WheelNameError::PathSeparator);
    }
    if name.starts_with('.') {
        return Err(WheelNameError::LeadingDot);
    }
    if let Some(c) = name.chars().find(|&c| !allowed_char(c)) {
        return Err(WheelNameError::BadCharacter(c));
    }
    let stem = name.strip_suffix(".whl").ok_or(WheelNameError::NotWheel)?;
    let parts = stem.split('-').count();
    if !(5..=6).contains(&parts) {
        return Err(WheelNameError::PartCount(parts));
    }
    if stem.split('-').any(str::is_empty) {
        return Err(WheelNameError::EmptyPart);
    }
    Ok(())
}

/// A validated wheel file name and the tags piwheels reads from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelName {
    /// The whole file name.
    pub filename: String,
    /// The first part: the distribution name as written (piwheels'
    /// `package_tag`).
    pub package: String,
    /// The second part (`package_version_tag`).
    pub version: String,
    /// The build tag, when there are 6 parts.
    pub build: Option<String>,
    /// Third part from the end (`py_version_tag`), e.g. `cp311` or `py3`.
    pub python_tag: String,
    /// Second part from the end (`abi_tag`); `noabi` is reported as `none`.
    pub abi_tag: String,
    /// The last part (`platform_tag`), e.g. `linux_armv7l` or `any`.
    pub platform_tag: String,
}

impl WheelName {
    /// Validates and splits a wheel file name.
    pub fn parse(filename: &str) -> Result<WheelName, WheelNameError> {
        validate_filename(filename)?;
        let stem = &filename[..filename.len() - ".whl".len()];
        let parts: Vec<&str> = stem.split('-').collect();
        let n = parts.len();
        let abi = match parts[n - 2] {
            "noabi" => "none",
            other => other,
        };
        Ok(WheelName {
            filename: filename.to_string(),
            package: parts[0].to_string(),
            version: parts[1].to_string(),
            build: (n == 6).then(|| parts[2].to_string()),
            python_tag: parts[n - 3].to_string(),
            abi_tag: abi.to_string(),
            platform_tag: parts[n - 1].to_string(),
        })
    }

    /// The package name canonicalised (PEP 503).
    pub fn canonical_package(&self) -> String {
        canonicalize_name(&self.package)
    }
}

impl fmt::Display for WheelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.filename)
    }
}

/// A project name canonicalised as PEP 503 says: lower case, with every run
/// of `-`, `_` and `.` replaced by one `-` ([`crate::names::canonicalize`]).
pub fn canonicalize_name(name: &str) -> String {
    crate::names::canonicalize(name)
}

/// The header block of a METADATA (or PKG-INFO) file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    headers: Vec<(String, String)>,
}

/// Is this line a header line (`Name: value`) as Python's email parser sees
/// it? The name is one or more printable ASCII characters other than space
/// and `:`.
fn header_split(line: &str) -> Option<(&str, &str)> {
    let colon = line.find(':')?;
    let name = &line[..colon];
    if name.is_empty() || !name.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return None;
    }
    Some((name, &line[colon + 1..]))
}

impl Metadata {
    /// Parses the header block. Invalid UTF-8 is replaced, never an error.
    ///
    /// A line starting with a space or tab continues the previous header;
    /// values are unfolded (the line break is removed, the white space kept)
    /// and trimmed. The block ends at the first empty line, or at the first
    /// line that is neither a header nor a continuation (as in Python's
    /// parser, everything from there on is body, which is not kept).
    pub fn parse(bytes: &[u8]) -> Metadata {
        let text = String::from_utf8_lossy(bytes);
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                match headers.last_mut() {
                    Some((_, value)) => value.push_str(line),
                    None => break,
                }
                continue;
            }
            match header_split(line) {
                Some((name, value)) => headers.push((name.to_string(), value.to_string())),
                None => break,
            }
        }
        for (_, value) in &mut headers {
            *value = value.trim().to_string();
        }
        Metadata { headers }
    }

    /// The first value of a header (names are case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in file order.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// `Name`.
    pub fn name(&self) -> Option<&str> {
        self.get("Name")
    }

    /// `Version`.
    pub fn version(&self) -> Option<&str> {
        self.get("Version")
    }

    /// `Requires-Python`, or `None` if it is missing or empty.
    pub fn requires_python(&self) -> Option<&str> {
        self.get("Requires-Python").filter(|v| !v.is_empty())
    }

    /// Every `Requires-Dist`.
    pub fn requires_dist(&self) -> Vec<&str> {
        self.get_all("Requires-Dist")
    }

    /// piwheels' `"pip"` dependencies: see [`pip_dependencies`].
    pub fn pip_dependencies(&self) -> Vec<String> {
        pip_dependencies(self.requires_dist())
    }
}

/// The canonicalised names of the requirements that apply without any
/// extra, sorted and without duplicates. A requirement whose name cannot be
/// parsed is left out; one whose marker cannot be parsed is kept (it may
/// apply, and its name is known).
pub fn pip_dependencies<'a>(requires_dist: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<String> = requires_dist
        .into_iter()
        .filter_map(|r| match Requirement::parse(r) {
            Ok(req) if req.only_for_extras() => None,
            Ok(req) => Some(canonicalize_name(&req.name)),
            Err(RequirementError::Marker { name, .. }) => Some(canonicalize_name(&name)),
            Err(_) => None,
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Why a requirement could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequirementError {
    /// No valid project name at the start.
    Name(String),
    /// An unterminated `[extras]` list.
    Extras(String),
    /// The name was fine but the environment marker is not valid PEP 508.
    Marker {
        /// The project name, as written.
        name: String,
        /// What is wrong.
        why: String,
    },
}

impl fmt::Display for RequirementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequirementError::Name(r) => write!(f, "no project name in requirement {r:?}"),
            RequirementError::Extras(r) => write!(f, "bad extras in requirement {r:?}"),
            RequirementError::Marker { name, why } => {
                write!(f, "bad environment marker for {name}: {why}")
            }
        }
    }
}

impl std::error::Error for RequirementError {}

/// A `Requires-Dist` value (PEP 508), parsed as far as piwheels needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The project name as written.
    pub name: String,
    /// Extras requested of the dependency (`name[a,b]`).
    pub extras: Vec<String>,
    /// The version specifier or `@ url` part, trimmed, unparsed.
    pub spec: String,
    /// The environment marker, if any.
    pub marker: Option<Marker>,
}

impl Requirement {
    /// Parses a requirement string.
    pub fn parse(text: &str) -> Result<Requirement, RequirementError> {
        let s = text.trim_start();
        let name_len = s
            .char_indices()
            .take_while(|&(_, c)| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
            .last()
            .map_or(0, |(i, c)| i + c.len_utf8());
        let mut name = &s[..name_len];
        // A name must start and end with a letter or digit.
        while name.ends_with(['.', '_', '-']) {
            name = &name[..name.len() - 1];
        }
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(RequirementError::Name(text.to_string()));
        }
        let mut rest = s[name.len()..].trim_start();
        let mut extras = Vec::new();
        if let Some(after) = rest.strip_prefix('[') {
            let close = after
                .find(']')
                .ok_or_else(|| RequirementError::Extras(text.to_string()))?;
            extras = after[..close]
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect();
            rest = after[close + 1..].trim_start();
        }
        // The marker starts at the first ';', except that in the `@ url`
        // form a ';' only ends the URL when white space precedes it.
        let split = if rest.starts_with('@') {
            rest.char_indices()
                .find(|&(i, c)| {
                    c == ';' && i > 0 && rest[..i].ends_with(|p: char| p.is_whitespace())
                })
                .map(|(i, _)| i)
        } else {
            rest.find(';')
        };
        let (spec, marker_text) = match split {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let marker = match marker_text {
            Some(m) => Some(Marker::parse(m).map_err(|why| RequirementError::Marker {
                name: name.to_string(),
                why,
            })?),
            None => None,
        };
        Ok(Requirement {
            name: name.to_string(),
            extras,
            spec: spec.trim().to_string(),
            marker,
        })
    }

    /// Does this requirement apply only when some extra is requested? True
    /// when its marker cannot hold without an `extra == "..."` comparison
    /// being true: every alternative of an `or` needs one, and an `and`
    /// needs one if any of its parts does. `extra != "x"` needs none.
    pub fn only_for_extras(&self) -> bool {
        self.marker.as_ref().is_some_and(Marker::needs_extra)
    }
}

/// A value in a marker comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerValue {
    /// An environment variable such as `python_version` or `extra`.
    Variable(String),
    /// A quoted string.
    Literal(String),
}

/// A PEP 508 environment marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Marker {
    /// `lhs op rhs`.
    Compare(MarkerValue, String, MarkerValue),
    /// Every part must hold.
    And(Vec<Marker>),
    /// At least one part must hold.
    Or(Vec<Marker>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    And,
    Or,
    Op(String),
    Var(String),
    Str(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(Token::Open);
            i += 1;
        } else if c == ')' {
            out.push(Token::Close);
            i += 1;
        } else if c == '\'' || c == '"' {
            let end = chars[i + 1..]
                .iter()
                .position(|&d| d == c)
                .ok_or("unterminated string")?;
            out.push(Token::Str(chars[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if "<>=!~".contains(c) {
            let start = i;
            while i < chars.len() && "<>=!~".contains(chars[i]) {
                i += 1;
            }
            let op: String = chars[start..i].iter().collect();
            if !matches!(
                op.as_str(),
                "<" | "<=" | ">" | ">=" | "==" | "!=" | "~=" | "==="
            ) {
                return Err(format!("unknown operator {op:?}"));
            }
            out.push(Token::Op(op));
        } else if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push(match word.as_str() {
                "and" => Token::And,
                "or" => Token::Or,
                "in" => Token::Op("in".into()),
                "not" => Token::Op("not".into()),
                _ => Token::Var(word),
            });
        } else {
            return Err(format!("unexpected character {c:?}"));
        }
    }
    // `not in` is one operator.
    let mut merged = Vec::with_capacity(out.len());
    let mut iter = out.into_iter().peekable();
    while let Some(t) = iter.next() {
        if t == Token::Op("not".into()) {
            match iter.next() {
                Some(Token::Op(ref o)) if o == "in" => merged.push(Token::Op("not in".into())),
                _ => return Err("'not' without 'in'".into()),
            }
        } else {
            merged.push(t);
        }
    }
    Ok(merged)
}

struct MarkerParser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

/// Parentheses deeper than this are refused (no real marker comes close).
const MAX_MARKER_DEPTH: usize = 32;

impl MarkerParser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self) -> Result<Marker, String> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Marker::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Marker, String> {
        let mut parts = vec![self.atom()?];
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            parts.push(self.atom()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Marker::And(parts)
        })
    }

    fn value(&mut self) -> Result<MarkerValue, String> {
        match self.next() {
            Some(Token::Var(v)) => Ok(MarkerValue::Variable(v)),
            Some(Token::Str(s)) => Ok(MarkerValue::Literal(s)),
            other => Err(format!("expected a variable or a string, found {other:?}")),
        }
    }

    fn atom(&mut self) -> Result<Marker, String> {
        if self.peek() == Some(&Token::Open) {
            self.pos += 1;
            self.depth += 1;
            if self.depth > MAX_MARKER_DEPTH {
                return Err("parentheses nested too deeply".into());
            }
            let inner = self.or()?;
            if self.next() != Some(Token::Close) {
                return Err("missing ')'".into());
            }
            self.depth -= 1;
            return Ok(inner);
        }
        let lhs = self.value()?;
        let op = match self.next() {
            Some(Token::Op(op)) => op,
            other => return Err(format!("expected an operator, found {other:?}")),
        };
        let rhs = self.value()?;
        Ok(Marker::Compare(lhs, op, rhs))
    }
}

impl Marker {
    /// Parses a marker expression (the text after `;`).
    pub fn parse(text: &str) -> Result<Marker, String> {
        let tokens = tokenize(text)?;
        if tokens.is_empty() {
            return Err("empty marker".into());
        }
        let mut p = MarkerParser {
            tokens,
            pos: 0,
            depth: 0,
        };
        let m = p.or()?;
        if p.pos != p.tokens.len() {
            return Err(format!("unexpected {:?}", p.tokens[p.pos]));
        }
        Ok(m)
    }

    /// Can this marker only be true when an extra is requested?
    pub fn needs_extra(&self) -> bool {
        match self {
            Marker::Compare(lhs, op, rhs) => {
                let is_extra =
                    |v: &MarkerValue| matches!(v, MarkerValue::Variable(n) if n == "extra");
                let is_lit = |v: &MarkerValue| matches!(v, MarkerValue::Literal(_));
                (op == "==" || op == "===")
                    && ((is_extra(lhs) && is_lit(rhs)) || (is_lit(lhs) && is_extra(rhs)))
            }
            Marker::And(parts) => parts.iter().any(Marker::needs_extra),
            Marker::Or(parts) => parts.iter().all(Marker::needs_extra),
        }
    }
}

/// Why METADATA could not be read from a wheel.
#[derive(Debug)]
pub enum WheelError {
    /// The file could not be opened or read.
    Io(std::io::Error),
    /// Not a readable zip archive.
    Zip(String),
    /// No METADATA where it should be.
    NoMetadata {
        /// Member names tried.
        tried: Vec<String>,
        /// Members that end in `METADATA`, for the log.
        found: Vec<String>,
    },
    /// METADATA is larger than [`MAX_METADATA_SIZE`].
    TooBig(u64),
}

impl fmt::Display for WheelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WheelError::Io(e) => write!(f, "cannot read wheel: {e}"),
            WheelError::Zip(e) => write!(f, "not a valid wheel (zip) file: {e}"),
            WheelError::NoMetadata { tried, found } => write!(
                f,
                "unable to locate METADATA; attempted: {tried:?}; possible files: {found:?}"
            ),
            WheelError::TooBig(n) => {
                write!(f, "METADATA is {n} bytes (at most {MAX_METADATA_SIZE})")
            }
        }
    }
}

impl std::error::Error for WheelError {}

impl From<std::io::Error> for WheelError {
    fn from(e: std::io::Error) -> Self {
        WheelError::Io(e)
    }
}

impl From<zip::result::ZipError> for WheelError {
    fn from(e: zip::result::ZipError) -> Self {
        match e {
            zip::result::ZipError::Io(e) => WheelError::Io(e),
            other => WheelError::Zip(other.to_string()),
        }
    }
}

/// METADATA as found in a wheel: the member it came from and its raw bytes
/// (what a PEP 658 `.metadata` file must contain, byte for byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelMetadata {
    /// The archive member, e.g. `foo-1.0.dist-info/METADATA`.
    pub member: String,
    /// Its bytes.
    pub raw: Vec<u8>,
}

impl WheelMetadata {
    /// The parsed headers.
    pub fn parse(&self) -> Metadata {
        Metadata::parse(&self.raw)
    }
}

/// Reads `.dist-info/METADATA` from the wheel at `path`, whose file name is
/// `name`. Like piwheels, it looks for `<package>-<version>.dist-info`
/// with the package as written in the file name and then canonicalised;
/// failing both, it accepts the top-level `.dist-info` directory whose name
/// and version match the file name's once canonicalised.
pub fn read_metadata(path: &Path, name: &WheelName) -> Result<WheelMetadata, WheelError> {
    let file = std::fs::File::open(path)?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))?;
    let tried = vec![
        format!("{}-{}.dist-info/METADATA", name.package, name.version),
        format!(
            "{}-{}.dist-info/METADATA",
            name.canonical_package(),
            name.version
        ),
    ];
    let mut member = tried
        .iter()
        .find(|t| zip.index_for_name(t).is_some())
        .cloned();
    if member.is_none() {
        let want = canonicalize_name(&name.package);
        member = zip
            .file_names()
            .find(|m| {
                m.strip_suffix(".dist-info/METADATA")
                    .filter(|dir| !dir.contains('/'))
                    .and_then(|dir| dir.rsplit_once('-'))
                    .is_some_and(|(n, v)| {
                        canonicalize_name(n) == want
                            && canonicalize_name(v) == canonicalize_name(&name.version)
                    })
            })
            .map(str::to_string);
    }
    let Some(member) = member else {
        let mut found: Vec<String> = zip
            .file_names()
            .filter(|m| m.ends_with("METADATA"))
            .map(str::to_string)
            .collect();
        found.sort();
        return Err(WheelError::NoMetadata { tried, found });
    };
    let entry = zip.by_name(&member)?;
    if entry.size() > MAX_METADATA_SIZE {
        return Err(WheelError::TooBig(entry.size()));
    }
    let mut raw = Vec::with_capacity(entry.size() as usize);
    // The declared size may lie; never read past the cap.
    entry.take(MAX_METADATA_SIZE + 1).read_to_end(&mut raw)?;
    if raw.len() as u64 > MAX_METADATA_SIZE {
        return Err(WheelError::TooBig(raw.len() as u64));
    }
    Ok(WheelMetadata { member, raw })
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A file's size and lower-case hex SHA-256, read in 64 KiB blocks.
pub fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 65536];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((size, hex(&hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_like_piwheels() {
        let w = WheelName::parse("numpy-1.26.4-cp311-cp311-linux_armv7l.whl").unwrap();
        assert_eq!(w.package, "numpy");
        assert_eq!(w.version, "1.26.4");
        assert_eq!(w.build, None);
        assert_eq!(w.python_tag, "cp311");
        assert_eq!(w.abi_tag, "cp311");
        assert_eq!(w.platform_tag, "linux_armv7l");
        let w = WheelName::parse("Foo.Bar-2.0-1local-py2.py3-noabi-any.whl").unwrap();
        assert_eq!(w.package, "Foo.Bar");
        assert_eq!(w.build.as_deref(), Some("1local"));
        assert_eq!(w.python_tag, "py2.py3");
        assert_eq!(w.abi_tag, "none");
        assert_eq!(w.canonical_package(), "foo-bar");
        assert_eq!(w.to_string(), "Foo.Bar-2.0-1local-py2.py3-noabi-any.whl");
        assert!(WheelName::parse("torch-2.0.0+cpu-cp311-cp311-linux_x86_64.whl").is_ok());
    }

    #[test]
    fn hostile_names_are_refused() {
        use WheelNameError::*;
        let long = format!("{}-1.0-py3-none-any.whl", "a".repeat(250));
        let cases: Vec<(&str, WheelNameError)> = vec![
            ("", Empty),
            (&long, TooLong(long.len())),
            ("a\0-1.0-py3-none-any.whl", Nul),
            ("../a-1.0-py3-none-any.whl", PathSeparator),
            ("x/../../etc/passwd-1-py3-none-any.whl", PathSeparator),
            ("/etc/a-1.0-py3-none-any.whl", PathSeparator),
            ("a\\b-1.0-py3-none-any.whl", PathSeparator),
            ("..", LeadingDot),
            (".", LeadingDot),
            ("..a-1.0-py3-none-any.whl", LeadingDot),
            (".hidden-1.0-py3-none-any.whl", LeadingDot),
            ("a b-1.0-py3-none-any.whl", BadCharacter(' ')),
            ("a-1.0-py3-none-any.whl\n", BadCharacter('\n')),
            ("a%2f-1.0-py3-none-any.whl", BadCharacter('%')),
            ("é-1.0-py3-none-any.whl", BadCharacter('é')),
            ("a-1.0-py3-none-any.zip", NotWheel),
            ("a-1.0-py3-none-any.WHL", NotWheel),
            ("a-1.0-py3-none-any.whl.exe", NotWheel),
            ("a-1.0.tar.gz", NotWheel),
            ("a-1.0-any.whl", PartCount(3)),
            ("a-1-2-3-4-5-6.whl", PartCount(7)),
            ("a--py3-none-any.whl", EmptyPart),
            ("-1.0-py3-none-any.whl", EmptyPart),
            (".whl", LeadingDot),
            ("whl", NotWheel),
        ];
        for (name, want) in cases {
            assert_eq!(validate_filename(name), Err(want.clone()), "{name:?}");
            assert_eq!(WheelName::parse(name), Err(want), "{name:?}");
        }
        // Exactly 255 bytes is fine.
        let max = format!("{}-1.0-py3-none-any.whl", "a".repeat(255 - 21));
        assert_eq!(max.len(), 255);
        assert!(validate_filename(&max).is_ok());
    }

    #[test]
    fn error_messages_name_the_problem() {
        assert!(
            WheelNameError::TooLong(300)
                .to_string()
                .contains("300 bytes")
        );
        assert!(
            WheelNameError::BadCharacter('%')
                .to_string()
                .contains("'%'")
        );
    }

    #[test]
    fn canonical_names() {
        assert_eq!(canonicalize_name("Foo.Bar"), "foo-bar");
        assert_eq!(canonicalize_name("foo__bar--baz"), "foo-bar-baz");
        assert_eq!(canonicalize_name("ZOPE.interface"), "zope-interface");
        assert_eq!(canonicalize_name("a-_.-b"), "a-b");
        assert_eq!(canonicalize_name("plain"), "plain");
    }

    const METADATA: &str = "Metadata-Version: 2.1\r\n\
Name: Foo_Bar\n\
Version: 1.0\n\
requires-python: >=3.8,\n  <4 \n\
Requires-Dist: Requests[socks] (>=2.0) ; python_version >= \"3.8\"\n\
Requires-Dist: pytest; extra == 'test'\n\
Requires-Dist: Zope.Interface\n\
Requires-Dist: sphinx; (extra == \"docs\" or extra == \"dev\") and python_version > \"3\"\n\
Requires-Dist: colorama; sys_platform == \"win32\" or extra == \"color\"\n\
Requires-Dist: tomli; \"3.11\" > python_version\n\
Requires-Dist: zope-interface>=5\n\
Requires-Dist: yaml; extra != 'noyaml'\n\
Requires-Dist: mock; 'test' == extra\n\
Requires-Dist: broken; python_version >>> \"3\"\n\
Requires-Dist: !!!\n\
Description-Content-Type: text/markdown\n\
\n\
Requires-Dist: in-the-body\n";

    #[test]
    fn metadata_headers() {
        let m = Metadata::parse(METADATA.as_bytes());
        assert_eq!(m.name(), Some("Foo_Bar"));
        assert_eq!(m.get("METADATA-VERSION"), Some("2.1"));
        assert_eq!(m.version(), Some("1.0"));
        assert_eq!(m.requires_python(), Some(">=3.8,  <4"));
        assert_eq!(m.requires_dist().len(), 11);
        assert_eq!(m.get("Description-Content-Type"), Some("text/markdown"));
        assert_eq!(m.get("Nope"), None);
    }

    #[test]
    fn pip_dependencies_leave_out_extras() {
        let m = Metadata::parse(METADATA.as_bytes());
        assert_eq!(
            m.pip_dependencies(),
            [
                "broken",
                "colorama",
                "requests",
                "tomli",
                "yaml",
                "zope-interface"
            ]
        );
    }

    #[test]
    fn header_block_ends_like_pythons() {
        // A line that is not a header ends the block (Python's
        // MissingHeaderBodySeparatorDefect); so does a blank line.
        let m = Metadata::parse(b"Name: a\nnot a header\nVersion: 1\n");
        assert_eq!(m.name(), Some("a"));
        assert_eq!(m.version(), None);
        let m = Metadata::parse(b"Name : a\n");
        assert_eq!(m.name(), None);
        let m = Metadata::parse(b" leading continuation\nName: a\n");
        assert_eq!(m.name(), None);
        let m = Metadata::parse(b"Name: a\n\tb\nRequires-Python:\n");
        assert_eq!(m.name(), Some("a\tb"));
        assert_eq!(m.requires_python(), None);
        let m = Metadata::parse(b"Name: \xff\xfe\n");
        assert_eq!(m.name(), Some("\u{fffd}\u{fffd}"));
        assert_eq!(Metadata::parse(b"").get("Name"), None);
    }

    #[test]
    fn requirements() {
        let r = Requirement::parse("Foo.Bar [a, b] >=1.0,<2 ; python_version<'3.12'").unwrap();
        assert_eq!(r.name, "Foo.Bar");
        assert_eq!(r.extras, ["a", "b"]);
        assert_eq!(r.spec, ">=1.0,<2");
        assert!(!r.only_for_extras());
        let r = Requirement::parse("pkg @ https://x/y;z.whl ; extra == 'a'").unwrap();
        assert_eq!(r.spec, "@ https://x/y;z.whl");
        assert!(r.only_for_extras());
        let r = Requirement::parse("pkg@https://x/y.whl").unwrap();
        assert_eq!(r.spec, "@https://x/y.whl");
        assert_eq!(r.marker, None);
        let r = Requirement::parse("a-").unwrap();
        assert_eq!(r.name, "a");
        assert!(Requirement::parse("").is_err());
        assert!(Requirement::parse("-a").is_err());
        assert!(matches!(
            Requirement::parse("a[b"),
            Err(RequirementError::Extras(_))
        ));
        assert!(matches!(
            Requirement::parse("a; (extra == 'x'"),
            Err(RequirementError::Marker { .. })
        ));
        let r = Requirement::parse("a; platform_machine not in 'x86_64 i686'").unwrap();
        assert_eq!(
            r.marker,
            Some(Marker::Compare(
                MarkerValue::Variable("platform_machine".into()),
                "not in".into(),
                MarkerValue::Literal("x86_64 i686".into())
            ))
        );
    }

    #[test]
    fn markers_that_need_an_extra() {
        let needs = |m: &str| Marker::parse(m).unwrap().needs_extra();
        assert!(needs("extra == 'x'"));
        assert!(needs("extra === \"x\""));
        assert!(needs("'x' == extra"));
        assert!(needs("python_version < '3' and extra == 'x'"));
        assert!(needs("(extra == 'a' or extra == 'b')"));
        assert!(needs(
            "((extra == 'a') or (extra == 'b' and os_name == 'nt'))"
        ));
        assert!(!needs("extra != 'x'"));
        assert!(!needs("extra == extra"));
        assert!(!needs("os_name == 'nt' or extra == 'x'"));
        assert!(!needs("python_version >= '3.8'"));
        assert!(!needs("'a' in extra"));
        for bad in [
            "",
            "extra ==",
            "extra = 'x'",
            "(extra == 'x'",
            "extra == 'x')",
            "extra == 'x",
            "not extra",
            "extra == 'x' and",
            "a == 'b' c",
            "extra == `x`",
        ] {
            assert!(Marker::parse(bad).is_err(), "{bad:?}");
        }
        let deep = format!("{}extra == 'x'{}", "(".repeat(100), ")".repeat(100));
        assert!(Marker::parse(&deep).is_err());
    }

    fn write_wheel(path: &Path, members: &[(&str, &[u8])]) {
        use std::io::Write;
        let file = std::fs::File::create(path).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in members {
            zip.start_file(*name, opts).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
    }

    fn tmp(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("piw-wheel-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn metadata_is_found_under_either_name() {
        let dir = tmp("meta");
        for (file, member) in [
            (
                "Foo.Bar-1.0-py3-none-any.whl",
                "Foo.Bar-1.0.dist-info/METADATA",
            ),
            (
                "Foo.Bar-1.0-py3-none-any.whl",
                "foo-bar-1.0.dist-info/METADATA",
            ),
            (
                "Foo.Bar-1.0-py3-none-any.whl",
                "foo_bar-1.0.dist-info/METADATA",
            ),
        ] {
            let path = dir.join(file);
            write_wheel(
                &path,
                &[
                    ("foo_bar/__init__.py", b""),
                    (member, b"Name: Foo.Bar\nVersion: 1.0\n"),
                ],
            );
            let name = WheelName::parse(file).unwrap();
            let m = read_metadata(&path, &name).unwrap();
            assert_eq!(m.member, member);
            assert_eq!(m.raw, b"Name: Foo.Bar\nVersion: 1.0\n");
            assert_eq!(m.parse().name(), Some("Foo.Bar"));
        }
        // Wrong version, nested, or missing: refused with the candidates.
        for member in [
            "foo_bar-2.0.dist-info/METADATA",
            "sub/foo_bar-1.0.dist-info/METADATA",
            "foo_bar-1.0.dist-info/METADATA.txt",
        ] {
            let path = dir.join("x.whl");
            write_wheel(&path, &[(member, b"Name: x\n")]);
            let name = WheelName::parse("Foo.Bar-1.0-py3-none-any.whl").unwrap();
            match read_metadata(&path, &name) {
                Err(WheelError::NoMetadata { tried, found }) => {
                    assert_eq!(tried.len(), 2);
                    assert!(found.len() <= 1);
                }
                other => panic!("{member}: {other:?}"),
            }
        }
        std::fs::write(dir.join("junk.whl"), b"not a zip").unwrap();
        let name = WheelName::parse("a-1-py3-none-any.whl").unwrap();
        let e = read_metadata(&dir.join("junk.whl"), &name).unwrap_err();
        assert!(matches!(e, WheelError::Zip(_)), "{e}");
        let e = read_metadata(&dir.join("missing.whl"), &name).unwrap_err();
        assert!(matches!(e, WheelError::Io(_)), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hashes() {
        let dir = tmp("hash");
        let p = dir.join("f");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            hash_file(&p).unwrap(),
            (
                3,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".to_string()
            )
        );
        let big = vec![7u8; 200_000];
        std::fs::write(&p, &big).unwrap();
        assert_eq!(hash_file(&p).unwrap().0, 200_000);
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
