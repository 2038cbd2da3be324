//! piw-add: adds (or updates) a package or a version with ADDPKG/ADDVER.
//! A new package's description comes from PyPI unless `-d` gives one; if
//! PyPI cannot be asked, it is left empty (the master's cloud_gazer fills
//! it in later) rather than failing the addition.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::{ImportClient, Outcome, Tool, confirm, unexpected};
use crate::config::add::AddConfig;
use crate::config::import::Command;
use crate::config::{ConfigError, LogSettings};
use crate::names::canonicalize;
use crate::protocol::import::{AddPackage, AddVersion};
use crate::protocol::{ImportReply, ImportRequest};

const TARGET: &str = "piw-add";

/// The request piw-add sends for `config` (with the description found).
pub fn request(config: &AddConfig, description: String) -> ImportRequest {
    match &config.version {
        None => ImportRequest::AddPkg(AddPackage {
            package: config.package.clone(),
            description,
            skip: config.skip.clone(),
            unskip: config.unskip,
            aliases: config.aliases.clone(),
        }),
        Some(version) => ImportRequest::AddVer(AddVersion {
            package: config.package.clone(),
            version: version.clone(),
            skip: config.skip.clone(),
            unskip: config.unskip,
            released: config.released,
            yank: config.yank,
            unyank: config.unyank,
            aliases: config.aliases.clone(),
        }),
    }
}

/// What the master's reply means for the operator.
pub fn interpret(config: &AddConfig, reply: &ImportReply) -> Result<String, String> {
    let pkg = &config.package;
    match reply {
        ImportReply::Done(what) => match what.as_str() {
            "NEWPKG" => Ok(format!("Added package {pkg} successfully")),
            "UPDPKG" => Ok(format!("Updated package {pkg} successfully")),
            "NEWVER" | "UPDVER" => {
                let v = config.version.as_deref().unwrap_or_default();
                let verb = if what == "NEWVER" { "Added" } else { "Updated" };
                Ok(format!("{verb} version {pkg} {v} successfully"))
            }
            _ => Err(unexpected(reply)),
        },
        ImportReply::Error(code) => Err(match code.as_str() {
            "NOPKG" => format!("Package {pkg} does not exist - add it with piw-add first"),
            "SKIPPKG" => {
                "Cannot skip a known package with piw-add - use piw-remove instead".to_string()
            }
            "SKIPVER" => {
                "Cannot skip a known version with piw-add - use piw-remove instead".to_string()
            }
            "YANKVER" => {
                "Cannot yank a known version with piw-add - use piw-remove instead".to_string()
            }
            other => format!("the master refused: {other}"),
        }),
        ImportReply::Send(_) => Err(unexpected(reply)),
    }
}

/// A package's summary from PyPI's JSON API ("" if it cannot be had).
fn pypi_description(config: &AddConfig, package: &str) -> String {
    let mut client = crate::pypi::client::ClientConfig::new(&config.pypi_json, &config.pypi_json);
    client.timeout = Duration::from_secs(10);
    client.total_timeout = Duration::from_secs(30);
    match crate::pypi::client::fetch_description(&client, package) {
        Ok(d) => d,
        Err(e) => {
            log::warn!(
                target: TARGET,
                "cannot get the description of {package} from {}: {e}; leaving it empty",
                config.pypi_json
            );
            String::new()
        }
    }
}

impl Tool for AddConfig {
    const NAME: &'static str = TARGET;

    fn parse(args: Vec<OsString>, default_files: &[PathBuf]) -> Result<Command<Self>, ConfigError> {
        AddConfig::parse(args, default_files)
    }

    fn log(&self) -> &LogSettings {
        &self.log
    }

    fn run(&self) -> Result<Outcome, String> {
        log::info!(target: TARGET, "PiWheels Adder version {}", crate::VERSION);
        if !self.yes {
            match &self.version {
                None => log::warn!(target: TARGET, "Preparing to add/update {}", self.package),
                Some(v) => {
                    log::warn!(target: TARGET, "Preparing to add/update {} {v}", self.package)
                }
            }
            if !confirm("Proceed?") {
                log::warn!(target: TARGET, "User aborted addition");
                return Ok(Outcome::Aborted);
            }
        }
        let description = match (&self.version, &self.description) {
            (_, Some(d)) => d.clone(),
            (None, None) => pypi_description(self, &canonicalize(&self.package)),
            (Some(_), None) => String::new(),
        };
        log::info!(target: TARGET, "Connecting to master at {}", self.import_queue);
        let client = ImportClient::connect(&self.import_queue, self.reply_timeout)?;
        let reply = client.request(&request(self, description))?;
        let done = interpret(self, &reply)?;
        log::info!(target: TARGET, "{done}");
        Ok(Outcome::Done)
    }
}
