//! piw-logger's work, sans-IO: Apache/nginx access-log lines in, lumberjack
//! messages out.
//!
//! - [`format`]: compiles an Apache `LogFormat` (default `combined`) and
//!   parses lines with it;
//! - [`classify`]: decides which hits piwheels 0.23 reports and builds the
//!   `LOGDOWNLOAD`/`LOGSEARCH`/`LOGPROJECT`/`LOGJSON`/`LOGPAGE` message;
//! - [`Tally`]: what happened to every line, for the summary piw-logger
//!   prints and for tests.
//!
//! The program itself (`src/bin/piw-logger.rs`) only reads files and
//! pushes the messages to the master's log queue.

pub mod classify;
pub mod format;

pub use classify::{Ignored, LogType};
pub use format::{Entry, LineError, LogFormat};

use crate::protocol::LogMessage;

/// What became of one line.
#[derive(Debug)]
// Short-lived, one per line: boxing the message would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// A hit to report.
    Send(LogMessage),
    /// A well-formed line piwheels does not count.
    Ignored(Ignored),
    /// A line that does not fit the format.
    Bad(LineError),
}

/// Parses and classifies one line.
pub fn process_line(format: &LogFormat, line: &str) -> Outcome {
    match format.parse(line) {
        Ok(entry) => match classify::to_message(&entry) {
            Ok(msg) => Outcome::Send(msg),
            Err(why) => Outcome::Ignored(why),
        },
        Err(e) => Outcome::Bad(e),
    }
}

/// Counts of what happened to the lines read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Lines read.
    pub lines: u64,
    /// Messages sent, per [`LogType`] (indexed by [`LogType::index`]).
    pub sent: [u64; 5],
    /// Well-formed lines not reported.
    pub ignored: u64,
    /// Lines that did not fit the format (or were too long or empty).
    pub bad: u64,
    /// Messages dropped because the master's queue was full (`--drop`).
    pub dropped: u64,
}

impl Tally {
    /// Messages sent, in total.
    pub fn sent_total(&self) -> u64 {
        self.sent.iter().sum()
    }

    /// One short line for the log: `9 lines: 3 LOGDOWNLOAD, 1 LOGPAGE;
    /// 4 ignored, 1 bad, 0 dropped` (kinds with none are left out).
    pub fn summary(&self) -> String {
        let sent: Vec<String> = LogType::ALL
            .iter()
            .filter(|t| self.sent[t.index()] > 0)
            .map(|t| format!("{} {}", self.sent[t.index()], t.message_name()))
            .collect();
        format!(
            "{} lines: {}; {} ignored, {} bad, {} dropped",
            self.lines,
            if sent.is_empty() {
                "nothing sent".to_owned()
            } else {
                sent.join(", ")
            },
            self.ignored,
            self.bad,
            self.dropped
        )
    }
}

/// A short, printable excerpt of a bad line for messages (control
/// characters escaped, at most `max` characters).
pub fn excerpt(line: &str, max: usize) -> String {
    let mut out: String = line
        .chars()
        .take(max)
        .flat_map(char::escape_debug)
        .collect();
    if line.chars().nth(max).is_some() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_to_outcomes() {
        let f = LogFormat::new(format::COMBINED).unwrap();
        let ok =
            r#"1.2.3.4 - - [11/Oct/2019:06:26:55 +0000] "GET / HTTP/1.1" 200 1 "-" "Firefox/1""#;
        assert!(matches!(
            process_line(&f, ok),
            Outcome::Send(LogMessage::Page(_))
        ));
        let head = ok.replace("GET", "HEAD");
        assert!(matches!(
            process_line(&f, &head),
            Outcome::Ignored(Ignored::NotGet)
        ));
        assert!(matches!(process_line(&f, "garbage"), Outcome::Bad(_)));
        let host = ok.replace("1.2.3.4", "example.com");
        assert!(matches!(
            process_line(&f, &host),
            Outcome::Ignored(Ignored::NotAnAddress)
        ));
    }

    #[test]
    fn summaries_are_short() {
        let mut t = Tally {
            lines: 9,
            ignored: 4,
            bad: 1,
            ..Tally::default()
        };
        assert_eq!(
            t.summary(),
            "9 lines: nothing sent; 4 ignored, 1 bad, 0 dropped"
        );
        t.sent[LogType::Download.index()] = 3;
        t.sent[LogType::Page.index()] = 1;
        assert_eq!(
            t.summary(),
            "9 lines: 3 LOGDOWNLOAD, 1 LOGPAGE; 4 ignored, 1 bad, 0 dropped"
        );
        assert_eq!(t.sent_total(), 4);
    }

    #[test]
    fn excerpts_are_short_and_printable() {
        assert_eq!(excerpt("a\u{1b}b", 10), "a\\u{1b}b");
        assert_eq!(excerpt("abcdef", 3), "abc...");
    }
}
