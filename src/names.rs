//! Package names as piwheels 0.23 stores them: PEP 503 canonical form
//! (lower case, every run of `-`, `_` and `.` replaced by one `-`).

/// The PEP 503 canonical form of a project name.
pub fn canonicalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::canonicalize;

    #[test]
    fn pep_503() {
        assert_eq!(canonicalize("Foo_Bar"), "foo-bar");
        assert_eq!(canonicalize("foo.bar"), "foo-bar");
        assert_eq!(canonicalize("Foo__.-Bar"), "foo-bar");
        assert_eq!(canonicalize("zope.interface"), "zope-interface");
        assert_eq!(canonicalize("NumPy"), "numpy");
        assert_eq!(canonicalize("a-"), "a-");
        assert_eq!(canonicalize(""), "");
    }
}
