//! Real source distributions, generated on the fly: a tiny pure-Python
//! project per name and version, built with setuptools.
//!
//! The archive is `<dist>-<version>.tar.gz` (PEP 625 naming: the canonical
//! name with `_` for `-`) holding `PKG-INFO`, a `pyproject.toml` that asks
//! for `setuptools.build_meta`, a declarative `setup.cfg` (understood by
//! setuptools since 30.3, so old Raspberry Pi OS releases build it too), a
//! one-line `setup.py` for pre-PEP 517 tools, and one package with an
//! `__init__.py`. Nothing needs downloading to build it when setuptools and
//! wheel are installed:
//! `python3 -m pip wheel --no-deps --no-build-isolation ...`.
//!
//! The bytes depend only on the inputs (fixed mtime, owner and order), so
//! the same release always has the same hash.
//!
//! [`SdistKind::InTree`] makes the other flavour: the project of
//! [`crate::testing_sdist`], whose in-tree PEP 517 backend needs nothing at
//! all, so pip builds it even with build isolation (piwheels' own pip
//! flags) and no index to fetch setuptools from.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;

use crate::pypi::canonicalize;

/// Which kind of project the sdists hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SdistKind {
    /// setuptools (`setuptools.build_meta`): a realistic project. pip builds
    /// it offline with `--no-build-isolation` where setuptools and wheel are
    /// installed.
    #[default]
    Setuptools,
    /// `testing_sdist`'s in-tree backend (`requires = []`): builds offline
    /// with or without build isolation, with pip alone.
    InTree,
}

/// The sdist of `name` `version` in the given flavour.
pub fn sdist_of(kind: SdistKind, name: &str, version: &str, summary: &str, mtime: i64) -> Vec<u8> {
    match kind {
        SdistKind::Setuptools => sdist(name, version, summary, mtime),
        SdistKind::InTree => in_tree_sdist(name, version, mtime),
    }
}

/// An sdist of `testing_sdist`'s in-tree-backend project, tarred here (its
/// tree comes from [`crate::testing_sdist::SdistSpec::write_tree`]).
pub fn in_tree_sdist(name: &str, version: &str, mtime: i64) -> Vec<u8> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let spec = crate::testing_sdist::SdistSpec::new(name, version);
    let tmp = std::env::temp_dir().join(format!(
        "fake-pypi-sdist-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let mut files = vec![("PKG-INFO".to_owned(), spec.metadata().into_bytes())];
    let written = spec.write_tree(&tmp).and_then(|()| {
        let mut found = Vec::new();
        collect_files(&tmp, &tmp, &mut found)?;
        Ok(found)
    });
    let _ = std::fs::remove_dir_all(&tmp);
    match written {
        Ok(found) => files.extend(found),
        Err(e) => files.push(("WRITE-ERROR.txt".to_owned(), e.to_string().into_bytes())),
    }
    files.sort();
    let top = format!("{}-{}", dist_name(name), one_line(version));
    let mut tar = Vec::new();
    append_dir(&mut tar, &format!("{top}/"), mtime);
    let mut dirs = std::collections::BTreeSet::new();
    for (path, _) in &files {
        if let Some((dir, _)) = path.rsplit_once('/') {
            dirs.insert(dir.to_owned());
        }
    }
    for dir in dirs {
        append_dir(&mut tar, &format!("{top}/{dir}/"), mtime);
    }
    for (path, content) in &files {
        append_file(&mut tar, &format!("{top}/{path}"), content, mtime);
    }
    tar.extend_from_slice(&[0u8; 1024]);
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&tar).expect("writing to a Vec cannot fail");
    gz.finish().expect("writing to a Vec cannot fail")
}

fn collect_files(
    root: &std::path::Path,
    dir: &std::path::Path,
    out: &mut Vec<(String, Vec<u8>)>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(root, &path, out)?;
        } else {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push((rel.to_string_lossy().into_owned(), std::fs::read(&path)?));
        }
    }
    Ok(())
}

/// The distribution name used in file names (PEP 625): canonical, with `_`.
pub fn dist_name(name: &str) -> String {
    canonicalize(name).replace('-', "_")
}

