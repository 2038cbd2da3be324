//! The settings of `piw-add`: piwheels' `package [version]`, `-y`,
//! `-s/--skip`, `--unskip`, `-d/--description`, `-a/--alias`,
//! `-r/--released`, `--yank`, `--unyank`, `--import-queue`, plus our
//! `--pypi-json` and `--reply-timeout`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::import::{
    Command, DEBUG, IMPORT_QUEUE, REPLY_TIMEOUT_OPT, YES, bad, package_and_version, parse_tool,
    queue_address, reply_timeout, usage,
};
use super::master::defaults;
use super::{ConfigError, LogSettings, Opt, Program, Settings};
use crate::names::canonicalize;

/// The format of `--released`, as piwheels reads it.
pub const RELEASED_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

const ADD_OPTS: &[Opt] = &[
    YES,
    Opt::value(
        Some("-s"),
        "--skip",
        "REASON",
        None,
        "Mark the package or version with a skip reason to prevent build attempts",
    ),
    Opt::flag(
        None,
        "--unskip",
        "Remove a skip reason for the package or version to enable build attempts",
    ),
    Opt::value(
        Some("-d"),
        "--description",
        "TEXT",
        None,
        "The package description; defaults to retrieving the description from PyPI",
    ),
    Opt::multi(
        Some("-a"),
        "--alias",
        "NAME",
        "A package alias to use; may be specified multiple times",
    ),
    Opt::value(
        Some("-r"),
        "--released",
        "TIMESTAMP",
        None,
        "The version's release date, as YYYY-MM-DD HH:MM:SS in UTC (can only be provided \
         for a new version, cannot be updated); defaults to now",
    ),
    Opt::flag(
        None,
        "--yank",
        "Mark the version as yanked (can only be applied to a new version - use piw-remove \
         to yank a known version)",
    ),
    Opt::flag(None, "--unyank", "Mark a known version as not yanked"),
    IMPORT_QUEUE,
    DEBUG,
    Opt::value(
        None,
        "--pypi-json",
        "URL",
        Some(defaults::PYPI_JSON),
        "The root of PyPI's JSON API, where a new package's description is looked up",
    ),
    REPLY_TIMEOUT_OPT,
];

/// piw-add's option table, for the parser and `--help`.
pub const PROGRAM: Program = Program {
    name: "piw-add",
    description: "Adds a package, or a version of a package, to the master's database by hand (for example one PyPI does not list), or changes what is recorded about it: its description, aliases, whether it is skipped, yanked or binary-only. Talks to the master's import queue, so it runs on the master's host.",
    opts: ADD_OPTS,
    epilog: "positional arguments:
  package               The name of the package to add
  version               The version of the package to add; if omitted, adds the package only

Exit status: 0 when the master added or updated it; 1 when the master refused (unknown
package, skip or yank of a known version) or could not be reached; 2 for usage errors or
when the user declines.",
};

/// piw-add's validated settings.
#[derive(Debug, Clone)]
pub struct AddConfig {
    pub package: String,
    pub version: Option<String>,
    pub yes: bool,
    pub skip: String,
    pub unskip: bool,
    pub description: Option<String>,
    pub aliases: Vec<String>,
    pub released: DateTime<Utc>,
    pub yank: bool,
    pub unyank: bool,
    pub import_queue: String,
    pub pypi_json: String,
    pub reply_timeout: Duration,
    pub log: LogSettings,
}

impl AddConfig {
    /// Parses the process's arguments and the default config files.
    pub fn from_env() -> Result<Command<AddConfig>, ConfigError> {
        AddConfig::parse(
            std::env::args_os().skip(1).collect(),
            &super::default_config_files(),
        )
    }

    /// Parses `args` (without the program name).
    pub fn parse(
        args: Vec<OsString>,
        default_files: &[PathBuf],
    ) -> Result<Command<AddConfig>, ConfigError> {
        parse_tool(&PROGRAM, args, default_files, AddConfig::from_settings)
    }

