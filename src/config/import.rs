//! The settings of `piw-import` (piwheels' options: `--package`,
//! `--package-version`, `--abi`, `--duration`, `--output`, `--dependencies`,
//! `-y`, `-d`, `--import-queue`, plus our `--file-queue` and
//! `--reply-timeout`), and the pieces every operator tool (piw-import,
//! piw-add, piw-remove, piw-rebuild) shares.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::logger::split_positionals;
use super::master::defaults;
use super::slave::parse_duration;
use super::{ConfigError, LogSettings, Opt, Parsed, Program, Settings};
use crate::protocol::TimeDelta;

/// Where piwheels' importer sends files: it must run on the master's host.
pub const FILE_QUEUE: &str = "tcp://localhost:5556";

/// How long a tool waits for the master by default.
pub const REPLY_TIMEOUT: &str = "30";

/// `-y`, shared by the four tools.
pub const YES: Opt = Opt::flag(
    Some("-y"),
    "--yes",
    "Run non-interactively; never prompt during operation",
);

/// `--import-queue`, shared by the four tools.
pub const IMPORT_QUEUE: Opt = Opt::value(
    None,
    "--import-queue",
    "ADDR",
    Some(defaults::IMPORT_QUEUE),
    "The address of the queue used by the master's import task; this should always be \
     an ipc address",
);

/// `--debug`, as the master's: debug output for the matching log targets
/// (`piw-import`, `piw-*`; `slave` is the file transfer).
pub const DEBUG: Opt = Opt::multi(
    None,
    "--debug",
    "TASK",
    "Show debug messages of the named task (a pattern such as piw-import, piw-* or \
     slave for the file transfer); can be given more than once",
);

/// `--reply-timeout` (ours): a dead master is an error, not a hang.
pub const REPLY_TIMEOUT_OPT: Opt = Opt::value(
    None,
    "--reply-timeout",
    "SECS",
    Some(REPLY_TIMEOUT),
    "How long to wait for each answer from the master before giving up",
);

const IMPORT_OPTS: &[Opt] = &[
    Opt::value(
        None,
        "--package",
        "PACKAGE",
        None,
        "The name of the package to import; if omitted this will be derived from the \
         file(s) specified",
    ),
    Opt::value(
        None,
        "--package-version",
        "VERSION",
        None,
        "The version of the package to import; if omitted this will be derived from the \
         file(s) specified",
    ),
    Opt::value(
        None,
        "--abi",
        "ABI",
        None,
        "The ABI of the package to import; if omitted this will be derived from the \
         file(s) specified",
    ),
    Opt::value(
        None,
        "--duration",
        "DURATION",
        Some("0s"),
        "The time taken to build the package",
    ),
    Opt::value(
        None,
        "--output",
        "FILE",
        None,
        "The filename containing the build output to insert into the database; if this \
         is omitted an appropriate message will be inserted instead",
    ),
    Opt::value(
        None,
        "--dependencies",
        "FILE",
        None,
        "The filename containing the (apt) dependencies of the wheels to be imported, \
         separated by white space",
    ),
    YES,
    Opt::flag(
        Some("-d"),
        "--delete",
        "Remove the specified file(s) after a successful import; if the import fails, no \
         files will be removed",
    ),
    IMPORT_QUEUE,
    DEBUG,
    Opt::value(
        None,
        "--file-queue",
        "ADDR",
        Some(FILE_QUEUE),
        "The address of the master's file queue (piwheels' importer always uses \
         tcp://localhost:5556); a '*' host means localhost",
    ),
    REPLY_TIMEOUT_OPT,
];

/// piw-import's option table, for the parser and `--help`.
pub const PROGRAM: Program = Program {
    name: "piw-import",
    description: "Imports wheels built elsewhere into the master's database and web site, as if a build slave had built them: the files are checked, sent over the master's file queue and recorded as one build. Talks to the master's import queue, so it runs on the master's host.",
    opts: IMPORT_OPTS,
    epilog: "positional arguments:
  files                 The wheel(s) to inject into piwheels; several files are treated as
                        parts of the same build, and must be of the same package and
                        version unless --package and --package-version are given

Exit status: 0 when the build was registered and every file sent; 1 when anything
failed (nothing is deleted then); 2 for usage errors or when the user declines.",
};

/// piw-import's validated settings.
#[derive(Debug, Clone)]
pub struct ImportConfig {
    pub files: Vec<PathBuf>,
    pub package: Option<String>,
    pub version: Option<String>,
    pub abi: Option<String>,
    pub duration: TimeDelta,
    pub output: Option<PathBuf>,
    pub dependencies: Option<PathBuf>,
    pub yes: bool,
    pub delete: bool,
    pub import_queue: String,
    pub file_queue: String,
    pub reply_timeout: Duration,
    pub log: LogSettings,
}

