//! Command-line and configuration-file handling shared by every `piw-*`
//! program.
//!
//! piwheels reads its settings with configargparse: each program's long
//! options can also be given as `key = value` lines in
//! `/etc/piwheels.conf`, `/usr/local/etc/piwheels.conf`,
//! `~/.config/piwheels/piwheels.conf` (read in that order, later files win)
//! and in a file named by `-c FILE`. The command line beats the files, which
//! beat the defaults. All tools share the same files, so a key that a program
//! doesn't know is ignored (the slave's `master` key must not break the
//! master), while a known key with a bad value is an error.
//!
//! Each program describes its options once, as a static table of [`Opt`]; the
//! same table drives the command-line parser (pico-args), the file reader and
//! `--help`, so the three can never disagree.

pub mod add;
mod file;
pub mod import;
pub mod logger;
pub mod master;
pub mod monitor;
pub mod rebuild;
pub mod remove;
pub mod sample;
pub mod slave;

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

pub use file::{ConfigFile, parse_config_text};

/// How an option takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A switch (`--dev-mode`); in a file: `dev-mode = true|false|yes|no|1|0`.
    Flag,
    /// One value (`-d DSN`); given twice, the last one wins as in argparse.
    Value,
    /// Repeatable (`--debug TASK`); values from files and the command line
    /// accumulate. In a file: `debug = [a, b]` or one value.
    Multi,
}

/// One option of a program, described once for the parser, the config files
/// and `--help`.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    /// Short form such as `-d`, if any.
    pub short: Option<&'static str>,
    /// Long form with its leading dashes (`--dsn`); without them it is the
    /// config-file key and the key in [`Settings`].
    pub long: &'static str,
    pub kind: Kind,
    /// Placeholder shown in `--help`, e.g. `DSN`.
    pub metavar: &'static str,
    /// Default value (as text), shown in `--help` and used when unset.
    pub default: Option<&'static str>,
    pub help: &'static str,
}

impl Opt {
    /// The config-file key: the long option without its dashes.
    pub fn key(&self) -> &'static str {
        self.long.trim_start_matches('-')
    }

    pub const fn flag(short: Option<&'static str>, long: &'static str, help: &'static str) -> Self {
        Opt {
            short,
            long,
            kind: Kind::Flag,
            metavar: "",
            default: None,
            help,
        }
    }

    pub const fn value(
        short: Option<&'static str>,
        long: &'static str,
        metavar: &'static str,
        default: Option<&'static str>,
        help: &'static str,
    ) -> Self {
        Opt {
            short,
            long,
            kind: Kind::Value,
            metavar,
            default,
            help,
        }
    }

    pub const fn multi(
        short: Option<&'static str>,
        long: &'static str,
        metavar: &'static str,
        help: &'static str,
    ) -> Self {
        Opt {
            short,
            long,
            kind: Kind::Multi,
            metavar,
            default: None,
            help,
        }
    }
}

/// The options every piwheels program has (`-c`, `-q`, `-v`, `-l`), as in
/// piwheels' `terminal.configure_parser`.
pub const COMMON_OPTS: &[Opt] = &[
    Opt::value(
        Some("-c"),
        "--configuration",
        "FILE",
        None,
        "Specify a configuration file to load",
    ),
    Opt::flag(Some("-q"), "--quiet", "Produce less console output"),
    Opt::flag(Some("-v"), "--verbose", "Produce more console output"),
    Opt::value(
        Some("-l"),
        "--log-file",
        "FILE",
        None,
        "Log messages to the specified file",
    ),
];

/// The configuration files piwheels reads by default, in order.
pub fn default_config_files() -> Vec<PathBuf> {
    let mut files = vec![
        PathBuf::from("/etc/piwheels.conf"),
        PathBuf::from("/usr/local/etc/piwheels.conf"),
    ];
    if let Some(home) = std::env::var_os("HOME") {
        files.push(Path::new(&home).join(".config/piwheels/piwheels.conf"));
    }
    files
}

/// A usage or configuration error: printed on one line, exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// What the command line asked for.
#[derive(Debug)]
pub enum Parsed {
    /// `-h`/`--help`: print this text and exit 0.
    Help(String),
    /// `--version`: print this text and exit 0.
    Version(String),
    /// Run with these settings.
    Run(Settings),
}

