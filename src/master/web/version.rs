//! Version ordering as piwheels 0.23 sorts releases: PEP 440 versions as
//! `packaging.version.Version` orders them, and anything else as the
//! `LegacyVersion` piwheels vendors (every legacy version sorts before every
//! PEP 440 one). The original string is kept for display.
//!
//! Written from the specifications (PEP 440 and setuptools' legacy scheme);
//! no regular expressions: a small cursor parser that accepts exactly what
//! PEP 440's canonical pattern accepts.

use std::cmp::Ordering;

/// A parsed version, ordered like piwheels 0.23 orders releases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    key: Key,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    /// setuptools' legacy key: a list of padded parts (epoch -1).
    Legacy(Vec<String>),
    Pep440(Pep440),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pep440 {
    epoch: u64,
    /// Release numbers with trailing zeros removed (1.0 == 1).
    release: Vec<u64>,
    /// (0 = a, 1 = b, 2 = rc, number)
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: Vec<LocalPart>,
}

/// A local version label part: strings sort before numbers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum LocalPart {
    Text(String),
    Number(u64),
}

impl Version {
    /// Parses `s` as PEP 440, falling back to the legacy scheme.
    pub fn parse(s: &str) -> Version {
        let key = match parse_pep440(s) {
            Some(v) => Key::Pep440(v),
            None => Key::Legacy(legacy_key(s)),
        };
        Version { key }
    }

    /// A pre-release or development release (never for legacy versions,
    /// as in `packaging`).
    pub fn is_prerelease(&self) -> bool {
        match &self.key {
            Key::Pep440(v) => v.pre.is_some() || v.dev.is_some(),
            Key::Legacy(_) => false,
        }
    }

    /// Whether the string followed PEP 440.
    pub fn is_pep440(&self) -> bool {
        matches!(self.key, Key::Pep440(_))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        match (&self.key, &other.key) {
            (Key::Legacy(a), Key::Legacy(b)) => a.cmp(b),
            (Key::Legacy(_), Key::Pep440(_)) => Ordering::Less,
            (Key::Pep440(_), Key::Legacy(_)) => Ordering::Greater,
            (Key::Pep440(a), Key::Pep440(b)) => a.cmp_key(b),
        }
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Pep440 {
    fn cmp_key(&self, o: &Pep440) -> Ordering {
        // packaging's sentinels: a dev release without pre/post sorts
        // before every pre-release of the same release; no pre-release
        // sorts after all of them; no post sorts first; no dev sorts last;
        // no local label sorts first.
        fn pre(v: &Pep440) -> (i8, u8, u64) {
            match v.pre {
                None if v.post.is_none() && v.dev.is_some() => (-1, 0, 0),
                None => (1, 0, 0),
                Some((l, n)) => (0, l, n),
            }
        }
        fn post(v: &Pep440) -> (bool, u64) {
            (v.post.is_some(), v.post.unwrap_or(0))
        }
        fn dev(v: &Pep440) -> (bool, u64) {
            (v.dev.is_none(), v.dev.unwrap_or(0))
        }
        self.epoch
            .cmp(&o.epoch)
            .then_with(|| self.release.cmp(&o.release))
            .then_with(|| pre(self).cmp(&pre(o)))
            .then_with(|| post(self).cmp(&post(o)))
            .then_with(|| dev(self).cmp(&dev(o)))
            .then_with(|| self.local.cmp(&o.local))
    }
}

/// A cursor over the lower-cased version string.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn eat_word(&mut self, w: &str) -> bool {
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            true
        } else {
            false
        }
    }
    fn eat_sep(&mut self) -> bool {
        matches!(self.peek(), Some(b'-' | b'_' | b'.')) && {
            self.i += 1;
            true
        }
    }
    /// Digits as a number (saturating: huge numbers still order sensibly).
    fn number(&mut self) -> Option<u64> {
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            n = n.saturating_mul(10).saturating_add(u64::from(d - b'0'));
            self.i += 1;
        }
        (self.i > start).then_some(n)
    }
}

