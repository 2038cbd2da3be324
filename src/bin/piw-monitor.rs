//! piw-monitor: watch and steer a running master from its status and
//! control queues, interactively or (`--once`) as plain text for scripts.
//! The work is in `piwheels::monitor`; this only wires up the process.
//!
//! Exit status: 0 normally; 1 when `--once` gets no answer from the master
//! or the terminal cannot be used; 2 for usage errors.

use std::process::ExitCode;

use piwheels::config::Parsed;
use piwheels::config::monitor::MonitorConfig;
use piwheels::logging;
use piwheels::monitor::run::{run_once, run_tui};

fn main() -> ExitCode {
    let settings = match MonitorConfig::from_env() {
        Ok(Parsed::Run(s)) => s,
        Ok(Parsed::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version(v)) => {
            println!("{v}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut config = match MonitorConfig::from_settings(&settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if !config.once {
        // Console logging would scribble over the display; -l still works.
        config.log.console_level = log::LevelFilter::Off;
    }
    if let Err(e) = logging::init(&config.log) {
        logging::eprintln_error("piw-monitor", &e.to_string());
        return ExitCode::from(2);
    }
    let result = if config.once {
        run_once(&config).map(|report| print!("{report}"))
    } else {
        run_tui(&config)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            logging::eprintln_error("piw-monitor", &e);
            ExitCode::FAILURE
        }
    }
}
