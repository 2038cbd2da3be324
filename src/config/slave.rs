//! The settings of `piw-slave`: piwheels 0.23's options (`-m`, `-t`, `-d`,
//! `-L`, `--debug`, plus the common `-c -q -v -l`) with its environment
//! variables `PIW_MASTER` and `PIW_TIMEOUT`, and a few of our own for what
//! piwheels hard-codes: the interpreter, the extra index, the two ports and
//! the master timeout.
//!
//! Precedence is configargparse's: command line, then environment, then
//! configuration files, then defaults.

use std::path::PathBuf;
use std::time::Duration;

use super::{ConfigError, LogSettings, Opt, Parsed, Program, Settings, expand_user};

/// Defaults, as piwheels has them (or hard-codes them).
pub mod defaults {
    pub const MASTER: &str = "localhost";
    pub const TIMEOUT: &str = "3h";
    pub const PYTHON: &str = "python3";
    pub const EXTRA_INDEX_URL: &str = "https://www.piwheels.org/simple";
    pub const SLAVE_PORT: &str = "5555";
    pub const FILE_PORT: &str = "5556";
    pub const MASTER_TIMEOUT: &str = "5m";
}

const SLAVE_OPTS: &[Opt] = &[
    Opt::flag(None, "--debug", "Set logging to debug level"),
    Opt::value(
        Some("-m"),
        "--master",
        "HOST",
        Some(defaults::MASTER),
        "The IP address or hostname of the master server; also read from $PIW_MASTER",
    ),
    Opt::value(
        Some("-t"),
        "--timeout",
        "DURATION",
        Some(defaults::TIMEOUT),
        "The time to wait before assuming a build has failed, e.g. 3h, 90m or 1h30m; \
         a build that runs longer is killed and reported as failed; also read from \
         $PIW_TIMEOUT",
    ),
    Opt::value(
        Some("-d"),
        "--dir",
        "DIR",
        None,
        "The temporary directory to use when building wheels (default: the system's \
         temporary directory)",
    ),
    Opt::value(
        Some("-L"),
        "--label",
        "STR",
        None,
        "The label to transmit to the master identifying this build slave (default: the \
         host name)",
    ),
    Opt::value(
        None,
        "--python",
        "PYTHON",
        Some(defaults::PYTHON),
        "The Python interpreter to build with (its pip builds the wheels, and its tags are \
         sent to the master)",
    ),
    Opt::multi(
        None,
        "--extra-index-url",
        "URL",
        "An extra index pip may take build dependencies from; can be given more than once; \
         an empty URL means none (default: https://www.piwheels.org/simple)",
    ),
    Opt::value(
        None,
        "--slave-port",
        "PORT",
        Some(defaults::SLAVE_PORT),
        "The master's port for the slave protocol",
    ),
    Opt::value(
        None,
        "--file-port",
        "PORT",
        Some(defaults::FILE_PORT),
        "The master's port for file transfers",
    ),
    Opt::value(
        None,
        "--master-timeout",
        "DURATION",
        Some(defaults::MASTER_TIMEOUT),
        "How long the master may stay silent before the slave reconnects (and the busy \
         timeout it announces)",
    ),
];

/// The `piw-slave` program description.
pub const PROGRAM: Program = Program {
    name: "piw-slave",
    description: "Runs a build slave: it asks the master for a package version to build, builds its wheel with pip, and sends the result and the files back. Run it on its own machine (a Raspberry Pi, usually), as an ordinary user; it needs network access to the master and to PyPI.",
    opts: SLAVE_OPTS,
    epilog: "Every long option can also be set in /etc/piwheels.conf, \
/usr/local/etc/piwheels.conf, ~/.config/piwheels/piwheels.conf or the file given with -c, \
as 'key = value' lines (e.g. 'master = piwheels.example.org'); the command line beats \
$PIW_MASTER and $PIW_TIMEOUT, which beat the files, which beat the defaults.

Run as root only in a container or test, with PIWHEELS_ALLOW_ROOT=1 set.",
};

