//! piw-import: see `piwheels::admin::import`; this only starts it.
//!
//! Exit status: 0 done; 1 failed (the master refused or could not be
//! reached); 2 usage error or the operator declined.

use std::process::ExitCode;

use piwheels::config::import::ImportConfig;

fn main() -> ExitCode {
    piwheels::admin::main::<ImportConfig>()
}
