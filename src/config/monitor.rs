//! The settings of `piw-monitor`: piwheels' `--status-queue` and
//! `--control-queue`, plus our `--once` text mode and its `--timeout`.

use std::time::Duration;

use super::master::defaults;
use super::{ConfigError, LogSettings, Opt, Parsed, Program, Settings};

const MONITOR_OPTS: &[Opt] = &[
    Opt::value(
        None,
        "--status-queue",
        "ADDR",
        Some(defaults::STATUS_QUEUE),
        "The address of the queue used to report status to monitors",
    ),
    Opt::value(
        None,
        "--control-queue",
        "ADDR",
        Some(defaults::CONTROL_QUEUE),
        "The address of the queue a monitor can use to control the master",
    ),
    Opt::flag(
        None,
        "--once",
        "Print the master's status and every build slave as plain text and exit, instead \
         of running the interactive display (for scripts); exits 1 if the master does not \
         answer",
    ),
    Opt::value(
        None,
        "--timeout",
        "SECS",
        Some("5"),
        "With --once, how long to wait for the master to answer",
    ),
];

/// piw-monitor's option table, for the parser and `--help`.
pub const PROGRAM: Program = Program {
    name: "piw-monitor",
    description: "Shows the master's statistics and every build slave live, from the master's status queue, and sends the master control commands: pause and resume it, or sleep, wake, skip the build of or kill a slave.",
    opts: MONITOR_OPTS,
    epilog: "keys: Up/Down (or j/k) select a slave, p pause the master, r resume it, \
s sleep the selected slave, w wake it, x skip its build, K kill it, T terminate the master \
(asks first), h help, q quit.",
};

/// piw-monitor's validated settings.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    pub status_queue: String,
    pub control_queue: String,
    pub once: bool,
    pub timeout: Duration,
    pub log: LogSettings,
}

impl MonitorConfig {
    /// Parses the process's arguments and the default config files.
    pub fn from_env() -> Result<Parsed, ConfigError> {
        PROGRAM.parse_env()
    }

    /// Validates parsed settings.
    pub fn from_settings(s: &Settings) -> Result<MonitorConfig, ConfigError> {
        let bad =
            |key: &str, why: &str| ConfigError(format!("piw-monitor: {}: {why}", s.describe(key)));
        for key in ["status-queue", "control-queue"] {
            if !s.value(key).contains("://") {
                return Err(bad(
                    key,
                    "is not a ZeroMQ address such as ipc:///tmp/piw-status",
                ));
            }
        }
        let timeout = s
            .value("timeout")
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite() && *t > 0.0 && *t <= 3600.0)
            .ok_or_else(|| bad("timeout", "expected a number of seconds (0 < SECS <= 3600)"))?;
        Ok(MonitorConfig {
            status_queue: s.value("status-queue"),
            control_queue: s.value("control-queue"),
            once: s.flag("once"),
            timeout: Duration::from_secs_f64(timeout),
            log: LogSettings::from_settings(s),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn parse(a: &[&str]) -> Result<MonitorConfig, ConfigError> {
        match PROGRAM.parse(a.iter().map(OsString::from).collect(), &[])? {
            Parsed::Run(s) => MonitorConfig::from_settings(&s),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_and_options() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.status_queue, "ipc:///tmp/piw-status");
        assert_eq!(c.control_queue, "ipc:///tmp/piw-control");
        assert!(!c.once);
        assert_eq!(c.timeout, Duration::from_secs(5));
        let c = parse(&["--once", "--timeout", "0.5", "--status-queue", "tcp://h:1"]).unwrap();
        assert!(c.once);
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert_eq!(c.status_queue, "tcp://h:1");
        assert!(
            parse(&["--timeout", "0"])
                .unwrap_err()
                .0
                .contains("--timeout")
        );
        assert!(
            parse(&["--control-queue", "x"])
                .unwrap_err()
                .0
                .contains("--control-queue")
        );
    }
}