/// The merged settings of one program: command line over files over defaults.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    values: HashMap<&'static str, Vec<String>>,
    /// Which keys came from somewhere other than the defaults, and where.
    origin: HashMap<&'static str, String>,
}

impl Settings {
    /// The value of a single-valued option (the default if unset).
    pub fn get(&self, long: &str) -> Option<&str> {
        self.values
            .get(long)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// The value of an option that must have one (it has a default).
    pub fn value(&self, long: &str) -> String {
        self.get(long).unwrap_or_default().to_string()
    }

    /// Whether a flag is set.
    pub fn flag(&self, long: &str) -> bool {
        self.get(long) == Some("true")
    }

    /// Every value of a repeatable option.
    pub fn all(&self, long: &str) -> &[String] {
        self.values.get(long).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Where a setting came from ("the command line" or a file name), or
    /// `None` if it is the default. Used to name the culprit in errors.
    pub fn origin(&self, long: &str) -> Option<&str> {
        self.origin.get(long).map(String::as_str)
    }

    /// Describes where a setting came from for an error message.
    pub fn describe(&self, long: &str) -> String {
        match self.origin(long) {
            Some(src) => format!("--{long} (from {src})"),
            None => format!("--{long} (default)"),
        }
    }

    /// The log settings every program shares.
    pub fn log_level(&self) -> log::LevelFilter {
        // -q and -v share one destination in piwheels; the last one given
        // wins, which `quiet_verbose` recorded as the surviving flag.
        if self.flag("verbose") {
            log::LevelFilter::Info
        } else if self.flag("quiet") {
            log::LevelFilter::Error
        } else {
            log::LevelFilter::Warn
        }
    }

    fn set(&mut self, opt: &Opt, vals: Vec<String>, origin: &str) {
        match opt.kind {
            Kind::Multi => self.values.entry(opt.key()).or_default().extend(vals),
            _ => {
                self.values.insert(opt.key(), vals);
            }
        }
        self.origin.insert(opt.key(), origin.to_string());
    }
}

/// Logging settings, shared by every program.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Console level from -q/-v.
    pub console_level: log::LevelFilter,
    pub log_file: Option<PathBuf>,
    /// `--debug` patterns on task names (`master.slave_driver`, `master.the_*`).
    pub debug: Vec<String>,
    /// Dev mode turns console debug output on, as in piwheels.
    pub dev_mode: bool,
}

impl LogSettings {
    pub fn from_settings(s: &Settings) -> Self {
        LogSettings {
            console_level: s.log_level(),
            log_file: s.get("log-file").map(PathBuf::from),
            debug: s.all("debug").to_vec(),
            dev_mode: s.flag("dev-mode"),
        }
    }
}

/// A program's description for the parser and `--help`.
pub struct Program {
    pub name: &'static str,
    /// The paragraph shown at the top of `--help`.
    pub description: &'static str,
    /// Program-specific options (the common ones are added automatically).
    pub opts: &'static [Opt],
    /// Extra text shown at the end of `--help`.
    pub epilog: &'static str,
}

impl Program {
    fn all_opts(&self) -> impl Iterator<Item = &Opt> {
        COMMON_OPTS.iter().chain(self.opts.iter())
    }

    fn find(&self, key: &str) -> Option<&Opt> {
        self.all_opts().find(|o| o.key() == key)
    }

    /// Parses the process's own arguments, reading the default config files.
    pub fn parse_env(&self) -> Result<Parsed, ConfigError> {
        let args: Vec<OsString> = std::env::args_os().skip(1).collect();
        self.parse(args, &default_config_files())
    }

