//! piw-initdb: create or upgrade the piwheels database.
//!
//! A thin front over `piwheels::initdb`: parse the options (piwheels' own:
//! `-d DSN -u USER -y --debug` plus the common `-c -q -v -l`), connect as a
//! superuser, show what will be done, ask `[Y/n]` unless `-y`, then run it
//! all in one transaction.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use piwheels::config::{LogSettings, Opt, Parsed, Program};
use piwheels::initdb;

const OPTS: &[Opt] = &[
    Opt::value(
        Some("-d"),
        "--dsn",
        "DSN",
        Some(piwheels::db::dsn::DEFAULT_DSN),
        "The database to create or upgrade; this DSN must connect as a cluster superuser",
    ),
    Opt::value(
        Some("-u"),
        "--user",
        "NAME",
        Some("piwheels"),
        "The name of the ordinary piwheels database user; this must *not* be a cluster \
         superuser",
    ),
    Opt::flag(
        Some("-y"),
        "--yes",
        "Proceed without prompting before creating or upgrading the database",
    ),
    Opt::flag(
        None,
        "--debug",
        "Show every SQL statement as it is executed",
    ),
];

const PROGRAM: Program = Program {
    name: "piw-initdb",
    description: "Creates the piwheels tables, view and functions in an existing, empty PostgreSQL database, or upgrades an older piwheels schema one version at a time. Connect as a cluster superuser (the master itself must not); the ordinary user the master will connect as gets only the rights it needs. Asks before changing anything",
    opts: OPTS,
    epilog: "",
};

/// Asks a yes/no question on the terminal; an empty answer is yes.
fn confirm(question: &str) -> bool {
    let stdin = std::io::stdin();
    loop {
        print!("{question} [Y/n] ");
        let _ = std::io::stdout().flush();
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        match line.trim().to_ascii_lowercase().as_str() {
            "" | "y" | "yes" => return true,
            "n" | "no" => return false,
            _ => println!("Please answer y or n"),
        }
    }
}

fn run() -> Result<ExitCode, String> {
    let settings = match PROGRAM.parse_env() {
        Ok(Parsed::Help(text)) => {
            print!("{text}");
            return Ok(ExitCode::SUCCESS);
        }
        Ok(Parsed::Version(text)) => {
            println!("{text}");
            return Ok(ExitCode::SUCCESS);
        }
        Ok(Parsed::Run(s)) => s,
        Err(e) => {
            // The message already names the program.
            eprintln!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    let debug = settings.flag("debug");
    let log = LogSettings {
        console_level: if debug {
            log::LevelFilter::Debug
        } else {
            settings.log_level()
        },
        log_file: settings.get("log-file").map(PathBuf::from),
        debug: Vec::new(),
        dev_mode: false,
    };
    piwheels::logging::init(&log).map_err(|e| e.to_string())?;
    let quiet = settings.flag("quiet");
    let dsn = settings.value("dsn");
    let user = settings.value("user");

    let mut client = initdb::connect(&dsn).map_err(|e| e.to_string())?;
    let plan = initdb::prepare(&mut client, &user).map_err(|e| e.to_string())?;
    if plan.is_noop() {
        log::warn!(target: "initdb", "{}", plan.describe());
        return Ok(ExitCode::SUCCESS);
    }
    log::warn!(target: "initdb", "{}", plan.describe());
    if !settings.flag("yes") && !confirm("Proceed?") {
        log::warn!(target: "initdb", "Nothing was changed");
        return Ok(ExitCode::SUCCESS);
    }
    let mut dots = 0;
    initdb::execute(&mut client, &plan, &user, |done, total| {
        if !quiet && !debug {
            // A dot per statement, as piwheels prints them.
            eprint!(".");
            dots += 1;
            if done == total {
                eprintln!();
            }
        }
    })
    .map_err(|e| {
        if dots > 0 {
            eprintln!();
        }
        e.to_string()
    })?;
    log::warn!(target: "initdb", "Database is now at version {}", plan.to);
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(msg) => {
            // Not through the logger: its console lines are truncated, and
            // this one must be read in full.
            piwheels::logging::eprintln_error(PROGRAM.name, &msg);
            ExitCode::FAILURE
        }
    }
}
