//! The apt packages a wheel's shared libraries need, best effort, as
//! piwheels finds them: every ELF `*.so` / `*.so.*` member is extracted
//! and run through `ldd`; every library it resolves is looked up with
//! `dpkg -S`. Owned libraries give their package under `"apt"`; libraries
//! no package owns are listed by path under `""`. A library `ldd` cannot
//! handle is skipped, as in piwheels 0.23.
//!
//! Two things differ from piwheels, both to report what a user of the
//! wheel actually needs:
//! - libraries that resolve *inside the wheel* (bundled ones, found through
//!   `$ORIGIN`) are not dependencies and are left out (piwheels lists them
//!   under `""` by their temporary path);
//! - on merged-`/usr` systems `ldd` and `realpath` give `/usr/lib/...`
//!   while dpkg knows the file as `/lib/...` (or the other way round), so
//!   both spellings are tried.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::process::{self, Ended, StopFlag};

/// Per-command limit (piwheels gives ldd 30 s).
const COMMAND_LIMIT: Duration = Duration::from_secs(30);
/// Grace between SIGTERM and SIGKILL for these helpers.
const GRACE: Duration = Duration::from_secs(2);
/// The largest library extracted from a wheel.
const MAX_LIBRARY_SIZE: u64 = 1 << 30;

/// The result: packages, unowned library paths, and notes for the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AptDependencies {
    /// Sorted package names.
    pub apt: Vec<String>,
    /// Sorted paths of libraries no package owns.
    pub unowned: Vec<String>,
    /// What was skipped and why.
    pub notes: Vec<String>,
}

/// Was the work stopped from outside?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// Is this archive member a candidate shared library (piwheels' test)?
pub fn is_library_name(name: &str) -> bool {
    name.ends_with(".so") || name.contains(".so.")
}

/// A safe relative path for an archive member: no absolute paths, no
/// `..`, nothing but normal components.
fn safe_relative(name: &str) -> Option<PathBuf> {
    let p = Path::new(name);
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Extracts the ELF shared libraries of a wheel under `into`, keeping
/// their relative paths (so `$ORIGIN` run paths resolve as installed).
pub fn extract_libraries(wheel: &Path, into: &Path) -> io::Result<Vec<PathBuf>> {
    let file = std::fs::File::open(wheel)?;
    let mut zip = zip::ZipArchive::new(io::BufReader::new(file)).map_err(io::Error::other)?;
    let mut out = Vec::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(io::Error::other)?;
        if entry.is_dir() || !is_library_name(entry.name()) {
            continue;
        }
        let Some(rel) = safe_relative(entry.name()) else {
            continue;
        };
        let mut magic = [0u8; 4];
        if entry.read_exact(&mut magic).is_err() || &magic != b"\x7fELF" {
            continue;
        }
        let dest = into.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut f = std::fs::File::create(&dest)?;
        f.write_all(&magic)?;
        let copied = io::copy(&mut (&mut entry).take(MAX_LIBRARY_SIZE), &mut f)?;
        if copied + 4 > MAX_LIBRARY_SIZE {
            continue;
        }
        out.push(dest);
    }
    out.sort();
    Ok(out)
}

/// One library `ldd` resolved: the path it printed and the real path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Resolved {
    pub printed: String,
    pub real: String,
}

/// The paths in `ldd` output lines of the form `name => /path (0x…)`.
pub fn parse_ldd(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once(" => ")?;
            let rest = rest.trim_end();
            let open = rest.rfind(" (0x")?;
            let addr = rest[open + 4..].strip_suffix(')')?;
            if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let path = rest[..open].trim();
            path.starts_with('/').then(|| path.to_string())
        })
        .collect()
}

/// The spellings of a library path dpkg might know it by: as given, then
/// with or without the merged-`/usr` prefix.
pub fn usrmerge_variants(path: &str) -> Vec<String> {
    let mut out = vec![path.to_string()];
    const MERGED: [&str; 4] = ["/lib", "/lib32", "/lib64", "/libx32"];
    if let Some(rest) = path.strip_prefix("/usr") {
        if MERGED.iter().any(|m| rest.starts_with(&format!("{m}/"))) {
            out.push(rest.to_string());
        }
    } else if MERGED.iter().any(|m| path.starts_with(&format!("{m}/"))) {
        out.push(format!("/usr{path}"));
    }
    out
}

