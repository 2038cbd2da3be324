//! `piw-slave`: builds wheels for a piwheels master.

pub mod machine;
pub mod process;
