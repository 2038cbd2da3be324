//! `piw-master`: follows PyPI, drives the build slaves and writes the site.
//! All the work is in `piwheels::master`; this only wires up the process.

use std::process::ExitCode;

use piwheels::config::Parsed;
use piwheels::config::master::MasterConfig;
use piwheels::logging::{self, target};
use piwheels::master::Master;
use piwheels::signals::SignalFd;
use piwheels::systemd::Notifier;

fn main() -> ExitCode {
    // Block the termination signals before anything starts a thread (libzmq
    // does), so they reach the poll loop through the signalfd.
    let signals = match SignalFd::new() {
        Ok(s) => s,
        Err(e) => {
            logging::eprintln_error("piw-master", &format!("cannot set up signals: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let settings = match MasterConfig::from_env() {
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
    let config = match MasterConfig::from_settings(&settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = logging::init(&config.log) {
        logging::eprintln_error("piw-master", &e.to_string());
        return ExitCode::from(2);
    }
    if config.dev_mode {
        log::warn!(target: target::MASTER, "*** DEVELOPMENT MODE ***");
    }
    if piwheels::running_as_root() && !piwheels::root_allowed() {
        log::error!(
            target: target::MASTER,
            "Master must not be run as root (set PIWHEELS_ALLOW_ROOT=1 to override in a container)"
        );
        return ExitCode::FAILURE;
    }
    let master = match Master::new(config, signals, Notifier::from_env()) {
        Ok(m) => m,
        Err(e) => {
            log::error!(target: target::MASTER, "{e}");
            return ExitCode::FAILURE;
        }
    };
    match master.run() {
        Ok(_) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