/// The sdist's file name.
pub fn sdist_filename(name: &str, version: &str) -> String {
    format!("{}-{version}.tar.gz", dist_name(name))
}

/// The import package inside: the distribution name, made a Python
/// identifier.
pub fn module_name(name: &str) -> String {
    let base: String = dist_name(name)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if base.is_empty() || base.starts_with(|c: char| c.is_ascii_digit()) {
        format!("fake_{base}")
    } else {
        base
    }
}

/// One line of metadata: no newlines may leak into headers or INI values.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The files of the project, relative to its top directory.
pub fn project_files(name: &str, version: &str, summary: &str) -> Vec<(String, String)> {
    let module = module_name(name);
    let name = one_line(name);
    let version = one_line(version);
    let summary = one_line(summary);
    vec![
        (
            "PKG-INFO".into(),
            format!(
                "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {summary}\n"
            ),
        ),
        (
            "pyproject.toml".into(),
            "[build-system]\nrequires = [\"setuptools>=40.8.0\", \"wheel\"]\n\
             build-backend = \"setuptools.build_meta\"\n"
                .into(),
        ),
        (
            "setup.cfg".into(),
            format!(
                "[metadata]\nname = {name}\nversion = {version}\ndescription = {summary}\n\n\
                 [options]\npackages = {module}\n"
            ),
        ),
        (
            "setup.py".into(),
            "from setuptools import setup\n\nsetup()\n".into(),
        ),
        (
            format!("{module}/__init__.py"),
            format!("\"\"\"{summary}\"\"\"\n\n__version__ = {version:?}\n"),
        ),
    ]
}

/// The sdist of `name` `version` as `.tar.gz` bytes.
pub fn sdist(name: &str, version: &str, summary: &str, mtime: i64) -> Vec<u8> {
    let top = format!("{}-{}", dist_name(name), one_line(version));
    let mut tar = Vec::new();
    let module = module_name(name);
    append_dir(&mut tar, &format!("{top}/"), mtime);
    append_dir(&mut tar, &format!("{top}/{module}/"), mtime);
    for (path, content) in project_files(name, version, summary) {
        append_file(
            &mut tar,
            &format!("{top}/{path}"),
            content.as_bytes(),
            mtime,
        );
    }
    // End of archive: two zero blocks.
    tar.extend_from_slice(&[0u8; 1024]);
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&tar).expect("writing to a Vec cannot fail");
    gz.finish().expect("writing to a Vec cannot fail")
}

fn octal(field: &mut [u8], value: u64) {
    // width-1 octal digits and a NUL
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    let s = &s.as_bytes()[s.len().saturating_sub(digits)..];
    field[..digits].copy_from_slice(s);
    field[digits] = 0;
}

fn header(path: &str, size: u64, mode: u64, mtime: i64, kind: u8) -> [u8; 512] {
    let mut h = [0u8; 512];
    let name = path.as_bytes();
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], mode);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime.max(0) as u64);
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    // The checksum is computed with its own field as spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

fn pad(tar: &mut Vec<u8>) {
    let rem = tar.len() % 512;
    if rem != 0 {
        tar.resize(tar.len() + 512 - rem, 0);
    }
}

/// A PAX header carrying `path` when it does not fit ustar's 100 bytes.
fn long_path(tar: &mut Vec<u8>, path: &str, mtime: i64) {
    if path.len() <= 100 {
        return;
    }
    let record = |len: usize| format!("{len} path={path}\n");
    // The length counts its own digits.
    let mut len = record(0).len();
    while record(len).len() != len {
        len = record(len).len();
    }
    let body = record(len);
    tar.extend_from_slice(&header(
        "././@PaxHeader",
        body.len() as u64,
        0o644,
        mtime,
        b'x',
    ));
    tar.extend_from_slice(body.as_bytes());
    pad(tar);
}

fn append_dir(tar: &mut Vec<u8>, path: &str, mtime: i64) {
    long_path(tar, path, mtime);
    tar.extend_from_slice(&header(path, 0, 0o755, mtime, b'5'));
}