/// PEP 440's pattern, by hand. Each optional part restores the cursor when
/// it does not match, as the pattern's backtracking would.
fn parse_pep440(s: &str) -> Option<Pep440> {
    let lower = s.trim().to_ascii_lowercase();
    let mut c = Cursor {
        s: lower.as_bytes(),
        i: 0,
    };
    c.eat(b'v');
    // Epoch and first release number.
    let first = c.number()?;
    let (epoch, mut release) = if c.eat(b'!') {
        (first, vec![c.number()?])
    } else {
        (0, vec![first])
    };
    loop {
        let save = c.i;
        if c.eat(b'.') {
            if let Some(n) = c.number() {
                release.push(n);
                continue;
            }
        }
        c.i = save;
        break;
    }
    // Pre-release: [-_.]? (alpha|a|beta|b|preview|pre|c|rc) [-_.]? N?
    let pre = {
        let save = c.i;
        c.eat_sep();
        let letter = [
            ("alpha", 0),
            ("a", 0),
            ("beta", 1),
            ("b", 1),
            ("preview", 2),
            ("pre", 2),
            ("rc", 2),
            ("c", 2),
        ]
        .into_iter()
        .find(|(w, _)| c.eat_word(w))
        .map(|(_, l)| l);
        match letter {
            Some(l) => {
                // A separator with no number after it stays consumed: the
                // pattern allows it, and every later part's own separator
                // is optional.
                c.eat_sep();
                Some((l, c.number().unwrap_or(0)))
            }
            None => {
                c.i = save;
                None
            }
        }
    };
    // Post-release: -N | [-_.]? (post|rev|r) [-_.]? N?
    let post = {
        let save = c.i;
        if c.eat(b'-') && c.peek().is_some_and(|b| b.is_ascii_digit()) {
            c.number()
        } else {
            c.i = save;
            c.eat_sep();
            if c.eat_word("post") || c.eat_word("rev") || c.eat_word("r") {
                c.eat_sep();
                Some(c.number().unwrap_or(0))
            } else {
                c.i = save;
                None
            }
        }
    };
    // Development release: [-_.]? dev [-_.]? N?
    let dev = {
        let save = c.i;
        c.eat_sep();
        if c.eat_word("dev") {
            c.eat_sep();
            Some(c.number().unwrap_or(0))
        } else {
            c.i = save;
            None
        }
    };
    // Local label: + [a-z0-9]+ ([-_.][a-z0-9]+)*
    let mut local = Vec::new();
    if c.eat(b'+') {
        loop {
            let start = c.i;
            while c.peek().is_some_and(|b| b.is_ascii_alphanumeric()) {
                c.i += 1;
            }
            if c.i == start {
                return None;
            }
            let part = &lower[start..c.i];
            local.push(match part.bytes().all(|b| b.is_ascii_digit()) {
                true => LocalPart::Number(part.parse().unwrap_or(u64::MAX)),
                false => LocalPart::Text(part.to_owned()),
            });
            if !c.eat_sep() {
                break;
            }
        }
    }
    if c.i != lower.len() {
        return None;
    }
    while release.len() > 1 && release.last() == Some(&0) {
        release.pop();
    }
    if release == [0] {
        release.clear();
    }
    Some(Pep440 {
        epoch,
        release,
        pre,
        post,
        dev,
        local,
    })
}