/// `dpkg -S` treats its argument as a glob pattern; escape one so it only
/// matches itself.
pub fn dpkg_pattern(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Reads `dpkg -S` output into path → owning packages (architecture
/// qualifiers removed). Diversion lines are ignored.
pub fn parse_dpkg_search(output: &str) -> HashMap<String, Vec<String>> {
    let mut owners: HashMap<String, Vec<String>> = HashMap::new();
    for line in output.lines() {
        if line.starts_with("diversion by ") {
            continue;
        }
        let Some((pkgs, path)) = line.split_once(": ") else {
            continue;
        };
        let entry = owners.entry(path.trim().to_string()).or_default();
        for pkg in pkgs.split(',') {
            let pkg = pkg.trim();
            let name = pkg.split_once(':').map_or(pkg, |(n, _)| n);
            if !name.is_empty() && !entry.iter().any(|p| p == name) {
                entry.push(name.to_string());
            }
        }
    }
    owners
}

/// Sorts libraries into owning packages and unowned paths.
pub fn classify(
    libs: &BTreeSet<Resolved>,
    owners: &HashMap<String, Vec<String>>,
) -> (Vec<String>, Vec<String>) {
    let mut apt = BTreeSet::new();
    let mut unowned = BTreeSet::new();
    for lib in libs {
        let mut candidates = usrmerge_variants(&lib.real);
        for v in usrmerge_variants(&lib.printed) {
            if !candidates.contains(&v) {
                candidates.push(v);
            }
        }
        match candidates.iter().find_map(|c| owners.get(c)) {
            Some(pkgs) => apt.extend(pkgs.iter().cloned()),
            None => {
                unowned.insert(lib.real.clone());
            }
        }
    }
    (apt.into_iter().collect(), unowned.into_iter().collect())
}

/// Runs a helper command with its stdout captured in a file under `work`.
fn capture(
    mut cmd: Command,
    work: &Path,
    stop: &StopFlag,
) -> Result<io::Result<(Ended, String)>, Stopped> {
    let out_path = work.join(".capture");
    let mut run = || -> io::Result<(Ended, String)> {
        let out = std::fs::File::create(&out_path)?;
        cmd.stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::null())
            .env("LC_ALL", "C");
        let (ended, _) = process::run(&mut cmd, Some(COMMAND_LIMIT), GRACE, stop)?;
        let text = String::from_utf8_lossy(&std::fs::read(&out_path)?).into_owned();
        let _ = std::fs::remove_file(&out_path);
        Ok((ended, text))
    };
    let r = run();
    if stop.is_set() {
        return Err(Stopped);
    }
    Ok(r)
}

/// Finds the apt dependencies of the wheel at `wheel`, using `work` (an
/// empty directory) for extracted files.
pub fn apt_dependencies(
    wheel: &Path,
    work: &Path,
    stop: &StopFlag,
) -> Result<AptDependencies, Stopped> {
    let mut result = AptDependencies::default();
    let libs = match extract_libraries(wheel, work) {
        Ok(l) => l,
        Err(e) => {
            result.notes.push(format!("cannot extract libraries: {e}"));
            return Ok(result);
        }
    };
    let root = std::fs::canonicalize(work).unwrap_or_else(|_| work.to_path_buf());
    let mut resolved = BTreeSet::new();
    for lib in &libs {
        let mut cmd = Command::new("ldd");
        cmd.arg(lib);
        match capture(cmd, work, stop)? {
            Ok((Ended::Exited(s), out)) if s.success() => {
                for printed in parse_ldd(&out) {
                    // Missing libraries are skipped, as piwheels does.
                    let Ok(real) = std::fs::canonicalize(&printed) else {
                        continue;
                    };
                    if real.starts_with(&root) {
                        continue; // bundled in the wheel itself
                    }
                    resolved.insert(Resolved {
                        printed,
                        real: real.to_string_lossy().into_owned(),
                    });
                }
            }
            Ok((ended, _)) => result.notes.push(format!(
                "ldd failed on {} ({ended:?}); skipped",
                lib.strip_prefix(work).unwrap_or(lib).display()
            )),
            Err(e) => {
                result.notes.push(format!("cannot run ldd: {e}"));
                break;
            }
        }
    }
    if resolved.is_empty() {
        return Ok(result);
    }
    let mut patterns: Vec<String> = resolved
        .iter()
        .flat_map(|r| {
            let mut v = usrmerge_variants(&r.real);
            v.extend(usrmerge_variants(&r.printed));
            v
        })
        .collect();
    patterns.sort();
    patterns.dedup();
    let mut cmd = Command::new("dpkg");
    cmd.arg("-S").args(patterns.iter().map(|p| dpkg_pattern(p)));
    // dpkg exits 1 when some path has no owner; its output still counts.
    let owners = match capture(cmd, work, stop)? {
        Ok((Ended::Exited(_), out)) => parse_dpkg_search(&out),
        Ok((ended, _)) => {
            result
                .notes
                .push(format!("dpkg -S did not finish ({ended:?})"));
            HashMap::new()
        }
        Err(e) => {
            result.notes.push(format!("cannot run dpkg: {e}"));
            HashMap::new()
        }
    };
    let (apt, unowned) = classify(&resolved, &owners);
    result.apt = apt;
    result.unowned = unowned;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LDD: &str = "\tlinux-vdso.so.1 (0x00007ffd2b5f0000)
\tlibssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x00007f952fc2f000)
\tlibfoo.so.1 => not found
\tlibbar.so => /opt/with space/libbar.so (0xdeadBEEF)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f952f41e000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f952fd22000)
\tbogus => relative/lib.so (0x1)
\tbad => /x.so (0xzz)
";

    #[test]
    fn ldd_lines() {
        assert_eq!(
            parse_ldd(LDD),
            [
                "/lib/x86_64-linux-gnu/libssl.so.3",
                "/opt/with space/libbar.so",
                "/lib/x86_64-linux-gnu/libc.so.6"
            ]
        );
        assert!(parse_ldd("\tstatically linked\n").is_empty());
    }

    #[test]
    fn dpkg_output() {
        let out = "libc6:amd64: /lib/x86_64-linux-gnu/libc.so.6
libssl3:amd64, libssl3:i386: /lib/x86_64-linux-gnu/libssl.so.3
diversion by dash from: /bin/sh
zlib1g: /lib/x86_64-linux-gnu/libz.so.1
garbage line
";
        let owners = parse_dpkg_search(out);
        assert_eq!(owners["/lib/x86_64-linux-gnu/libc.so.6"], ["libc6"]);
        assert_eq!(owners["/lib/x86_64-linux-gnu/libssl.so.3"], ["libssl3"]);
        assert_eq!(owners["/lib/x86_64-linux-gnu/libz.so.1"], ["zlib1g"]);
        assert!(!owners.contains_key("/bin/sh"));
        assert_eq!(owners.len(), 3);
    }

    #[test]
    fn usrmerge_spellings() {
        assert_eq!(
            usrmerge_variants("/usr/lib/x86_64-linux-gnu/libc.so.6"),
            [
                "/usr/lib/x86_64-linux-gnu/libc.so.6",
                "/lib/x86_64-linux-gnu/libc.so.6"
            ]
        );
        assert_eq!(
            usrmerge_variants("/lib64/ld.so"),
            ["/lib64/ld.so", "/usr/lib64/ld.so"]
        );
        assert_eq!(usrmerge_variants("/opt/x.so"), ["/opt/x.so"]);
        assert_eq!(
            usrmerge_variants("/usr/local/lib/x.so"),
            ["/usr/local/lib/x.so"]
        );
        assert_eq!(usrmerge_variants("/library/x.so"), ["/library/x.so"]);
    }

    #[test]
    fn classification() {
        let libs: BTreeSet<Resolved> = [
            (
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/usr/lib/x86_64-linux-gnu/libc.so.6",
            ),
            (
                "/lib/x86_64-linux-gnu/libz.so.1",
                "/usr/lib/x86_64-linux-gnu/libz.so.1.2.13",
            ),
            ("/opt/vendor/libv.so", "/opt/vendor/libv.so.2"),
        ]
        .iter()
        .map(|(p, r)| Resolved {
            printed: p.to_string(),
            real: r.to_string(),
        })
        .collect();
        let owners = parse_dpkg_search(
            "libc6:arm64: /lib/x86_64-linux-gnu/libc.so.6\n\
             zlib1g:arm64: /lib/x86_64-linux-gnu/libz.so.1.2.13\n",
        );
        let (apt, unowned) = classify(&libs, &owners);
        assert_eq!(apt, ["libc6", "zlib1g"]);
        assert_eq!(unowned, ["/opt/vendor/libv.so.2"]);
    }

    #[test]
    fn patterns_are_escaped() {
        assert_eq!(dpkg_pattern("/a/b[1]*?.so\\"), "/a/b\\[1\\]\\*\\?.so\\\\");
    }

    #[test]
    fn library_names() {
        assert!(is_library_name("pkg/_x.cpython-311-arm-linux-gnueabihf.so"));
        assert!(is_library_name("pkg.libs/libfoo-1a2b.so.1.2"));
        assert!(!is_library_name("pkg/solver.py"));
        assert!(!is_library_name("pkg/x.sox"));
        assert_eq!(safe_relative("a/./b.so"), Some(PathBuf::from("a/b.so")));
        assert_eq!(safe_relative("../b.so"), None);
        assert_eq!(safe_relative("/etc/b.so"), None);
        assert_eq!(safe_relative("a/../../b.so"), None);
        assert_eq!(safe_relative(""), None);
    }

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("piw-deps-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn wheel_with(path: &Path, members: &[(&str, Vec<u8>)]) {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
        let opts = zip::write::SimpleFileOptions::default();
        for (name, data) in members {
            zip.start_file(*name, opts).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
    }

    /// A real library of this system that links to libc, if there is one.
    fn system_library() -> Option<PathBuf> {
        [
            "x86_64-linux-gnu",
            "aarch64-linux-gnu",
            "arm-linux-gnueabihf",
        ]
        .iter()
        .map(|t| PathBuf::from(format!("/lib/{t}/libz.so.1")))
        .find(|p| p.exists())
    }

    #[test]
    fn extraction_keeps_only_safe_elf_libraries() {
        let dir = tmp("extract");
        let whl = dir.join("x.whl");
        wheel_with(
            &whl,
            &[
                ("pkg/real.so", b"\x7fELF rest".to_vec()),
                ("pkg/fake.so", b"#!/bin/sh".to_vec()),
                ("pkg.libs/libv.so.1", b"\x7fELF".to_vec()),
                ("../evil.so", b"\x7fELF".to_vec()),
                ("pkg/module.py", b"\x7fELF".to_vec()),
                ("pkg/short.so", b"\x7f".to_vec()),
            ],
        );
        let out = dir.join("out");
        std::fs::create_dir(&out).unwrap();
        let libs = extract_libraries(&whl, &out).unwrap();
        assert_eq!(
            libs,
            [out.join("pkg/real.so"), out.join("pkg.libs/libv.so.1")]
        );
        assert_eq!(
            std::fs::read(out.join("pkg/real.so")).unwrap(),
            b"\x7fELF rest"
        );
        assert!(!dir.join("evil.so").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn real_ldd_and_dpkg() {
        let Some(lib) = system_library() else {
            eprintln!("no libz to test with; skipped");
            return;
        };
        let dir = tmp("real");
        let whl = dir.join("x.whl");
        wheel_with(
            &whl,
            &[
                ("pkg/_native.so", std::fs::read(&lib).unwrap()),
                // Not loadable: ldd fails on it and it is skipped.
                ("pkg/broken.so", b"\x7fELF\x01\x01\x01 nonsense".to_vec()),
            ],
        );
        let work = dir.join("work");
        std::fs::create_dir(&work).unwrap();
        let stop = StopFlag::new().unwrap();
        let deps = apt_dependencies(&whl, &work, &stop).unwrap();
        assert!(deps.apt.iter().any(|p| p == "libc6"), "{deps:?}");
        assert!(deps.unowned.is_empty(), "{deps:?}");
        assert!(
            deps.notes.iter().any(|n| n.contains("broken.so")),
            "{deps:?}"
        );
        // A raised stop flag ends the work.
        stop.set();
        let work2 = dir.join("work2");
        std::fs::create_dir(&work2).unwrap();
        assert_eq!(apt_dependencies(&whl, &work2, &stop), Err(Stopped));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_wheel_without_libraries_has_no_apt_dependencies() {
        let dir = tmp("pure");
        let whl = dir.join("x.whl");
        wheel_with(&whl, &[("pkg/__init__.py", b"".to_vec())]);
        let stop = StopFlag::new().unwrap();
        let deps = apt_dependencies(&whl, &dir, &stop).unwrap();
        assert_eq!(deps, AptDependencies::default());
        let deps = apt_dependencies(&dir.join("missing.whl"), &dir, &stop).unwrap();
        assert_eq!(deps.notes.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