fn append_file(tar: &mut Vec<u8>, path: &str, content: &[u8], mtime: i64) {
    long_path(tar, path, mtime);
    tar.extend_from_slice(&header(path, content.len() as u64, 0o644, mtime, b'0'));
    tar.extend_from_slice(content);
    pad(tar);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A minimal tar reader for the test: (path, type, content).
    fn entries(tar: &[u8]) -> Vec<(String, u8, Vec<u8>)> {
        let mut out = Vec::new();
        let mut at = 0;
        let mut pax_path = None;
        while at + 512 <= tar.len() {
            let h = &tar[at..at + 512];
            if h.iter().all(|&b| b == 0) {
                break;
            }
            let stored: u64 =
                u64::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap().trim(), 8).unwrap();
            let mut copy = h.to_vec();
            copy[148..156].copy_from_slice(b"        ");
            assert_eq!(copy.iter().map(|&b| u64::from(b)).sum::<u64>(), stored);
            let size = u64::from_str_radix(std::str::from_utf8(&h[124..135]).unwrap(), 8).unwrap()
                as usize;
            let name_end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
            let name = String::from_utf8(h[..name_end].to_vec()).unwrap();
            let content = tar[at + 512..at + 512 + size].to_vec();
            at += 512 + size.div_ceil(512) * 512;
            if h[156] == b'x' {
                let text = String::from_utf8(content).unwrap();
                let (len, rest) = text.split_once(' ').unwrap();
                assert_eq!(len.parse::<usize>().unwrap(), text.len());
                pax_path = Some(rest.strip_prefix("path=").unwrap().trim_end().to_owned());
                continue;
            }
            out.push((pax_path.take().unwrap_or(name), h[156], content));
        }
        out
    }

    #[test]
    fn names() {
        assert_eq!(sdist_filename("Foo.Bar", "1.0"), "foo_bar-1.0.tar.gz");
        assert_eq!(module_name("3d-thing"), "fake_3d_thing");
        assert_eq!(module_name("zope.interface"), "zope_interface");
    }

    #[test]
    fn archive_is_well_formed_and_deterministic() {
        let bytes = sdist("Foo_Bar", "1.0", "A test\npackage", 1_600_000_000);
        assert_eq!(
            bytes,
            sdist("Foo_Bar", "1.0", "A test\npackage", 1_600_000_000)
        );
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut tar)
            .unwrap();
        let got = entries(&tar);
        let paths: Vec<_> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            paths,
            [
                "foo_bar-1.0/",
                "foo_bar-1.0/foo_bar/",
                "foo_bar-1.0/PKG-INFO",
                "foo_bar-1.0/pyproject.toml",
                "foo_bar-1.0/setup.cfg",
                "foo_bar-1.0/setup.py",
                "foo_bar-1.0/foo_bar/__init__.py",
            ]
        );
        let pkg_info = String::from_utf8(got[2].2.clone()).unwrap();
        assert!(pkg_info.contains("Name: Foo_Bar\nVersion: 1.0\nSummary: A test package\n"));
    }

    #[test]
    fn in_tree_flavour() {
        let bytes = sdist_of(SdistKind::InTree, "Tiny-Pkg", "1.0", "", 5);
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut tar)
            .unwrap();
        let paths: Vec<_> = entries(&tar).into_iter().map(|e| e.0).collect();
        for want in [
            "tiny_pkg-1.0/PKG-INFO",
            "tiny_pkg-1.0/pyproject.toml",
            "tiny_pkg-1.0/piw_test_backend.py",
            "tiny_pkg-1.0/piw_test_backend.json",
            "tiny_pkg-1.0/tiny_pkg/__init__.py",
        ] {
            assert!(paths.iter().any(|p| p == want), "{want} not in {paths:?}");
        }
    }

    #[test]
    fn long_names_use_pax_paths() {
        let name = "n".repeat(150);
        let bytes = sdist(&name, "2.0", "", 0);
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut tar)
            .unwrap();
        let got = entries(&tar);
        assert_eq!(got[2].0, format!("{name}-2.0/PKG-INFO"));
        assert_eq!(got[6].0, format!("{name}-2.0/{name}/__init__.py"));
    }
}