    fn from_settings(s: &Settings, args: Vec<String>) -> Result<AddConfig, ConfigError> {
        let (package, version) = package_and_version(&PROGRAM, &args)?;
        let canon = canonicalize(&package);
        let aliases = s.all("alias").to_vec();
        if let Some(a) = aliases.iter().find(|a| canonicalize(a) != canon) {
            return Err(bad(
                &PROGRAM,
                s,
                "alias",
                &format!("alias {a} does not match canon: {canon}"),
            ));
        }
        let (unskip, yank, unyank) = (s.flag("unskip"), s.flag("yank"), s.flag("unyank"));
        if unskip && !s.value("skip").is_empty() {
            return Err(usage(&PROGRAM, "--skip and --unskip contradict each other"));
        }
        if yank && unyank {
            return Err(usage(&PROGRAM, "--yank and --unyank contradict each other"));
        }
        if version.is_none() {
            let given = [
                ("released", s.get("released").is_some()),
                ("yank", yank),
                ("unyank", unyank),
            ];
            if let Some((key, _)) = given.iter().find(|(_, set)| *set) {
                return Err(usage(&PROGRAM, &format!("--{key} needs a version")));
            }
        }
        let released = match s.get("released") {
            None => Utc::now(),
            Some(text) => NaiveDateTime::parse_from_str(text.trim(), RELEASED_FORMAT)
                .map(|t| t.and_utc())
                .map_err(|e| {
                    bad(
                        &PROGRAM,
                        s,
                        "released",
                        &format!("{text:?}: {e} (expected YYYY-MM-DD HH:MM:SS)"),
                    )
                })?,
        };
        Ok(AddConfig {
            package,
            version,
            yes: s.flag("yes"),
            skip: s.value("skip"),
            unskip,
            description: s.get("description").map(str::to_string),
            aliases,
            released,
            yank,
            unyank,
            import_queue: queue_address(&PROGRAM, s, "import-queue")?,
            pypi_json: s.value("pypi-json"),
            reply_timeout: reply_timeout(&PROGRAM, s)?,
            log: LogSettings::from_settings(s),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<AddConfig, ConfigError> {
        match AddConfig::parse(a.iter().map(OsString::from).collect(), &[])? {
            Command::Run(c) => Ok(c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn package_and_version() {
        let c = parse(&["Foo_Bar"]).unwrap();
        assert_eq!((c.package.as_str(), c.version), ("Foo_Bar", None));
        assert_eq!(c.skip, "");
        assert!(!c.yes && !c.unskip && !c.yank && !c.unyank);
        let c = parse(&[
            "foo",
            "1.0",
            "-y",
            "-s",
            "broken",
            "-a",
            "Foo",
            "--alias=FOO",
            "-r",
            "2020-01-02 03:04:05",
            "--yank",
            "-d",
            "A thing",
        ])
        .unwrap();
        assert_eq!(c.version.as_deref(), Some("1.0"));
        assert_eq!(c.skip, "broken");
        assert_eq!(c.aliases, ["Foo", "FOO"]);
        assert_eq!(c.released.to_rfc3339(), "2020-01-02T03:04:05+00:00");
        assert!(c.yes && c.yank);
        assert_eq!(c.description.as_deref(), Some("A thing"));
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        assert!(parse(&[]).unwrap_err().0.contains("no package"));
        assert!(parse(&["a", "1", "x"]).unwrap_err().0.contains("too many"));
        let e = parse(&["foo", "-a", "bar"]).unwrap_err();
        assert!(e.0.contains("does not match canon"), "{e}");
        let e = parse(&["foo", "1", "-r", "yesterday"]).unwrap_err();
        assert!(e.0.contains("--released"), "{e}");
        let e = parse(&["foo", "--yank"]).unwrap_err();
        assert!(e.0.contains("needs a version"), "{e}");
        let e = parse(&["foo", "1", "--yank", "--unyank"]).unwrap_err();
        assert!(e.0.contains("contradict"), "{e}");
        let e = parse(&["foo", "-s", "x", "--unskip"]).unwrap_err();
        assert!(e.0.contains("contradict"), "{e}");
    }
}
