//! `piw-slave`: builds wheels for a piwheels master. All the work is in
//! `piwheels::slave`; this only wires up the process.

use std::process::ExitCode;

use piwheels::config::Parsed;
use piwheels::config::slave::SlaveConfig;
use piwheels::logging;
use piwheels::signals::SignalFd;
use piwheels::slave::{Slave, clock_is_sane};
use piwheels::systemd::Notifier;

fn main() -> ExitCode {
    // Block the termination signals before anything starts a thread (libzmq
    // and the build thread do), so they reach the poll loop as events.
    let signals = match SignalFd::new() {
        Ok(s) => s,
        Err(e) => {
            logging::eprintln_error("piw-slave", &format!("cannot set up signals: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let settings = match SlaveConfig::from_env() {
        Ok(Parsed::Run(settings)) => settings,
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
    let config = match SlaveConfig::from_settings(&settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = logging::init(&config.log) {
        logging::eprintln_error("piw-slave", &e.to_string());
        return ExitCode::from(2);
    }
    log::info!(target: "slave", "PiWheels Slave version {}", piwheels::VERSION);
    if piwheels::running_as_root() && !piwheels::root_allowed() {
        log::error!(
            target: "slave",
            "Slave must not be run as root (set PIWHEELS_ALLOW_ROOT=1 to override in a container)"
        );
        return ExitCode::FAILURE;
    }
    if !clock_is_sane(chrono::Utc::now()) {
        log::error!(target: "slave", "System clock is far in the past");
        return ExitCode::FAILURE;
    }
    let slave = match Slave::new(config, signals, Notifier::from_env()) {
        Ok(s) => s,
        Err(e) => {
            log::error!(target: "slave", "{e}");
            return ExitCode::FAILURE;
        }
    };
    ExitCode::from(slave.run().clamp(0, 255) as u8)
}
