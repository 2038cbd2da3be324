//! The configuration-file syntax piwheels accepts (configargparse's default
//! parser): one setting a line as `key = value`, `key: value`, `key value`
//! or a bare `key` (a flag); the key may carry leading `--`; `#` and `;`
//! start comments (inline only after white space, so `#` inside a DSN
//! password survives); `[section]` and `---` lines are ignored, which is why
//! the `[master]` heading in piwheels' docs is only decoration; lists are
//! written `[a, b, c]`.

use std::io;
use std::path::{Path, PathBuf};

/// One `key = value` line of a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    /// `None` for a bare key (a flag switched on).
    pub value: Option<String>,
    /// 1-based line number, for error messages.
    pub line: usize,
}

/// A parsed configuration file.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub entries: Vec<Entry>,
}

/// A file that could not be read or parsed.
#[derive(Debug)]
pub struct FileError {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub reason: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(n) => write!(f, "{}:{}: {}", self.path.display(), n, self.reason),
            None => write!(f, "{}: {}", self.path.display(), self.reason),
        }
    }
}

impl ConfigFile {
    /// Reads and parses a configuration file.
    pub fn read(path: &Path) -> Result<ConfigFile, FileError> {
        let text = std::fs::read(path).map_err(|e| FileError {
            path: path.to_path_buf(),
            line: None,
            reason: io_reason(&e),
        })?;
        let text = String::from_utf8(text).map_err(|_| FileError {
            path: path.to_path_buf(),
            line: None,
            reason: "not valid UTF-8 text".to_string(),
        })?;
        let entries = parse_config_text(&text).map_err(|(line, reason)| FileError {
            path: path.to_path_buf(),
            line: Some(line),
            reason,
        })?;
        Ok(ConfigFile {
            path: path.to_path_buf(),
            entries,
        })
    }
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

/// Parses the text of a configuration file into entries, or returns the
/// 1-based line number and reason of the first bad line.
pub fn parse_config_text(text: &str) -> Result<Vec<Entry>, (usize, String)> {
    let mut entries = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = strip_comment(raw).trim();
        if line.is_empty() || line.starts_with("---") || is_section(line) {
            continue;
        }
        let line = line.strip_prefix("--").unwrap_or(line);
        let split = line
            .find(|c: char| c == '=' || c == ':' || c.is_whitespace())
            .unwrap_or(line.len());
        let key = &line[..split];
        if key.is_empty() {
            return Err((idx + 1, format!("cannot understand {:?}", raw.trim())));
        }
        let rest = line[split..].trim_start();
        let rest = rest
            .strip_prefix(['=', ':'])
            .map(str::trim_start)
            .unwrap_or(rest);
        let value = if rest.is_empty() {
            None
        } else {
            Some(unquote(rest).to_string())
        };
        entries.push(Entry {
            key: key.to_string(),
            value,
            line: idx + 1,
        });
    }
    Ok(entries)
}

fn is_section(line: &str) -> bool {
    line.starts_with('[') && line.ends_with(']') && !line.contains('=')
}

/// Removes a comment: a line starting with `#` or `;`, or a `#`/`;` that
/// follows white space.
fn strip_comment(line: &str) -> &str {
    let trimmed = line.trim_start();
    if trimmed.starts_with('#') || trimmed.starts_with(';') {
        return "";
    }
    let bytes = line.as_bytes();
    for i in 1..bytes.len() {
        if (bytes[i] == b'#' || bytes[i] == b';') && bytes[i - 1].is_ascii_whitespace() {
            return &line[..i];
        }
    }
    line
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// Splits a list value `[a, b, c]` (or a single value) into its items.
pub fn split_list(value: &str) -> Vec<String> {
    match value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        Some(inner) => inner
            .split(',')
            .map(|s| unquote(s.trim()).to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        None => vec![value.to_string()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(text: &str) -> Vec<(String, Option<String>)> {
        parse_config_text(text)
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect()
    }

    #[test]
    fn every_separator_style() {
        let got = kv("a = 1\nb: 2\nc 3\n--d 4\ne\nf=\"quoted value\"\n");
        let want: Vec<(String, Option<String>)> = [
            ("a", Some("1")),
            ("b", Some("2")),
            ("c", Some("3")),
            ("d", Some("4")),
            ("e", None),
            ("f", Some("quoted value")),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn comments_sections_and_blank_lines() {
        let got = kv("# comment\n; also\n[master]\n---\n\ndsn = postgres://u:p#w@h/db ; note\n");
        assert_eq!(
            got,
            vec![("dsn".to_string(), Some("postgres://u:p#w@h/db".to_string()))]
        );
    }

    #[test]
    fn url_values_keep_their_colons() {
        let got = kv("slave-queue = tcp://*:5555\npypi-simple: https://pypi.org/simple\n");
        assert_eq!(got[0].1.as_deref(), Some("tcp://*:5555"));
        assert_eq!(got[1].1.as_deref(), Some("https://pypi.org/simple"));
    }

    #[test]
    fn lists() {
        assert_eq!(split_list("[a, 'b', c ]"), ["a", "b", "c"]);
        assert_eq!(split_list("single"), ["single"]);
        assert!(split_list("[]").is_empty());
    }

    #[test]
    fn bad_line_is_reported_with_its_number() {
        let err = parse_config_text("ok = 1\n= nokey\n").unwrap_err();
        assert_eq!(err.0, 2);
    }
}
