//! piw-rebuild: asks the master to write pages again (REBUILD). The pages
//! are written when the master's secretary gets to them, not before the
//! reply.

use std::ffi::OsString;
use std::path::PathBuf;

use super::{ImportClient, Outcome, Tool, confirm, unexpected};
use crate::config::import::Command;
use crate::config::rebuild::RebuildConfig;
use crate::config::{ConfigError, LogSettings};
use crate::protocol::{ImportReply, ImportRequest, RebuildPart};

const TARGET: &str = "piw-rebuild";

/// What the master's reply means for the operator.
pub fn interpret(config: &RebuildConfig, reply: &ImportReply) -> Result<String, String> {
    match reply {
        ImportReply::Done(_) => Ok("Queued rebuild request for page(s) successfully".into()),
        ImportReply::Error(msg) => Err(match &config.part {
            RebuildPart::Project(Some(p)) | RebuildPart::Both(Some(p))
                if msg.contains("unknown package") || msg == "NOPKG" =>
            {
                format!("Package {p} does not exist")
            }
            _ => format!("the master refused: {msg}"),
        }),
        ImportReply::Send(_) => Err(unexpected(reply)),
    }
}

impl Tool for RebuildConfig {
    const NAME: &'static str = TARGET;

    fn parse(args: Vec<OsString>, default_files: &[PathBuf]) -> Result<Command<Self>, ConfigError> {
        RebuildConfig::parse(args, default_files)
    }

    fn log(&self) -> &LogSettings {
        &self.log
    }

    fn run(&self) -> Result<Outcome, String> {
        log::info!(target: TARGET, "PiWheels Rebuilder version {}", crate::VERSION);
        let everything = matches!(
            self.part,
            RebuildPart::Project(None) | RebuildPart::Both(None)
        );
        if everything && !self.yes {
            if !confirm("This will rebuild pages for ALL packages; proceed?") {
                log::warn!(target: TARGET, "User aborted rebuild");
                return Ok(Outcome::Aborted);
            }
            log::warn!(target: TARGET, "Go make coffee...");
        }
        log::info!(target: TARGET, "Connecting to master at {}", self.import_queue);
        let client = ImportClient::connect(&self.import_queue, self.reply_timeout)?;
        let reply = client.request(&ImportRequest::Rebuild(self.part.clone()))?;
        let done = interpret(self, &reply)?;
        log::info!(target: TARGET, "{done}");
        Ok(Outcome::Done)
    }
}