    /// Parses `args` (without the program name), reading `default_files`
    /// that exist plus any `-c FILE`.
    pub fn parse(
        &self,
        args: Vec<OsString>,
        default_files: &[PathBuf],
    ) -> Result<Parsed, ConfigError> {
        let order = last_of_quiet_verbose(&args);
        let mut pargs = pico_args::Arguments::from_vec(args);
        if pargs.contains(["-h", "--help"]) {
            return Ok(Parsed::Help(self.help()));
        }
        if pargs.contains("--version") {
            return Ok(Parsed::Version(crate::VERSION.to_string()));
        }
        let cli = self.parse_cli(&mut pargs)?;
        let rest = pargs.finish();
        if let Some(extra) = rest.first() {
            return Err(ConfigError(format!(
                "{}: unrecognized argument: {}; try --help",
                self.name,
                extra.to_string_lossy()
            )));
        }

        let mut settings = Settings::default();
        for opt in self.all_opts() {
            if let Some(d) = opt.default {
                settings.values.insert(opt.key(), vec![d.to_string()]);
            }
        }
        let mut files: Vec<(PathBuf, bool)> = default_files
            .iter()
            .filter(|p| p.exists())
            .map(|p| (p.clone(), false))
            .collect();
        if let Some((_, vals)) = cli.iter().find(|(o, _)| o.key() == "configuration") {
            if let Some(path) = vals.last() {
                files.push((PathBuf::from(path), true));
            }
        }
        for (path, explicit) in files {
            let file = ConfigFile::read(&path).map_err(|e| {
                let which = if explicit { "-c " } else { "" };
                ConfigError(format!("{}: {which}{e}", self.name))
            })?;
            self.apply_file(&mut settings, &file)?;
        }
        for (opt, vals) in cli {
            settings.set(opt, vals, "the command line");
        }
        // -q and -v write the same setting in piwheels: keep only the one
        // given last on the command line, if either was.
        match order {
            Some(QuietVerbose::Quiet) => {
                settings.values.remove("verbose");
            }
            Some(QuietVerbose::Verbose) => {
                settings.values.remove("quiet");
            }
            None => {}
        }
        Ok(Parsed::Run(settings))
    }

    fn parse_cli(
        &self,
        pargs: &mut pico_args::Arguments,
    ) -> Result<Vec<(&Opt, Vec<String>)>, ConfigError> {
        let mut out = Vec::new();
        for opt in self.all_opts() {
            let long = opt.long;
            let vals: Vec<String> = match opt.kind {
                Kind::Flag => {
                    let mut n = 0;
                    while match opt.short {
                        Some(s) => pargs.contains([s, long]),
                        None => pargs.contains(long),
                    } {
                        n += 1;
                    }
                    if n == 0 {
                        continue;
                    }
                    vec!["true".to_string()]
                }
                Kind::Value | Kind::Multi => {
                    let mut vals = Vec::new();
                    loop {
                        let got: Result<Option<String>, _> = match opt.short {
                            Some(s) => pargs.opt_value_from_str([s, long]),
                            None => pargs.opt_value_from_str(long),
                        };
                        match got {
                            Ok(Some(v)) => vals.push(v),
                            Ok(None) => break,
                            Err(e) => return Err(self.cli_error(opt, e)),
                        }
                    }
                    if vals.is_empty() {
                        continue;
                    }
                    if opt.kind == Kind::Value {
                        // argparse keeps the last of repeated options.
                        vals.drain(..vals.len() - 1);
                    }
                    vals
                }
            };
            out.push((opt, vals));
        }
        Ok(out)
    }

    fn cli_error(&self, opt: &Opt, e: pico_args::Error) -> ConfigError {
        let what = match e {
            pico_args::Error::OptionWithoutAValue(_) => "expected one argument".to_string(),
            pico_args::Error::NonUtf8Argument => "argument is not valid UTF-8".to_string(),
            other => other.to_string(),
        };
        ConfigError(format!("{}: {}: {what}", self.name, opt.long))
    }

    fn apply_file(&self, settings: &mut Settings, file: &ConfigFile) -> Result<(), ConfigError> {
        let origin = file.path.display().to_string();
        for entry in &file.entries {
            // Every piwheels tool reads the same files, so keys for other
            // tools are expected here; configargparse ignores them too.
            let Some(opt) = self.find(&entry.key) else {
                continue;
            };
            let bad = |why: &str| {
                ConfigError(format!(
                    "{}: {}:{}: {}: {why}",
                    self.name, origin, entry.line, entry.key
                ))
            };
            let vals = match opt.kind {
                Kind::Flag => match entry.value.as_deref().map(str::to_ascii_lowercase) {
                    None => vec!["true".to_string()],
                    Some(v) => match v.as_str() {
                        "true" | "yes" | "on" | "1" => vec!["true".to_string()],
                        "false" | "no" | "off" | "0" => {
                            settings.values.remove(opt.key());
                            settings.origin.insert(opt.key(), origin.clone());
                            continue;
                        }
                        _ => return Err(bad("expected true or false")),
                    },
                },
                Kind::Value => match &entry.value {
                    Some(v) if !v.starts_with('[') => vec![v.clone()],
                    Some(_) => return Err(bad("takes one value, not a list")),
                    None => return Err(bad("expected a value")),
                },
                Kind::Multi => match &entry.value {
                    Some(v) => file::split_list(v),
                    None => return Err(bad("expected a value")),
                },
            };
            settings.set(opt, vals, &origin);
        }
        Ok(())
    }

