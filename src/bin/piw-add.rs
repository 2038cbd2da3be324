//! piw-add: see `piwheels::admin::add`; this only starts it.
//!
//! Exit status: 0 done; 1 failed (the master refused or could not be
//! reached); 2 usage error or the operator declined.

use std::process::ExitCode;

use piwheels::config::add::AddConfig;

fn main() -> ExitCode {
    piwheels::admin::main::<AddConfig>()
}