/// What the command line asked a tool to do.
#[derive(Debug)]
pub enum Command<T> {
    Help(String),
    Version(String),
    Run(T),
}

/// Parses a tool's arguments: options through `program`, positionals to
/// `make`.
pub fn parse_tool<T>(
    program: &Program,
    args: Vec<OsString>,
    default_files: &[PathBuf],
    make: impl FnOnce(&Settings, Vec<String>) -> Result<T, ConfigError>,
) -> Result<Command<T>, ConfigError> {
    let (options, positionals) = split_positionals(program, args);
    match program.parse(options, default_files)? {
        Parsed::Help(h) => Ok(Command::Help(h)),
        Parsed::Version(v) => Ok(Command::Version(v)),
        Parsed::Run(s) => make(&s, positionals).map(Command::Run),
    }
}

/// A usage error naming the program and the setting.
pub fn bad(program: &Program, s: &Settings, key: &str, why: &str) -> ConfigError {
    ConfigError(format!("{}: {}: {why}", program.name, s.describe(key)))
}

/// A usage error about the positional arguments.
pub fn usage(program: &Program, why: &str) -> ConfigError {
    ConfigError(format!("{}: {why}; try --help", program.name))
}

/// The `PACKAGE [VERSION]` positional arguments of piw-add and piw-remove,
/// neither of them blank.
pub fn package_and_version(
    program: &Program,
    args: &[String],
) -> Result<(String, Option<String>), ConfigError> {
    let (package, version) = match args {
        [p] => (p.clone(), None),
        [p, v] => (p.clone(), Some(v.clone())),
        [] => return Err(usage(program, "no package given")),
        _ => return Err(usage(program, "too many arguments")),
    };
    if package.trim().is_empty() || version.as_ref().is_some_and(|v| v.trim().is_empty()) {
        return Err(usage(program, "the package and version must not be empty"));
    }
    Ok((package, version))
}

/// Checks that `key` holds a ZeroMQ address; a `*` host (how the master's
/// side is written in a shared config file) becomes `localhost`.
pub fn queue_address(program: &Program, s: &Settings, key: &str) -> Result<String, ConfigError> {
    let addr = s.value(key);
    if !addr.contains("://") {
        return Err(bad(
            program,
            s,
            key,
            &format!("{addr:?} is not a ZeroMQ address such as ipc:///tmp/piw-import"),
        ));
    }
    Ok(addr.replacen("://*:", "://localhost:", 1))
}

/// `--reply-timeout`: seconds, more than 0 and at most an hour.
pub fn reply_timeout(program: &Program, s: &Settings) -> Result<Duration, ConfigError> {
    s.value("reply-timeout")
        .parse::<f64>()
        .ok()
        .filter(|t| t.is_finite() && *t > 0.0 && *t <= 3600.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            bad(
                program,
                s,
                "reply-timeout",
                "expected a number of seconds (0 < SECS <= 3600)",
            )
        })
}

/// A build duration as piwheels' `duration` reads it; unlike a timeout it
/// may be zero (`0s`, the default).
pub fn build_duration(text: &str) -> Result<TimeDelta, String> {
    let t = text.trim();
    let d = match parse_duration(t) {
        Ok(d) => d,
        Err(_) if t == "0" => Duration::ZERO,
        Err(e) if e.contains("more than zero") => Duration::ZERO,
        Err(e) => return Err(e),
    };
    TimeDelta::from_std(d).ok_or_else(|| format!("{text:?}: out of range"))
}

impl ImportConfig {
    /// Parses the process's arguments and the default config files.
    pub fn from_env() -> Result<Command<ImportConfig>, ConfigError> {
        ImportConfig::parse(
            std::env::args_os().skip(1).collect(),
            &super::default_config_files(),
        )
    }

    /// Parses `args` (without the program name).
    pub fn parse(
        args: Vec<OsString>,
        default_files: &[PathBuf],
    ) -> Result<Command<ImportConfig>, ConfigError> {
        parse_tool(&PROGRAM, args, default_files, ImportConfig::from_settings)
    }

