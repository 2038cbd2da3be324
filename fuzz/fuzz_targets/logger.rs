//! piw-logger's line parser and hit classification. The first byte picks
//! the format (combined, common, common_vhost, or a LogFormat string taken
//! from the first line); every following line is parsed and classified.
//! Lines that become a message must encode and decode as LOG* messages.
#![no_main]

use libfuzzer_sys::fuzz_target;
use piwheels::logger::format::{COMBINED, COMMON, COMMON_VHOST};
use piwheels::logger::{LogFormat, Outcome, process_line};
use piwheels::protocol::{LogMessage, WireMessage};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let mut lines = text.split('\n');
    let spec = match pick % 4 {
        0 => COMBINED,
        1 => COMMON,
        2 => COMMON_VHOST,
        _ => lines.next().unwrap_or(""),
    };
    let Ok(format) = LogFormat::new(spec) else {
        return;
    };
    for line in lines {
        match process_line(&format, line) {
            Outcome::Send(msg) => {
                let bytes = msg.encode();
                let back = LogMessage::decode(&bytes).expect("a LOG message decodes");
                assert_eq!(back, msg, "LOG message changed on the wire");
            }
            Outcome::Ignored(why) => assert!(!why.describe().is_empty()),
            Outcome::Bad(e) => assert!(!e.to_string().is_empty()),
        }
    }
});
