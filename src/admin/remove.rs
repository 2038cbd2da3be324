//! piw-remove: removes, skips or yanks a package or version, or deletes
//! its builds, with REMPKG/REMVER.

use std::ffi::OsString;
use std::path::PathBuf;

use super::{ImportClient, Outcome, Tool, confirm, unexpected};
use crate::config::import::Command;
use crate::config::remove::RemoveConfig;
use crate::config::{ConfigError, LogSettings};
use crate::protocol::import::{RemovePackage, RemoveVersion};
use crate::protocol::{ImportReply, ImportRequest};

const TARGET: &str = "piw-remove";

/// The request piw-remove sends for `config`.
pub fn request(config: &RemoveConfig) -> ImportRequest {
    match &config.version {
        None => ImportRequest::RemPkg(RemovePackage {
            package: config.package.clone(),
            builds: config.builds,
            skip: config.skip.clone(),
        }),
        Some(version) => ImportRequest::RemVer(RemoveVersion {
            package: config.package.clone(),
            version: version.clone(),
            builds: config.builds,
            skip: config.skip.clone(),
            yank: config.yank,
        }),
    }
}

/// What the master's reply means for the operator.
pub fn interpret(config: &RemoveConfig, reply: &ImportReply) -> Result<String, String> {
    let what = match &config.version {
        None => config.package.clone(),
        Some(v) => format!("{} {v}", config.package),
    };
    match reply {
        ImportReply::Done(done) => Ok(match done.as_str() {
            "DELPKG" => format!("Removed package {what} successfully"),
            "DELVER" => format!("Removed version {what} successfully"),
            "DELPKGBLD" => format!("Removed builds for package {what} successfully"),
            "DELVERBLD" => format!("Removed builds for version {what} successfully"),
            "SKIPPKG" => format!("Skipped package {what} successfully"),
            "SKIPVER" => format!("Skipped version {what} successfully"),
            "YANKVER" => format!("Yanked version {what} successfully"),
            _ => return Err(unexpected(reply)),
        }),
        ImportReply::Error(code) => Err(match code.as_str() {
            "NOPKG" => format!("Package {} does not exist", config.package),
            "NOVER" => format!("Version {what} does not exist"),
            other => format!("the master refused: {other}"),
        }),
        ImportReply::Send(_) => Err(unexpected(reply)),
    }
}

impl Tool for RemoveConfig {
    const NAME: &'static str = TARGET;

    fn parse(args: Vec<OsString>, default_files: &[PathBuf]) -> Result<Command<Self>, ConfigError> {
        RemoveConfig::parse(args, default_files)
    }

    fn log(&self) -> &LogSettings {
        &self.log
    }

    fn run(&self) -> Result<Outcome, String> {
        log::info!(target: TARGET, "PiWheels Remover version {}", crate::VERSION);
        if !self.yes {
            match &self.version {
                None => log::warn!(target: TARGET, "Preparing to remove/alter {}", self.package),
                Some(v) => {
                    log::warn!(target: TARGET, "Preparing to remove/alter {} {v}", self.package)
                }
            }
            if !confirm("Proceed?") {
                log::warn!(target: TARGET, "User aborted removal");
                return Ok(Outcome::Aborted);
            }
        }
        log::info!(target: TARGET, "Connecting to master at {}", self.import_queue);
        let client = ImportClient::connect(&self.import_queue, self.reply_timeout)?;
        let reply = client.request(&request(self))?;
        let done = interpret(self, &reply)?;
        log::info!(target: TARGET, "{done}");
        Ok(Outcome::Done)
    }
}
