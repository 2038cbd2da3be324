//! Wheel file names (and the PEP 503 canonical form, and the
//! Requires-Dist parser of the same module). A name that validates is safe
//! as a path component and splits back into itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use piwheels::master::file_juggler::{armv6l_name, check_wheel_name};
use piwheels::wheel::{Requirement, WheelName, validate_filename};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let valid = validate_filename(s);
    assert_eq!(valid.is_ok(), check_wheel_name(s).is_ok());
    match WheelName::parse(s) {
        Ok(w) => {
            assert!(valid.is_ok());
            assert!(!s.contains(['/', '\\', '\0']) && !s.starts_with('.'));
            assert!(s.len() <= 255);
            let mut parts = vec![w.package.as_str(), w.version.as_str()];
            parts.extend(w.build.as_deref());
            // piwheels reads an ABI field of "noabi" as "none"; look at the
            // ABI field itself, not anywhere in the name (a version may
            // contain "-noabi-" too: found by this target).
            let abi_field = s
                .strip_suffix(".whl")
                .and_then(|stem| stem.rsplitn(3, '-').nth(1));
            let abi = if w.abi_tag == "none" && abi_field == Some("noabi") {
                "noabi"
            } else {
                w.abi_tag.as_str()
            };
            parts.extend([w.python_tag.as_str(), abi, w.platform_tag.as_str()]);
            assert_eq!(
                format!("{}.whl", parts.join("-")),
                s,
                "parts do not rebuild the name"
            );
            let canon = w.canonical_package();
            assert_eq!(
                piwheels::names::canonicalize(&canon),
                canon,
                "canonical form moves"
            );
            assert!(!canon.contains(['_', '.', '/']));
            if let Some(v6) = armv6l_name(s) {
                assert!(validate_filename(&v6).is_ok(), "{v6:?}");
            }
        }
        Err(e) => {
            assert_eq!(Err(e.clone()), valid);
            assert!(!e.to_string().is_empty());
        }
    }
    if let Ok(r) = Requirement::parse(s) {
        let _ = r.only_for_extras();
    }
});
