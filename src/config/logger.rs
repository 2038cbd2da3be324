//! The settings of `piw-logger`: piwheels' options (`--format`,
//! `--log-queue`, `--drop`, the common `-c -q -v -l`) and its positional
//! log files.

use std::ffi::OsString;
use std::path::PathBuf;

use super::master::defaults;
use super::{ConfigError, Kind, LogSettings, Opt, Parsed, Program, Settings, default_config_files};
use crate::logger::format::{LogFormat, format_string};

const LOGGER_OPTS: &[Opt] = &[
    Opt::value(
        None,
        "--format",
        "FORMAT",
        Some("combined"),
        "The Apache log format that log lines will be expected to be in; the short-cuts \
         common, combined and common_vhost can be used in addition to Apache LogFormat \
         strings",
    ),
    Opt::value(
        None,
        "--log-queue",
        "ADDR",
        Some(defaults::LOG_QUEUE),
        "The address of the queue used by piw-logger; this should always be an ipc address",
    ),
    Opt::flag(
        None,
        "--drop",
        "Drop log records if unable to send them to the master after a short timeout \
         (10 ms); this should generally be specified when piw-logger is used as a piped \
         log script",
    ),
];

/// piw-logger's option table, for the parser and `--help`.
pub const PROGRAM: Program = Program {
    name: "piw-logger",
    description: "Reads web server access logs in Apache's formats (from files, or from standard input as a piped log program) and sends every download, search, project page and JSON hit to the master, which records them for the statistics. Runs on the master's host.",
    opts: LOGGER_OPTS,
    epilog: "positional arguments:
  files                 The log file(s) to load into the master; if omitted or - then
                        stdin will be read which is the default for piped log usage;
                        files ending in .gz are decompressed

Lines that do not fit the format are reported and skipped. The exit status is 1 if the
master's log queue cannot be reached (without --drop) or a file cannot be read.",
};

/// piw-logger's validated settings.
#[derive(Debug, Clone)]
pub struct LoggerConfig {
    /// The `LogFormat` string (short-cuts already expanded).
    pub format: String,
    /// Log files to read in order; `-` is stdin.
    pub files: Vec<String>,
    pub log_queue: String,
    pub drop: bool,
    pub log: LogSettings,
}

/// What the command line asked piw-logger to do.
#[derive(Debug)]
pub enum Command {
    Help(String),
    Version(String),
    Run(LoggerConfig),
}

impl LoggerConfig {
    /// Parses the process's arguments and the default config files.
    pub fn from_env() -> Result<Command, ConfigError> {
        LoggerConfig::parse(
            std::env::args_os().skip(1).collect(),
            &default_config_files(),
        )
    }

    /// Parses `args` (without the program name).
    pub fn parse(args: Vec<OsString>, default_files: &[PathBuf]) -> Result<Command, ConfigError> {
        let (options, files) = split_positionals(&PROGRAM, args);
        match PROGRAM.parse(options, default_files)? {
            Parsed::Help(h) => Ok(Command::Help(h)),
            Parsed::Version(v) => Ok(Command::Version(v)),
            Parsed::Run(s) => LoggerConfig::from_settings(&s, files).map(Command::Run),
        }
    }

    fn from_settings(s: &Settings, files: Vec<String>) -> Result<LoggerConfig, ConfigError> {
        let bad =
            |key: &str, why: &str| ConfigError(format!("piw-logger: {}: {why}", s.describe(key)));
        let format = format_string(&s.value("format")).to_owned();
        LogFormat::new(&format).map_err(|e| bad("format", &e.0))?;
        let log_queue = s.value("log-queue");
        if !log_queue.contains("://") {
            return Err(bad(
                "log-queue",
                &format!("{log_queue:?} is not a ZeroMQ address such as ipc:///tmp/piw-logger"),
            ));
        }
        let files = if files.is_empty() {
            vec!["-".to_owned()]
        } else {
            files
        };
        Ok(LoggerConfig {
            format,
            files,
            log_queue,
            drop: s.flag("drop"),
            log: LogSettings::from_settings(s),
        })
    }
}

/// Separates positional arguments from options, using the program's option
/// table to know which options take a value. `-` alone is positional, and
/// so is everything after `--`. Unknown options stay with the options, so
/// the parser reports them.
pub fn split_positionals(program: &Program, args: Vec<OsString>) -> (Vec<OsString>, Vec<String>) {
    let takes_value = |arg: &str| {
        super::COMMON_OPTS
            .iter()
            .chain(program.opts.iter())
            .any(|o| o.kind != Kind::Flag && (o.long == arg || o.short == Some(arg)))
    };
    let mut options = Vec::new();
    let mut positionals = Vec::new();
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        let Some(text) = arg.to_str().map(str::to_owned) else {
            options.push(arg);
            continue;
        };
        if text == "--" {
            positionals.extend(iter.by_ref().map(|a| a.to_string_lossy().into_owned()));
            break;
        }
        if text == "-" || !text.starts_with('-') {
            positionals.push(text);
            continue;
        }
        let needs_next = !text.contains('=') && takes_value(&text);
        options.push(arg);
        if needs_next {
            if let Some(v) = iter.next() {
                options.push(v);
            }
        }
    }
    (options, positionals)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<LoggerConfig, ConfigError> {
        match LoggerConfig::parse(a.iter().map(OsString::from).collect(), &[])? {
            Command::Run(c) => Ok(c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_are_piwheels() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.files, ["-"]);
        assert_eq!(c.log_queue, "ipc:///tmp/piw-logger");
        assert!(!c.drop);
        assert_eq!(c.format, crate::logger::format::COMBINED);
    }

    #[test]
    fn files_and_options_mix() {
        let c = parse(&[
            "a.log",
            "--log-queue",
            "ipc:///x/y",
            "-",
            "--drop",
            "-v",
            "b.log.gz",
            "--format=common",
            "--",
            "--weird-name",
        ])
        .unwrap();
        assert_eq!(c.files, ["a.log", "-", "b.log.gz", "--weird-name"]);
        assert_eq!(c.log_queue, "ipc:///x/y");
        assert!(c.drop);
        assert_eq!(c.format, crate::logger::format::COMMON);
        assert_eq!(c.log.console_level, log::LevelFilter::Info);
    }

    #[test]
    fn bad_options_are_one_line_errors() {
        let e = parse(&["--format", "%h %Q"]).unwrap_err();
        assert!(e.0.contains("--format") && e.0.contains("%Q"), "{e}");
        let e = parse(&["--log-queue", "nowhere"]).unwrap_err();
        assert!(e.0.contains("--log-queue"), "{e}");
        let e = parse(&["--bogus"]).unwrap_err();
        assert!(e.0.contains("--bogus"), "{e}");
    }

    #[test]
    fn help_mentions_the_files_and_drop() {
        match LoggerConfig::parse(vec!["--help".into()], &[]).unwrap() {
            Command::Help(h) => {
                assert!(h.contains("--drop") && h.contains("files") && h.contains("--log-queue"));
            }
            other => panic!("{other:?}"),
        }
    }
}
