//! The settings of `piw-rebuild`: piwheels' `part [package]`, `-y`,
//! `--import-queue`, plus our `--reply-timeout`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::import::{
    Command, DEBUG, IMPORT_QUEUE, REPLY_TIMEOUT_OPT, YES, parse_tool, queue_address, reply_timeout,
    usage,
};
use super::{ConfigError, LogSettings, Opt, Program, Settings};
use crate::protocol::RebuildPart;

const REBUILD_OPTS: &[Opt] = &[YES, IMPORT_QUEUE, DEBUG, REPLY_TIMEOUT_OPT];

/// piw-rebuild's option table, for the parser and `--help`.
pub const PROGRAM: Program = Program {
    name: "piw-rebuild",
    description: "Asks the master to write web pages again: the home page, the search index, or one or every project's pages and simple index. Talks to the master's import queue, so it runs on the master's host.",
    opts: REBUILD_OPTS,
    epilog: "positional arguments:
  part                  The part of the website to rebuild: 'home' (the home page),
                        'search' (the search index), 'project' (project pages) or
                        'index' (simple index and project pages; 'both' is a synonym)
  package               For 'project' or 'index', the package whose pages are rebuilt;
                        if omitted, pages are rebuilt for ALL packages

Exit status: 0 when the request was queued; 1 when the package is unknown or the master
could not be reached; 2 for usage errors or when the user declines.",
};

/// piw-rebuild's validated settings.
#[derive(Debug, Clone)]
pub struct RebuildConfig {
    pub part: RebuildPart,
    pub yes: bool,
    pub import_queue: String,
    pub reply_timeout: Duration,
    pub log: LogSettings,
}

impl RebuildConfig {
    /// Parses the process's arguments and the default config files.
    pub fn from_env() -> Result<Command<RebuildConfig>, ConfigError> {
        RebuildConfig::parse(
            std::env::args_os().skip(1).collect(),
            &super::default_config_files(),
        )
    }

    /// Parses `args` (without the program name).
    pub fn parse(
        args: Vec<OsString>,
        default_files: &[PathBuf],
    ) -> Result<Command<RebuildConfig>, ConfigError> {
        parse_tool(&PROGRAM, args, default_files, RebuildConfig::from_settings)
    }

    fn from_settings(s: &Settings, args: Vec<String>) -> Result<RebuildConfig, ConfigError> {
        let (part, package) = match args.as_slice() {
            [part] => (part.as_str(), None),
            [part, pkg] => (part.as_str(), Some(pkg.clone())),
            [] => return Err(usage(&PROGRAM, "no part given")),
            _ => return Err(usage(&PROGRAM, "too many arguments")),
        };
        if package.as_ref().is_some_and(|p| p.trim().is_empty()) {
            return Err(usage(&PROGRAM, "the package must not be empty"));
        }
        let part = match (part, package) {
            ("home", None) => RebuildPart::Home,
            ("search", None) => RebuildPart::Search,
            ("home" | "search", Some(_)) => {
                return Err(usage(&PROGRAM, &format!("part {part} takes no package")));
            }
            ("project", p) => RebuildPart::Project(p),
            ("index" | "both", p) => RebuildPart::Both(p),
            (other, _) => {
                return Err(usage(
                    &PROGRAM,
                    &format!(
                        "invalid website part {other:?} (expected home, search, project or index)"
                    ),
                ));
            }
        };
        Ok(RebuildConfig {
            part,
            yes: s.flag("yes"),
            import_queue: queue_address(&PROGRAM, s, "import-queue")?,
            reply_timeout: reply_timeout(&PROGRAM, s)?,
            log: LogSettings::from_settings(s),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<RebuildConfig, ConfigError> {
        match RebuildConfig::parse(a.iter().map(OsString::from).collect(), &[])? {
            Command::Run(c) => Ok(c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parts() {
        assert_eq!(parse(&["home"]).unwrap().part, RebuildPart::Home);
        assert_eq!(parse(&["search", "-y"]).unwrap().part, RebuildPart::Search);
        assert_eq!(
            parse(&["project"]).unwrap().part,
            RebuildPart::Project(None)
        );
        assert_eq!(
            parse(&["index", "foo"]).unwrap().part,
            RebuildPart::Both(Some("foo".into()))
        );
        assert_eq!(parse(&["both"]).unwrap().part, RebuildPart::Both(None));
        assert!(
            parse(&["home", "foo"])
                .unwrap_err()
                .0
                .contains("no package")
        );
        assert!(
            parse(&["pages"])
                .unwrap_err()
                .0
                .contains("invalid website part")
        );
        assert!(parse(&[]).unwrap_err().0.contains("no part"));
    }
}
