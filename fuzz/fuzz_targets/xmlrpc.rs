//! The streaming XML-RPC changelog parser: any body gives entries or an
//! error (never a panic or a hang), and the count it returns is the number
//! of entries it handed over.
#![no_main]

use libfuzzer_sys::fuzz_target;
use piwheels::pypi::xmlrpc::{XmlRpcError, parse_changelog};

fuzz_target!(|data: &[u8]| {
    let mut seen = 0usize;
    match parse_changelog(data, |e| {
        seen += 1;
        // Only Other may have an empty name.
        let _ = (&e.name, &e.version, e.timestamp, e.serial, e.action);
    }) {
        Ok(n) => assert_eq!(n, seen, "returned count differs from entries handed over"),
        Err(e) => {
            let text = e.to_string();
            assert!(!text.is_empty());
            // Error texts are shortened for the log.
            if let XmlRpcError::Malformed(why) = &e {
                assert!(
                    why.len() <= 4096,
                    "unbounded error text: {} bytes",
                    why.len()
                );
            }
        }
    }
});
