//! A commented configuration file generated from a program's option table,
//! so the `/etc/piwheels.conf` the package ships lists every option with its
//! help and default and can never fall behind the parser.

use super::{COMMON_OPTS, Kind, Opt, Program};

/// What the Debian package sets in `/etc/piwheels.conf` (everything else is
/// left commented at its default). The ipc sockets live in systemd's
/// `RuntimeDirectory=piwheels` rather than world-writable `/tmp`.
pub const DEBIAN_SETTINGS: &[(&str, &str)] = &[
    ("output-path", "/var/www/piwheels"),
    ("status-queue", "ipc:///run/piwheels/status"),
    ("control-queue", "ipc:///run/piwheels/control"),
    ("import-queue", "ipc:///run/piwheels/import"),
    ("log-queue", "ipc:///run/piwheels/logger"),
];

/// The head of the Debian package's `/etc/piwheels.conf`.
pub const DEBIAN_HEADER: &str = "\
/etc/piwheels.conf: settings of piw-master (and of every other piwheels tool,
which ignore the keys they do not know), as 'key = value' lines. The command
line beats this file. Uncommented lines are what the piwheels-master package
changes from piwheels' defaults; if you move output-path, allow the new path
in the unit with 'systemctl edit piwheels-master' (ReadWritePaths=).
Generated from piw-master's option table (see piw-master --help).
";

/// The text of a configuration file for `program`: every option (but
/// `--configuration`, which means nothing inside a file) as a commented
/// block; options named in `set` are written uncommented with that value.
pub fn sample_config(program: &Program, header: &str, set: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for line in header.lines() {
        push_comment(&mut out, line);
    }
    out.push_str("[master]\n");
    for opt in COMMON_OPTS.iter().chain(program.opts) {
        if opt.key() == "configuration" {
            continue;
        }
        out.push('\n');
        push_option(&mut out, opt, set);
    }
    out
}

fn push_option(out: &mut String, opt: &Opt, set: &[(&str, &str)]) {
    let mut usage = opt.long.to_string();
    if opt.kind != Kind::Flag {
        usage = format!("{usage} {}", opt.metavar);
    }
    if let Some(short) = opt.short {
        usage = format!("{usage} ({short})");
    }
    push_comment(out, &usage);
    for line in wrap(opt.help, 74) {
        push_comment(out, &format!("  {line}"));
    }
    let key = opt.key();
    let example = match (opt.kind, opt.default) {
        (Kind::Flag, _) => "false".to_string(),
        (Kind::Multi, _) => format!("[{}]", opt.metavar),
        (Kind::Value, Some(d)) => d.to_string(),
        (Kind::Value, None) => format!("<{}>", opt.metavar),
    };
    match set.iter().find(|(k, _)| *k == key) {
        Some((_, value)) => {
            push_comment(out, &format!("  (default: {example})"));
            out.push_str(&format!("{key} = {value}\n"));
        }
        None => out.push_str(&format!("#{key} = {example}\n")),
    }
}

fn push_comment(out: &mut String, line: &str) {
    if line.is_empty() {
        out.push_str("#\n");
    } else {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
}

/// Greedy word wrap at `width` columns.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::master::PROGRAM;
    use crate::config::parse_config_text;

    #[test]
    fn every_option_is_listed_and_the_set_ones_parse_back() {
        let text = sample_config(&PROGRAM, "test", DEBIAN_SETTINGS);
        for opt in PROGRAM.opts {
            assert!(
                text.contains(&format!("\n#{} = ", opt.key()))
                    || text.contains(&format!("\n{} = ", opt.key())),
                "{} missing:\n{text}",
                opt.key()
            );
        }
        let entries = parse_config_text(&text).unwrap();
        let got: Vec<(String, String)> = entries
            .into_iter()
            .map(|e| (e.key, e.value.unwrap()))
            .collect();
        let want: Vec<(String, String)> = DEBIAN_SETTINGS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn wrap_keeps_words_whole() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("", 5), Vec::<String>::new());
    }
}