    fn from_settings(s: &Settings, files: Vec<String>) -> Result<ImportConfig, ConfigError> {
        if files.is_empty() {
            return Err(usage(&PROGRAM, "no files given"));
        }
        let non_empty = |key: &str| -> Result<Option<String>, ConfigError> {
            match s.get(key) {
                Some(v) if v.trim().is_empty() => Err(bad(&PROGRAM, s, key, "must not be empty")),
                other => Ok(other.map(str::to_string)),
            }
        };
        let duration =
            build_duration(&s.value("duration")).map_err(|e| bad(&PROGRAM, s, "duration", &e))?;
        Ok(ImportConfig {
            files: files.into_iter().map(PathBuf::from).collect(),
            package: non_empty("package")?,
            version: non_empty("package-version")?,
            abi: non_empty("abi")?,
            duration,
            output: s.get("output").map(PathBuf::from),
            dependencies: s.get("dependencies").map(PathBuf::from),
            yes: s.flag("yes"),
            delete: s.flag("delete"),
            import_queue: queue_address(&PROGRAM, s, "import-queue")?,
            file_queue: queue_address(&PROGRAM, s, "file-queue")?,
            reply_timeout: reply_timeout(&PROGRAM, s)?,
            log: LogSettings::from_settings(s),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<ImportConfig, ConfigError> {
        match ImportConfig::parse(a.iter().map(OsString::from).collect(), &[])? {
            Command::Run(c) => Ok(c),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_are_piwheels() {
        let c = parse(&["a.whl"]).unwrap();
        assert_eq!(c.files, [PathBuf::from("a.whl")]);
        assert_eq!(c.import_queue, "ipc:///tmp/piw-import");
        assert_eq!(c.file_queue, "tcp://localhost:5556");
        assert_eq!(c.duration, TimeDelta::ZERO);
        assert_eq!(c.reply_timeout, Duration::from_secs(30));
        assert!(!c.yes && !c.delete);
        assert_eq!(c.package, None);
    }

    #[test]
    fn every_option() {
        let c = parse(&[
            "a.whl",
            "--package",
            "Foo",
            "--package-version=1.0",
            "--abi",
            "cp311",
            "--duration",
            "1h30m",
            "--output",
            "out.txt",
            "--dependencies",
            "deps.txt",
            "-y",
            "-d",
            "--import-queue",
            "ipc:///x",
            "--file-queue",
            "tcp://*:7777",
            "--reply-timeout",
            "2.5",
            "b.whl",
        ])
        .unwrap();
        assert_eq!(c.files.len(), 2);
        assert_eq!(c.package.as_deref(), Some("Foo"));
        assert_eq!(c.version.as_deref(), Some("1.0"));
        assert_eq!(c.abi.as_deref(), Some("cp311"));
        assert_eq!(c.duration, TimeDelta::from_secs(5400).unwrap());
        assert!(c.yes && c.delete);
        assert_eq!(c.file_queue, "tcp://localhost:7777");
        assert_eq!(c.reply_timeout, Duration::from_millis(2500));
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        assert!(parse(&[]).unwrap_err().0.contains("no files"));
        let e = parse(&["a.whl", "--duration", "soon"]).unwrap_err();
        assert!(e.0.contains("--duration"), "{e}");
        let e = parse(&["a.whl", "--reply-timeout", "0"]).unwrap_err();
        assert!(e.0.contains("--reply-timeout"), "{e}");
        let e = parse(&["a.whl", "--import-queue", "nowhere"]).unwrap_err();
        assert!(e.0.contains("--import-queue"), "{e}");
        let e = parse(&["a.whl", "--package", " "]).unwrap_err();
        assert!(e.0.contains("--package"), "{e}");
    }

    #[test]
    fn a_config_file_shared_with_the_master_works() {
        let dir = std::env::temp_dir().join(format!("piw-import-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("piwheels.conf");
        std::fs::write(
            &conf,
            "[master]\ndsn = postgres:///piwheels\nfile-queue = tcp://*:5556\n\
             import-queue = ipc:///run/piw-import\ndebug = [master.the_*, piw-*]\n\
             timeout = 3h\n",
        )
        .unwrap();
        let args = ["a.whl".into()].to_vec();
        let Command::Run(c) = ImportConfig::parse(args, &[conf]).unwrap() else {
            panic!("not a run");
        };
        assert_eq!(c.file_queue, "tcp://localhost:5556");
        assert_eq!(c.import_queue, "ipc:///run/piw-import");
        assert_eq!(c.log.debug, ["master.the_*", "piw-*"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn zero_durations() {
        for z in ["0s", "0", "0:00:00", "0m"] {
            assert_eq!(build_duration(z), Ok(TimeDelta::ZERO), "{z}");
        }
        assert_eq!(build_duration("90s"), Ok(TimeDelta::from_secs(90).unwrap()));
        assert!(build_duration("10").is_err());
    }
}