/// setuptools' legacy key: the lower-cased string split into runs of
/// digits, runs of letters, '.' and '-' (anything between them is a part of
/// its own); numbers zero-padded to 8, other parts prefixed with '*';
/// 'pre'/'preview'/'rc' become 'c', 'dev' becomes '@', '-' becomes
/// 'final-'; '.' is dropped; '*final' ends the list. Then a '-' before a
/// pre-release tag and trailing zeros of each numeric series are removed.
fn legacy_key(s: &str) -> Vec<String> {
    let lower = s.to_lowercase();
    let mut raw: Vec<String> = Vec::new();
    let mut between = String::new();
    let mut chars = lower.chars().peekable();
    let flush = |between: &mut String, raw: &mut Vec<String>| {
        if !between.is_empty() {
            raw.push(std::mem::take(between));
        }
    };
    while let Some(&ch) = chars.peek() {
        if ch.is_ascii_digit() || ch.is_ascii_lowercase() {
            flush(&mut between, &mut raw);
            let digit = ch.is_ascii_digit();
            let mut run = String::new();
            while let Some(&c) = chars.peek() {
                if (digit && c.is_ascii_digit()) || (!digit && c.is_ascii_lowercase()) {
                    run.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            raw.push(run);
        } else if ch == '.' || ch == '-' {
            flush(&mut between, &mut raw);
            raw.push(ch.to_string());
            chars.next();
        } else {
            between.push(ch);
            chars.next();
        }
    }
    flush(&mut between, &mut raw);

    let mut parts: Vec<String> = Vec::new();
    let padded = raw
        .into_iter()
        .filter_map(|p| {
            let p = match p.as_str() {
                "pre" | "preview" | "rc" => "c".to_owned(),
                "-" => "final-".to_owned(),
                "dev" => "@".to_owned(),
                _ => p,
            };
            match p.as_str() {
                "" | "." => None,
                _ if p.starts_with(|c: char| c.is_ascii_digit()) => Some(format!("{p:0>8}")),
                _ => Some(format!("*{p}")),
            }
        })
        .chain(std::iter::once("*final".to_owned()));
    for part in padded {
        if part.starts_with('*') {
            if part.as_str() < "*final" {
                while parts.last().is_some_and(|p| p == "*final-") {
                    parts.pop();
                }
            }
            while parts.last().is_some_and(|p| p == "00000000") {
                parts.pop();
            }
        }
        parts.push(part);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(vs: &[&str]) -> Vec<String> {
        let mut v: Vec<&str> = vs.to_vec();
        v.sort_by_key(|s| Version::parse(s));
        v.into_iter().map(str::to_owned).collect()
    }

    #[test]
    fn pep440_order_of_the_specification() {
        // PEP 440's own example ordering.
        let want = [
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
        ];
        let mut shuffled = want.to_vec();
        shuffled.reverse();
        shuffled.swap(3, 11);
        assert_eq!(sorted(&shuffled), want);
    }

    #[test]
    fn normal_forms_are_equal() {
        for (a, b) in [
            ("1.0", "1"),
            ("1.0.0", "1"),
            ("v1.0", "1.0"),
            ("1.0alpha1", "1.0a1"),
            ("1.0-beta.2", "1.0b2"),
            ("1.0c1", "1.0rc1"),
            ("1.0pre1", "1.0rc1"),
            ("1.0preview1", "1.0rc1"),
            ("1.0a", "1.0a0"),
            ("1.0-1", "1.0.post1"),
            ("1.0r1", "1.0.post1"),
            ("1.0rev", "1.0.post0"),
            ("1.0-dev", "1.0.dev0"),
            ("1.0_DEV_3", "1.0.dev3"),
            ("0!1.0", "1.0"),
            (" 1.0 ", "1.0"),
            ("1.0+Ubuntu-1", "1.0+ubuntu.1"),
        ] {
            let (va, vb) = (Version::parse(a), Version::parse(b));
            assert!(va.is_pep440() && vb.is_pep440(), "{a} / {b}");
            assert_eq!(va.cmp(&vb), Ordering::Equal, "{a} == {b}");
        }
    }

    #[test]
    fn epochs_dominate() {
        assert!(Version::parse("1!0.1") > Version::parse("2020.1"));
    }

    #[test]
    fn prerelease_flag() {
        assert!(Version::parse("1.0a1").is_prerelease());
        assert!(Version::parse("1.0.dev0").is_prerelease());
        assert!(Version::parse("1.0rc1.post1").is_prerelease());
        assert!(!Version::parse("1.0.post1").is_prerelease());
        assert!(!Version::parse("1.0+local").is_prerelease());
        assert!(!Version::parse("not a version").is_prerelease());
    }

    #[test]
    fn invalid_pep440_falls_back_to_legacy() {
        for s in [
            "1.0-",
            "1.0+",
            "1.0+a..b",
            "foo",
            "1.0.x",
            "1.0-SNAPSHOT",
            "",
            "1..0",
            "r1",
        ] {
            assert!(!Version::parse(s).is_pep440(), "{s:?} should be legacy");
        }
        // The pattern allows a separator with no number after a letter.
        assert!(Version::parse("1.0a.").is_pep440());
    }

    #[test]
    fn legacy_sorts_before_pep440_and_by_setuptools_rules() {
        assert!(Version::parse("foo") < Version::parse("0.0.1.dev0"));
        assert_eq!(
            legacy_key("1.0-SNAPSHOT"),
            ["00000001", "*final-", "*snapshot", "*final"]
        );
        assert_eq!(legacy_key("2.0.x"), ["00000002", "*x", "*final"]);
        assert_eq!(legacy_key("1.0dev"), ["00000001", "*@", "*final"]);
        assert_eq!(legacy_key("1.0_x"), ["00000001", "*_", "*x", "*final"]);
        // setuptools: "1.0-pre" is a pre-release of 1.0 ('-' dropped
        // before a tag that sorts before 'final').
        assert_eq!(legacy_key("1.0-pre"), ["00000001", "*c", "*final"]);
        let want = ["1.0.x-dev", "1.0.x", "1.1.x", "2.0-SNAPSHOT", "2.0.x"];
        let mut shuffled = want.to_vec();
        shuffled.reverse();
        assert_eq!(sorted(&shuffled), want);
    }
}
