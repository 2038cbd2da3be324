//! The settings of `piw-remove`: piwheels' `package [version]`, `-y`,
//! `-b/--builds`, `-s/--skip`, `--yank`, `--import-queue`, plus our
//! `--reply-timeout`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::import::{
    Command, DEBUG, IMPORT_QUEUE, REPLY_TIMEOUT_OPT, YES, package_and_version, parse_tool,
    queue_address, reply_timeout, usage,
};
use super::{ConfigError, LogSettings, Opt, Program, Settings};

const REMOVE_OPTS: &[Opt] = &[
    YES,
    Opt::flag(
        Some("-b"),
        "--builds",
        "Remove builds and files for this package / version, but don't delete from the \
         database (requeue unless --skip also given)",
    ),
    Opt::value(
        Some("-s"),
        "--skip",
        "REASON",
        None,
        "Mark the package / version as skipped to prevent future build attempts (remove \
         and skip if --builds also given)",
    ),
    Opt::flag(None, "--yank", "Mark a version as yanked"),
    IMPORT_QUEUE,
    DEBUG,
    REPLY_TIMEOUT_OPT,
];

/// piw-remove's option table, for the parser and `--help`.
pub const PROGRAM: Program = Program {
    name: "piw-remove",
    description: "Removes a version or a whole package from the master's database and web site, its wheels and pages included, or marks a version yanked; it can also stop the package or version from being built again. Talks to the master's import queue, so it runs on the master's host.",
    opts: REMOVE_OPTS,
    epilog: "positional arguments:
  package               The name of the package to remove
  version               The version of the package to remove; if omitted, removes the
                        entire package

Exit status: 0 when the master did it; 1 when the package or version is unknown or the
master could not be reached; 2 for usage errors or when the user declines.",
};

/// piw-remove's validated settings.
#[derive(Debug, Clone)]
pub struct RemoveConfig {
    pub package: String,
    pub version: Option<String>,
    pub yes: bool,
    pub builds: bool,
    pub skip: String,
    pub yank: bool,
    pub import_queue: String,
    pub reply_timeout: Duration,
    pub log: LogSettings,
}

impl RemoveConfig {
    /// Parses the process's arguments and the default config files.
    pub fn from_env() -> Result<Command<RemoveConfig>, ConfigError> {
        RemoveConfig::parse(
            std::env::args_os().skip(1).collect(),
            &super::default_config_files(),
        )
    }

    /// Parses `args` (without the program name).
    pub fn parse(
        args: Vec<OsString>,
        default_files: &[PathBuf],
    ) -> Result<Command<RemoveConfig>, ConfigError> {
        parse_tool(&PROGRAM, args, default_files, RemoveConfig::from_settings)
    }

    fn from_settings(s: &Settings, args: Vec<String>) -> Result<RemoveConfig, ConfigError> {
        let (package, version) = package_and_version(&PROGRAM, &args)?;
        let yank = s.flag("yank");
        if yank && version.is_none() {
            // piwheels ignores it here; a whole package cannot be yanked.
            return Err(usage(&PROGRAM, "--yank needs a version"));
        }
        Ok(RemoveConfig {
            package,
            version,
            yes: s.flag("yes"),
            builds: s.flag("builds"),
            skip: s.value("skip"),
            yank,
            import_queue: queue_address(&PROGRAM, s, "import-queue")?,
            reply_timeout: reply_timeout(&PROGRAM, s)?,
            log: LogSettings::from_settings(s),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<RemoveConfig, ConfigError> {
        match RemoveConfig::parse(a.iter().map(OsString::from).collect(), &[])? {
            Command::Run(c) => Ok(c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn options() {
        let c = parse(&["foo"]).unwrap();
        assert_eq!(c.version, None);
        assert!(!c.builds && !c.yank && !c.yes);
        assert_eq!(c.skip, "");
        let c = parse(&["foo", "1.0", "-b", "-s", "gone", "--yank", "-y"]).unwrap();
        assert_eq!(c.version.as_deref(), Some("1.0"));
        assert!(c.builds && c.yank && c.yes);
        assert_eq!(c.skip, "gone");
        assert!(parse(&[]).unwrap_err().0.contains("no package"));
        assert!(parse(&["foo", "--yank"]).unwrap_err().0.contains("--yank"));
        assert!(parse(&["a", "b", "c"]).unwrap_err().0.contains("too many"));
    }
}