/// The slave's validated settings.
#[derive(Debug, Clone)]
pub struct SlaveConfig {
    /// The master's host name or address.
    pub master: String,
    /// Builds are killed after this long (and the master is told so).
    pub build_timeout: Duration,
    /// Where build directories are made.
    pub dir: PathBuf,
    /// Sent to the master in HELLO.
    pub label: String,
    /// The interpreter that builds.
    pub python: String,
    /// `--extra-index-url` for pip, in order.
    pub extra_index_urls: Vec<String>,
    pub slave_port: u16,
    pub file_port: u16,
    /// Silence from the master longer than this resets the connection.
    pub master_timeout: Duration,
    pub log: LogSettings,
}

impl SlaveConfig {
    /// Parses the process's arguments and config files.
    pub fn from_env() -> Result<Parsed, ConfigError> {
        PROGRAM.parse_env()
    }

    /// Validates parsed settings, with `PIW_MASTER`/`PIW_TIMEOUT` from the
    /// process environment.
    pub fn from_settings(s: &Settings) -> Result<SlaveConfig, ConfigError> {
        Self::from_settings_with(s, |k| std::env::var(k).ok())
    }

    /// Validates parsed settings, reading environment variables through
    /// `env` (so tests need not touch the process environment).
    pub fn from_settings_with(
        s: &Settings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<SlaveConfig, ConfigError> {
        // The environment beats files and defaults, not the command line.
        let with_env = |key: &str, var: &str| -> (String, String) {
            let from_cli = s.origin(key) == Some("the command line");
            match env(var).filter(|v| !v.is_empty()) {
                Some(v) if !from_cli => (v, format!("${var}")),
                _ => (s.value(key), s.describe(key)),
            }
        };
        let bad = |what: &str, why: &str| ConfigError(format!("piw-slave: {what}: {why}"));

        let (master, src) = with_env("master", "PIW_MASTER");
        let master = master.trim().to_string();
        if master.is_empty() || master.contains(['/', ' ']) {
            return Err(bad(
                &src,
                &format!("{master:?} is not a host name or address"),
            ));
        }
        let (timeout, src) = with_env("timeout", "PIW_TIMEOUT");
        let build_timeout = parse_duration(&timeout).map_err(|e| bad(&src, &e))?;
        let master_timeout = parse_duration(&s.value("master-timeout"))
            .map_err(|e| bad(&s.describe("master-timeout"), &e))?;
        let port = |key: &str| -> Result<u16, ConfigError> {
            s.value(key)
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| bad(&s.describe(key), "expected a port number (1-65535)"))
        };
        let dir = match s.get("dir") {
            Some(d) if !d.trim().is_empty() => expand_user(d),
            Some(_) => return Err(bad(&s.describe("dir"), "must not be empty")),
            None => std::env::temp_dir(),
        };
        let label = match s.get("label") {
            Some(l) => l.to_string(),
            None => crate::info::hostname(),
        };
        let python = s.value("python");
        if python.trim().is_empty() {
            return Err(bad(&s.describe("python"), "must not be empty"));
        }
        // Not given anywhere: piwheels' index. Given (even as an empty
        // list): exactly the non-empty URLs given.
        let extra_index_urls: Vec<String> = if s.origin("extra-index-url").is_none() {
            vec![defaults::EXTRA_INDEX_URL.to_string()]
        } else {
            s.all("extra-index-url")
                .iter()
                .filter(|u| !u.trim().is_empty())
                .cloned()
                .collect()
        };
        let debug = s.flag("debug");
        Ok(SlaveConfig {
            master,
            build_timeout,
            dir,
            label,
            python,
            extra_index_urls,
            slave_port: port("slave-port")?,
            file_port: port("file-port")?,
            master_timeout,
            log: LogSettings {
                console_level: s.log_level(),
                log_file: s.get("log-file").map(PathBuf::from),
                debug: if debug {
                    vec!["slave".to_string(), "slave-*".to_string()]
                } else {
                    Vec::new()
                },
                dev_mode: false,
            },
        })
    }

    /// The address of the master's slave queue.
    pub fn slave_queue(&self) -> String {
        tcp_address(&self.master, self.slave_port)
    }

    /// The address of the master's file queue.
    pub fn file_queue(&self) -> String {
        tcp_address(&self.master, self.file_port)
    }
}

