//! Records passed to and returned from the data layer.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Replaces control characters (other than tab, newline, carriage return
/// and form feed) with U+FFFD, as piwheels does with every logged text.
/// PostgreSQL text cannot hold NUL, and the rest make logs unreadable.
pub fn sanitize(s: &str) -> std::borrow::Cow<'_, str> {
    fn bad(c: char) -> bool {
        matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{e}'..='\u{1f}' | '\u{7f}')
    }
    if s.chars().any(bad) {
        std::borrow::Cow::Owned(
            s.chars()
                .map(|c| if bad(c) { '\u{fffd}' } else { c })
                .collect(),
        )
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// A download or a search, for `log_download` / `log_search`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLog {
    /// The file downloaded, or the package searched for.
    pub name: String,
    /// The client's address.
    pub host: IpAddr,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// Fields from pip's user agent (all optional).
    pub arch: Option<String>,
    pub distro_name: Option<String>,
    pub distro_version: Option<String>,
    pub os_name: Option<String>,
    pub os_version: Option<String>,
    pub py_name: Option<String>,
    pub py_version: Option<String>,
    pub installer_name: Option<String>,
    pub installer_version: Option<String>,
    pub setuptools_version: Option<String>,
}

impl AccessLog {
    /// A record with only the mandatory fields.
    pub fn new(name: impl Into<String>, host: IpAddr, timestamp: DateTime<Utc>) -> AccessLog {
        AccessLog {
            name: name.into(),
            host,
            timestamp,
            arch: None,
            distro_name: None,
            distro_version: None,
            os_name: None,
            os_version: None,
            py_name: None,
            py_version: None,
            installer_name: None,
            installer_version: None,
            setuptools_version: None,
        }
    }
}

/// A project page, project JSON or web page hit, for `log_project`,
/// `log_json` and `log_page`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HitLog {
    /// The package, or the page.
    pub name: String,
    pub host: IpAddr,
    pub timestamp: DateTime<Utc>,
    pub user_agent: Option<String>,
}

/// One wheel of a successful build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltFile {
    pub filename: String,
    pub filesize: i64,
    pub filehash: String,
    pub package_tag: String,
    pub package_version_tag: String,
    pub py_version_tag: String,
    pub abi_tag: String,
    pub platform_tag: String,
    pub requires_python: Option<String>,
    /// URL prefix the wheel is served from (piwheels always sends
    /// "/simple").
    pub location: String,
    /// (tool, dependency) pairs; tool is "apt", "pip" or "".
    pub dependencies: Vec<(String, String)>,
}

/// A build attempt, for `log_build_success` / `log_build_failure`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildLog {
    pub package: String,
    pub version: String,
    /// The slave's id.
    pub built_by: i32,
    pub duration: Duration,
    /// The slave's native ABI.
    pub abi_tag: String,
    /// True for a success (then `files` lists the wheels).
    pub status: bool,
    pub files: Vec<BuiltFile>,
}

/// What the web writer must redo for a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RewriteCommand {
    /// The project page only.
    Project,
    /// The project page and the simple index.
    Both,
}

impl RewriteCommand {
    /// The value stored in `rewrites_pending.command`.
    pub fn as_str(self) -> &'static str {
        match self {
            RewriteCommand::Project => "PROJECT",
            RewriteCommand::Both => "BOTH",
        }
    }

    /// Parses a stored value.
    pub fn parse(s: &str) -> Option<RewriteCommand> {
        match s {
            "PROJECT" => Some(RewriteCommand::Project),
            "BOTH" => Some(RewriteCommand::Both),
            _ => None,
        }
    }
}

/// One entry of the web writer's saved buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewritePending {
    pub package: String,
    pub added_at: DateTime<Utc>,
    pub command: RewriteCommand,
}

/// The result of `get_statistics()` plus `get_builds_last_hour()`.
#[derive(Debug, Clone, PartialEq)]
pub struct Statistics {
    /// Total build time (durations of a week or more left out).
    pub builds_time: Duration,
    /// Bytes of wheels (armv6l left out).
    pub builds_size: i64,
    pub packages_built: i32,
    pub files_count: i32,
    pub new_last_hour: i32,
    pub downloads_last_month: i32,
    pub downloads_last_hour: i32,
    /// Builds in the last hour per active ABI.
    pub builds_last_hour: std::collections::BTreeMap<String, i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_replaces_control_characters_only() {
        assert_eq!(sanitize("plain\ttext\n\r\x0c"), "plain\ttext\n\r\x0c");
        assert_eq!(sanitize("a\0b\x1bc\x7f"), "a\u{fffd}b\u{fffd}c\u{fffd}");
        assert!(matches!(sanitize("ok"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn rewrite_commands_round_trip() {
        for c in [RewriteCommand::Project, RewriteCommand::Both] {
            assert_eq!(RewriteCommand::parse(c.as_str()), Some(c));
        }
        assert_eq!(RewriteCommand::parse("PKGBOTH"), None);
    }
}
