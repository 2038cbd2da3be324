//! Logging for every program, on fern, arranged the way piwheels does it:
//! the console shows `name: message` at the level chosen by `-q`/`-v`
//! (ERROR, WARNING by default, INFO), `-l FILE` gets every record with a
//! timestamp, and `--debug PATTERN` turns on DEBUG for the tasks whose names
//! match (`master.slave_driver`, `master.the_*`), which also makes the console
//! show DEBUG. Our log targets are piwheels' task names, so the same
//! `--debug` patterns work on either master.

use std::io::Write;

use log::{Level, LevelFilter};

use crate::config::LogSettings;

/// Console lines longer than this are cut, with "...", as piwheels does.
const CONSOLE_WIDTH: usize = 120;

/// Log targets for the master's tasks, named as piwheels names them.
pub mod target {
    pub const MASTER: &str = "master";
    pub const SLAVE_DRIVER: &str = "master.slave_driver";
    pub const FILE_JUGGLER: &str = "master.file_juggler";
    pub const CLOUD_GAZER: &str = "master.cloud_gazer";
    pub const THE_ARCHITECT: &str = "master.the_architect";
    pub const THE_SCRIBE: &str = "master.the_scribe";
    pub const THE_SECRETARY: &str = "master.the_secretary";
    pub const BIG_BROTHER: &str = "master.big_brother";
    pub const MR_CHASE: &str = "master.mr_chase";
    pub const LUMBERJACK: &str = "master.lumberjack";
    pub const THE_ORACLE: &str = "master.the_oracle";
}

/// Why logging could not be set up.
#[derive(Debug)]
pub struct LogError(pub String);

impl std::fmt::Display for LogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Installs the global logger. Call once, early in `main`.
pub fn init(settings: &LogSettings) -> Result<(), LogError> {
    let debug = settings.debug.clone();
    let console_level = if settings.dev_mode || !debug.is_empty() {
        LevelFilter::Debug
    } else {
        settings.console_level
    };
    let filter_patterns = debug.clone();
    // The most detailed level any output can show: records above it are
    // skipped by the `log` macros themselves, before any formatting, which
    // matters on the hot path (every slave request logs at INFO).
    let task_max = if debug.is_empty() {
        LevelFilter::Info
    } else {
        LevelFilter::Debug
    };
    let root_level = if settings.log_file.is_some() {
        task_max.max(console_level)
    } else {
        console_level.min(task_max.max(LevelFilter::Warn))
    };
    let mut root = fern::Dispatch::new()
        .level(root_level)
        .filter(move |meta| meta.level() <= task_level(meta.target(), &filter_patterns));

    let console = fern::Dispatch::new()
        .level(console_level)
        .format(|out, message, record| {
            let line = format!("{}: {}", record.target(), message);
            out.finish(format_args!("{}", truncate(&line, CONSOLE_WIDTH)))
        })
        .chain(std::io::stderr());
    root = root.chain(console);

    if let Some(path) = &settings.log_file {
        let file = fern::log_file(path)
            .map_err(|e| LogError(format!("cannot open log file {}: {e}", path.display())))?;
        let to_file = fern::Dispatch::new()
            .format(|out, message, record| {
                out.finish(format_args!(
                    "{} {} {}: {}",
                    chrono::Local::now().format("%Y-%m-%d %H:%M:%S,%3f"),
                    record.target(),
                    level_name(record.level()),
                    message
                ))
            })
            .chain(file);
        root = root.chain(to_file);
    }
    root.apply()
        .map_err(|e| LogError(format!("cannot install the logger: {e}")))?;
    Ok(())
}

/// Python's level names, so log files read like piwheels' own.
fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "ERROR",
        Level::Warn => "WARNING",
        Level::Info => "INFO",
        Level::Debug | Level::Trace => "DEBUG",
    }
}

/// The most detailed level a target logs at: DEBUG for `--debug` matches,
/// INFO for our own tasks and WARNING for libraries (their INFO chatter is
/// not the operator's business).
fn task_level(target: &str, debug: &[String]) -> LevelFilter {
    if debug.iter().any(|p| fnmatch(p, target)) {
        LevelFilter::Debug
    } else if target == "master"
        || target.starts_with("master.")
        || target.starts_with("slave")
        || target.starts_with("piw")
        || target.starts_with("piwheels")
    {
        LevelFilter::Info
    } else {
        LevelFilter::Warn
    }
}

fn truncate(line: &str, width: usize) -> std::borrow::Cow<'_, str> {
    if line.chars().count() <= width {
        return line.into();
    }
    let cut: String = line.chars().take(width - 3).collect();
    format!("{cut}...").into()
}

/// Shell-style matching with `*`, `?` and `[...]`, as Python's `fnmatch`
/// (case-sensitive). Iterative with back-tracking on the last `*`, so a
/// pattern cannot make it exponential.
pub fn fnmatch(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = match_class(&p, pi, n[ni]) {
                        if matched {
                            pi = next;
                            ni += 1;
                            continue;
                        }
                    } else if n[ni] == '[' {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
                c if c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) => {
                pi = sp + 1;
                ni = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `c` against the class starting at `p[start] == '['`; returns
/// whether it matched and the index after the class, or `None` if the class
/// is unterminated (then `[` is literal).
fn match_class(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = i < p.len() && p[i] == '!';
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() && (p[i] != ']' || first) {
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                matched = true;
            }
            i += 1;
        }
        first = false;
    }
    if i >= p.len() {
        return None;
    }
    Some((matched != negate, i + 1))
}

/// Writes a fatal error for a user who may not have a logger yet.
pub fn eprintln_error(program: &str, msg: &str) {
    let _ = writeln!(std::io::stderr(), "{program}: {msg}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_like_python() {
        assert!(fnmatch("master.the_*", "master.the_scribe"));
        assert!(fnmatch("master.*", "master.slave_driver"));
        assert!(!fnmatch("master.the_*", "master.slave_driver"));
        assert!(fnmatch("master.slave_driver", "master.slave_driver"));
        assert!(!fnmatch("master.slave_driver", "master.slave_drivers"));
        assert!(fnmatch("master.?ig_brother", "master.big_brother"));
        assert!(fnmatch("*", ""));
        assert!(fnmatch("master.[bf]*", "master.file_juggler"));
        assert!(!fnmatch("master.[!bf]*", "master.file_juggler"));
        assert!(fnmatch("a[", "a["));
        assert!(fnmatch("*a*a*a*a*a*b", &("a".repeat(40) + "b")));
        assert!(!fnmatch("*a*a*a*a*a*b", &"a".repeat(40)));
    }

    #[test]
    fn task_levels() {
        let dbg = vec!["master.the_*".to_string()];
        assert_eq!(task_level("master.the_scribe", &dbg), LevelFilter::Debug);
        assert_eq!(task_level("master.slave_driver", &dbg), LevelFilter::Info);
        assert_eq!(
            task_level("tokio_postgres::connection", &dbg),
            LevelFilter::Warn
        );
        assert_eq!(
            task_level("tokio_postgres::connection", &["tokio*".to_string()]),
            LevelFilter::Debug
        );
    }

    #[test]
    fn console_lines_are_cut_at_120() {
        let long = "x".repeat(200);
        let cut = truncate(&long, 120);
        assert_eq!(cut.chars().count(), 120);
        assert!(cut.ends_with("..."));
        assert_eq!(truncate("short", 120), "short");
    }
}