/// `tcp://host:port`, with an IPv6 literal in brackets.
pub fn tcp_address(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("tcp://[{host}]:{port}")
    } else {
        format!("tcp://{host}:{port}")
    }
}

/// The longest duration accepted (a year; a timedelta holds far more, but
/// nothing sensible needs it).
const MAX_DURATION: Duration = Duration::from_secs(366 * 86400);

/// Parses a duration such as `3h`, `90m`, `1h30m`, `45s`, `1.5h`,
/// `2 hours`, `1d` or a clock time `3:00` / `1:30:00` (hours, minutes,
/// seconds, as piwheels' dateutil-based parser reads `3h` or `3:00`).
/// A bare number is refused, since it would be ambiguous.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let err = || format!("{text:?} is not a duration (e.g. 3h, 90m, 1h30m or 3:00:00)");
    if t.is_empty() {
        return Err(err());
    }
    let secs: f64 = if t.contains(':') {
        let parts: Vec<&str> = t.split(':').collect();
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(err());
        }
        let mut total = 0.0;
        for (i, p) in parts.iter().enumerate() {
            let v: f64 = if i == parts.len() - 1 && parts.len() == 3 {
                p.parse().map_err(|_| err())?
            } else {
                p.parse::<u64>().map_err(|_| err())? as f64
            };
            if i > 0 && v >= 60.0 {
                return Err(err());
            }
            total = total * 60.0 + v;
        }
        // H:MM means hours and minutes.
        if parts.len() == 2 {
            total * 60.0
        } else {
            total
        }
    } else {
        let mut total = 0.0;
        let mut rest = t;
        let mut any = false;
        while !rest.is_empty() {
            let num_len = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            if num_len == 0 {
                return Err(err());
            }
            let n: f64 = rest[..num_len].parse().map_err(|_| err())?;
            rest = rest[num_len..].trim_start();
            let unit_len = rest
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(rest.len());
            let scale = match rest[..unit_len].to_ascii_lowercase().as_str() {
                "d" | "day" | "days" => 86400.0,
                "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
                "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
                "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
                _ => return Err(err()),
            };
            rest = rest[unit_len..].trim_start();
            total += n * scale;
            any = true;
        }
        if !any {
            return Err(err());
        }
        total
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("{text:?}: the duration must be more than zero"));
    }
    let d = Duration::from_secs_f64(secs.min(MAX_DURATION.as_secs_f64() + 1.0));
    if d > MAX_DURATION {
        return Err(format!("{text:?}: the duration must be at most a year"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn parse_with(args: &[&str], env: &[(&str, &str)]) -> Result<SlaveConfig, ConfigError> {
        let args = args.iter().map(OsString::from).collect();
        match PROGRAM.parse(args, &[])? {
            Parsed::Run(s) => SlaveConfig::from_settings_with(&s, |k| {
                env.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }),
            other => panic!("{other:?}"),
        }
    }

    fn parse(args: &[&str]) -> Result<SlaveConfig, ConfigError> {
        parse_with(args, &[])
    }

    #[test]
    fn defaults_are_piwheels_defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.master, "localhost");
        assert_eq!(c.build_timeout, Duration::from_secs(3 * 3600));
        assert_eq!(c.dir, std::env::temp_dir());
        assert_eq!(c.label, crate::info::hostname());
        assert_eq!(c.python, "python3");
        assert_eq!(c.extra_index_urls, ["https://www.piwheels.org/simple"]);
        assert_eq!(c.slave_queue(), "tcp://localhost:5555");
        assert_eq!(c.file_queue(), "tcp://localhost:5556");
        assert_eq!(c.master_timeout, Duration::from_secs(300));
        assert!(c.log.debug.is_empty());
        assert_eq!(c.log.console_level, log::LevelFilter::Warn);
    }

    #[test]
    fn every_option() {
        let c = parse(&[
            "-m",
            "::1",
            "-t",
            "90m",
            "-d",
            "/var/tmp/b",
            "-L",
            "pi4",
            "--debug",
            "--python",
            "/usr/bin/python3.11",
            "--extra-index-url",
            "http://a/simple",
            "--extra-index-url=http://b/simple",
            "--slave-port",
            "6000",
            "--file-port",
            "6001",
            "--master-timeout",
            "3s",
            "-v",
        ])
        .unwrap();
        assert_eq!(c.slave_queue(), "tcp://[::1]:6000");
        assert_eq!(c.file_queue(), "tcp://[::1]:6001");
        assert_eq!(c.build_timeout, Duration::from_secs(5400));
        assert_eq!(c.dir, PathBuf::from("/var/tmp/b"));
        assert_eq!(c.label, "pi4");
        assert_eq!(c.python, "/usr/bin/python3.11");
        assert_eq!(c.extra_index_urls, ["http://a/simple", "http://b/simple"]);
        assert_eq!(c.master_timeout, Duration::from_secs(3));
        assert_eq!(c.log.debug, ["slave", "slave-*"]);
        assert_eq!(c.log.console_level, log::LevelFilter::Info);
    }

    #[test]
    fn an_empty_extra_index_means_none() {
        assert!(
            parse(&["--extra-index-url", ""])
                .unwrap()
                .extra_index_urls
                .is_empty()
        );
    }

    #[test]
    fn environment_beats_default_but_not_command_line() {
        let env = [("PIW_MASTER", "envhost"), ("PIW_TIMEOUT", "2h")];
        let c = parse_with(&[], &env).unwrap();
        assert_eq!(c.master, "envhost");
        assert_eq!(c.build_timeout, Duration::from_secs(7200));
        let c = parse_with(&["-m", "clihost", "-t", "1h"], &env).unwrap();
        assert_eq!(c.master, "clihost");
        assert_eq!(c.build_timeout, Duration::from_secs(3600));
        let e = parse_with(&[], &[("PIW_TIMEOUT", "soon")]).unwrap_err();
        assert!(e.0.contains("$PIW_TIMEOUT"), "{e}");
    }

    #[test]
    fn bad_values_name_the_option() {
        let e = parse(&["-t", "10"]).unwrap_err();
        assert!(e.0.contains("--timeout (from the command line)"), "{e}");
        let e = parse(&["--slave-port", "0"]).unwrap_err();
        assert!(e.0.contains("--slave-port"), "{e}");
        let e = parse(&["--file-port", "70000"]).unwrap_err();
        assert!(e.0.contains("--file-port"), "{e}");
        let e = parse(&["-m", "tcp://x"]).unwrap_err();
        assert!(e.0.contains("--master"), "{e}");
        let e = parse(&["--python", " "]).unwrap_err();
        assert!(e.0.contains("--python"), "{e}");
        let e = parse(&["--master-timeout", "0s"]).unwrap_err();
        assert!(e.0.contains("--master-timeout"), "{e}");
    }

    #[test]
    fn help_lists_every_option() {
        let help = PROGRAM.help();
        for opt in [
            "-c FILE, --configuration FILE",
            "-q, --quiet",
            "-v, --verbose",
            "-l FILE, --log-file FILE",
            "--debug",
            "-m HOST, --master HOST",
            "-t DURATION, --timeout DURATION",
            "-d DIR, --dir DIR",
            "-L STR, --label STR",
            "--python PYTHON",
            "--extra-index-url URL",
            "--slave-port PORT",
            "--file-port PORT",
            "--master-timeout DURATION",
            "PIWHEELS_ALLOW_ROOT",
        ] {
            assert!(help.contains(opt), "--help lacks {opt}:\n{help}");
        }
    }

    #[test]
    fn durations() {
        let ok = |s: &str, secs: u64| {
            assert_eq!(parse_duration(s), Ok(Duration::from_secs(secs)), "{s}")
        };
        ok("3h", 10800);
        ok("90m", 5400);
        ok("1h30m", 5400);
        ok("1h 30m 15s", 5415);
        ok("45s", 45);
        ok("1.5h", 5400);
        ok("2 hours", 7200);
        ok("1d", 86400);
        ok("5 Minutes", 300);
        ok("3:00", 10800);
        ok("1:30:00", 5400);
        ok("0:00:30", 30);
        assert_eq!(parse_duration("0:00:01.5"), Ok(Duration::from_millis(1500)));
        for bad in [
            "", "10", "h", "3x", "3h30", "-1h", "0s", "1:60", "1::2", "1:2:3:4", "1e3s", "400d",
            "nan h", "3 h m",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