    /// The `--help` text, generated from the option table.
    pub fn help(&self) -> String {
        let mut out = format!(
            "usage: {} [options]\n\n{}\n\noptions:\n",
            self.name, self.description
        );
        out.push_str("  -h, --help            Show this help message and exit\n");
        out.push_str("  --version             Show program's version number and exit\n");
        for opt in self.all_opts() {
            let mut names = String::new();
            if let Some(s) = opt.short {
                names.push_str(s);
                if opt.kind != Kind::Flag {
                    names.push(' ');
                    names.push_str(opt.metavar);
                }
                names.push_str(", ");
            }
            names.push_str(opt.long);
            if opt.kind != Kind::Flag {
                names.push(' ');
                names.push_str(opt.metavar);
            }
            let mut help = opt.help.to_string();
            if let Some(d) = opt.default {
                help.push_str(&format!(" (default: {d})"));
            }
            out.push_str(&format_help_entry(&names, &help));
        }
        if !self.epilog.is_empty() {
            out.push('\n');
            out.push_str(self.epilog);
            out.push('\n');
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuietVerbose {
    Quiet,
    Verbose,
}

/// Which of -q/-v came last on the command line (they share one setting).
fn last_of_quiet_verbose(args: &[OsString]) -> Option<QuietVerbose> {
    args.iter().rev().find_map(|a| match a.to_str() {
        Some("-q" | "--quiet") => Some(QuietVerbose::Quiet),
        Some("-v" | "--verbose") => Some(QuietVerbose::Verbose),
        _ => None,
    })
}

fn format_help_entry(names: &str, help: &str) -> String {
    const COL: usize = 24;
    const WIDTH: usize = 79;
    let mut out = String::new();
    let mut line = format!("  {names}");
    if line.len() + 2 > COL {
        out.push_str(&line);
        out.push('\n');
        line = " ".repeat(COL);
    } else {
        line.push_str(&" ".repeat(COL - line.len()));
    }
    let mut first = true;
    for word in help.split_whitespace() {
        if !first && line.len() + 1 + word.len() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(COL);
            first = true;
        }
        if !first {
            line.push(' ');
        }
        line.push_str(word);
        first = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

/// Expands a leading `~` or `~/` to `$HOME`, as piwheels does for the output
/// path.
pub fn expand_user(path: &str) -> PathBuf {
    if path == "~" || path.starts_with("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return Path::new(&home).join(path.trim_start_matches('~').trim_start_matches('/'));
        }
    }
    PathBuf::from(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_OPTS: &[Opt] = &[
        Opt::value(
            Some("-d"),
            "--dsn",
            "DSN",
            Some("postgres:///piwheels"),
            "The database",
        ),
        Opt::flag(None, "--dev-mode", "Development mode"),
        Opt::multi(None, "--debug", "TASK", "Debug a task"),
    ];
    const PROG: Program = Program {
        name: "piw-test",
        description: "A test program.",
        opts: TEST_OPTS,
        epilog: "",
    };

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    fn run(a: &[&str], files: &[PathBuf]) -> Result<Settings, ConfigError> {
        match PROG.parse(args(a), files)? {
            Parsed::Run(s) => Ok(s),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn tmpfile(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("piw-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn defaults_apply() {
        let s = run(&[], &[]).unwrap();
        assert_eq!(s.get("dsn"), Some("postgres:///piwheels"));
        assert!(!s.flag("dev-mode"));
        assert!(s.all("debug").is_empty());
        assert_eq!(s.log_level(), log::LevelFilter::Warn);
        assert_eq!(s.origin("dsn"), None);
    }

    #[test]
    fn command_line_beats_file_beats_default() {
        let f = tmpfile(
            "a.conf",
            "[master]\ndsn = postgres:///fromfile\ndev-mode = yes\n",
        );
        let s = run(&[], std::slice::from_ref(&f)).unwrap();
        assert_eq!(s.get("dsn"), Some("postgres:///fromfile"));
        assert!(s.flag("dev-mode"));
        let s = run(&["-d", "postgres:///cli"], &[f]).unwrap();
        assert_eq!(s.get("dsn"), Some("postgres:///cli"));
        assert_eq!(s.origin("dsn"), Some("the command line"));
    }

    #[test]
    fn explicit_file_beats_default_files() {
        let a = tmpfile("b1.conf", "dsn: postgres:///one\n");
        let b = tmpfile("b2.conf", "dsn postgres:///two\n");
        let s = run(&["-c", b.to_str().unwrap()], &[a]).unwrap();
        assert_eq!(s.get("dsn"), Some("postgres:///two"));
    }

    #[test]
    fn missing_default_files_are_skipped_but_missing_c_file_is_an_error() {
        let s = run(&[], &[PathBuf::from("/nonexistent/piwheels.conf")]).unwrap();
        assert_eq!(s.get("dsn"), Some("postgres:///piwheels"));
        let e = run(&["-c", "/nonexistent/x.conf"], &[]).unwrap_err();
        assert!(e.0.contains("/nonexistent/x.conf"), "{e}");
    }

    #[test]
    fn repeated_values_last_wins_and_multi_accumulates() {
        let f = tmpfile("c.conf", "debug = [master.slave_driver, master.the_*]\n");
        let s = run(
            &["-d", "a", "--dsn=b", "--debug", "master.cloud_gazer"],
            &[f],
        )
        .unwrap();
        assert_eq!(s.get("dsn"), Some("b"));
        assert_eq!(
            s.all("debug"),
            ["master.slave_driver", "master.the_*", "master.cloud_gazer"]
        );
    }

    #[test]
    fn quiet_and_verbose_last_wins() {
        assert_eq!(
            run(&["-q"], &[]).unwrap().log_level(),
            log::LevelFilter::Error
        );
        assert_eq!(
            run(&["-v"], &[]).unwrap().log_level(),
            log::LevelFilter::Info
        );
        assert_eq!(
            run(&["-q", "-v"], &[]).unwrap().log_level(),
            log::LevelFilter::Info
        );
        assert_eq!(
            run(&["-v", "-q"], &[]).unwrap().log_level(),
            log::LevelFilter::Error
        );
    }

    #[test]
    fn bad_input_gives_one_line_errors_naming_the_culprit() {
        let e = run(&["--bogus"], &[]).unwrap_err();
        assert!(e.0.contains("--bogus"), "{e}");
        let e = run(&["-d"], &[]).unwrap_err();
        assert!(e.0.contains("--dsn"), "{e}");
        let f = tmpfile("d.conf", "dev-mode = perhaps\n");
        let e = run(&[], &[f]).unwrap_err();
        assert!(e.0.contains("d.conf:1") && e.0.contains("dev-mode"), "{e}");
        assert!(!e.0.contains('\n'));
    }

    #[test]
    fn unknown_file_keys_are_ignored() {
        let f = tmpfile("e.conf", "master = somehost\ntimeout = 3h\n");
        assert!(run(&[], &[f]).is_ok());
    }

    #[test]
    fn flag_false_in_a_later_file_clears_it() {
        let a = tmpfile("f1.conf", "dev-mode\n");
        let b = tmpfile("f2.conf", "dev-mode = false\n");
        assert!(run(&[], std::slice::from_ref(&a)).unwrap().flag("dev-mode"));
        assert!(!run(&[], &[a, b]).unwrap().flag("dev-mode"));
    }

    #[test]
    fn help_and_version() {
        match PROG.parse(args(&["--help"]), &[]).unwrap() {
            Parsed::Help(h) => {
                assert!(h.contains("-d DSN, --dsn DSN"));
                assert!(h.contains("(default: postgres:///piwheels)"));
                assert!(h.contains("--dev-mode"));
                assert!(h.contains("-c FILE, --configuration FILE"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            PROG.parse(args(&["--version"]), &[]).unwrap(),
            Parsed::Version(_)
        ));
    }

    #[test]
    fn expand_user_handles_tilde() {
        let home = std::env::var("HOME").unwrap();
        assert_eq!(expand_user("~/www"), Path::new(&home).join("www"));
        assert_eq!(expand_user("/var/www"), PathBuf::from("/var/www"));
    }
}
