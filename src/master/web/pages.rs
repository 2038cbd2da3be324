//! What each page says: the views built from one `get_project_data`
//! document, the human pages (askama templates in `www-templates/`, HTML
//! escaping on by default) and the machine pages (simple index pages, PEP
//! 691 JSON, project JSON, sitemaps), written here by hand because their
//! formats are fixed and some are streamed.
//!
//! Nothing here touches the file system or the clock: the caller passes
//! the time and the hashes of the wheels' `.metadata` files.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use askama::Template;
use chrono::{DateTime, Utc};

use super::text::{Esc, json_str, segment, size, thousands};
use super::version::Version;
use crate::db::{BuildStatus, FileInfo, ProjectData, Release};

/// What every page needs to know about the site.
#[derive(Debug, Clone)]
pub struct Site {
    /// Name shown in titles and the header.
    pub title: String,
    /// Absolute URL of the site root, ending in `/`.
    pub base_url: String,
    /// Issue tracker for package problems (GitHub-style `?q=` search and
    /// `/new`), or empty for none.
    pub issues_url: String,
}

/// The ABIs piwheels knows, in column order, with the Raspberry Pi OS
/// release and Python version each stands for.
pub const KNOWN_ABIS: [(&str, &str, &str); 6] = [
    ("cp34m", "Jessie", "Python 3.4"),
    ("cp35m", "Stretch", "Python 3.5"),
    ("cp37m", "Buster", "Python 3.7"),
    ("cp39", "Bullseye", "Python 3.9"),
    ("cp311", "Bookworm", "Python 3.11"),
    ("cp313", "Trixie", "Python 3.13"),
];

/// Release table rows shown before the rest is folded away (by script).
const FOLD: usize = 10;

/// The path of a build's log under the output path:
/// `logs/AAAA/BBBB/CCCC.txt.gz`, the id split in base-10000 groups.
pub fn log_path(build_id: i32) -> String {
    let [a, b, c] = log_parts(build_id);
    format!("logs/{a}/{b}/{c}.txt.gz")
}

/// The three 4-digit groups of a build id, most significant first.
pub fn log_parts(build_id: i32) -> [String; 3] {
    let n = i64::from(build_id).unsigned_abs();
    [
        format!("{:04}", (n / 100_000_000) % 10_000),
        format!("{:04}", (n / 10_000) % 10_000),
        format!("{:04}", n % 10_000),
    ]
}

/// One project's document, releases in display order (newest first, by
/// parsed version), without excluded versions.
pub struct Project<'a> {
    pub package: &'a str,
    pub data: &'a ProjectData,
    pub releases: Vec<(&'a str, &'a Release, Version)>,
    /// Only the files that install on this ABI (a per-ABI index view).
    pub abi: Option<&'a str>,
}

impl<'a> Project<'a> {
    /// Sorts the releases of `data`, leaving out `exclude` (a version being
    /// deleted).
    pub fn new(package: &'a str, data: &'a ProjectData, exclude: Option<&str>) -> Project<'a> {
        let mut releases: Vec<_> = data
            .releases
            .iter()
            .filter(|(v, _)| Some(v.as_str()) != exclude)
            .map(|(v, r)| (v.as_str(), r, Version::parse(v)))
            .collect();
        // Stable, like Python's sorted(reverse=True): equal versions keep
        // the document's order.
        releases.sort_by(|a, b| b.2.cmp(&a.2));
        Project {
            package,
            data,
            releases,
            abi: None,
        }
    }

    /// The same project as seen by a per-ABI index view (`simple-<abi>/`).
    pub fn for_abi(&self, abi: &'a str) -> Project<'a> {
        Project {
            package: self.package,
            data: self.data,
            releases: self.releases.clone(),
            abi: Some(abi),
        }
    }

    /// Every file, in page order.
    pub fn files(
        &self,
    ) -> impl Iterator<Item = (&'a str, &'a str, &'a Release, &'a FileInfo)> + '_ {
        let abi = self.abi;
        self.releases.iter().flat_map(move |(v, r, _)| {
            r.files
                .iter()
                .filter(move |(name, f)| abi.is_none_or(|abi| installs_on(abi, name, f)))
                .map(move |(name, f)| (*v, name.as_str(), *r, f))
        })
    }

    /// The file whose dependencies the install snippet shows: the first of
    /// the newest release that is neither a pre-release nor yanked and has
    /// files.
    pub fn install_file(&self) -> Option<&'a FileInfo> {
        self.releases
            .iter()
            .filter(|(_, r, v)| !v.is_prerelease() && !r.yanked)
            .find_map(|(_, r, _)| r.files.values().next())
    }
}

/// A wheel's URL path: `<location>/<package>/<file>`.
fn file_path(package: &str, name: &str, f: &FileInfo) -> String {
    format!(
        "{}/{}/{}",
        f.location.trim_end_matches('/'),
        segment(package),
        segment(name)
    )
}

/// `<!--timestamp-->` as piwheels 0.23 ends its simple pages.
fn stamp(now: DateTime<Utc>) -> String {
    format!("<!--{}-->\n", now.format("%Y-%m-%dT%H:%M:%S%.6f+00:00"))
}

/// Where a simple page's closing stamp lies in its bytes.
pub fn simple_page_stamp(page: &[u8]) -> std::ops::Range<usize> {
    let n = stamp(DateTime::<Utc>::UNIX_EPOCH).len();
    page.len().saturating_sub(n)..page.len()
}

/// Where a project page's "Page updated <date>" lies in its text (empty
/// when the template has none).
pub fn project_page_stamp(page: &str) -> std::ops::Range<usize> {
    const MARK: &str = "Page updated ";
    match page.rfind(MARK) {
        Some(i) => {
            let start = i + MARK.len();
            // "%Y-%m-%d %H:%M UTC"
            start..(start + 20).min(page.len())
        }
        None => 0..0,
    }
}

/// Streams `simple/index.html`: one link per package (PEP 503), with the
/// repository version PEP 629 asks for and piwheels' api-version meta.
pub struct SimpleIndex<W: Write> {
    out: W,
}

impl<W: Write> SimpleIndex<W> {
    pub fn start(mut out: W, site: &Site) -> io::Result<SimpleIndex<W>> {
        write!(
            out,
            "<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"1.1\">\n\
             <meta name=\"api-version\" value=\"2\">\n<title>{} - Simple index</title>\n</head>\n<body>\n",
            Esc(&site.title)
        )?;
        Ok(SimpleIndex { out })
    }

    pub fn package(&mut self, name: &str) -> io::Result<()> {
        writeln!(
            self.out,
            "<a href=\"{}/\">{}</a>",
            Esc(&segment(name)),
            Esc(name)
        )
    }

    pub fn finish(mut self, now: DateTime<Utc>) -> io::Result<W> {
        write!(self.out, "</body>\n</html>\n{}", stamp(now))?;
        Ok(self.out)
    }
}

/// `simple/<package>/index.html`: every file of every release, newest
/// release first, with its hash, Requires-Python, yank flag and (when the
/// master extracted it) the hash of its core metadata (PEP 658/714).
pub fn simple_page(
    p: &Project<'_>,
    metadata: &HashMap<&str, String>,
    now: DateTime<Utc>,
) -> Vec<u8> {
    let mut s = String::with_capacity(512 + 256 * p.data.releases.len());
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"1.1\">\n\
         <title>Links for {0}</title>\n</head>\n<body>\n<h1>Links for {0}</h1>\n",
        Esc(p.package)
    );
    for (_, name, r, f) in p.files() {
        let _ = write!(
            s,
            "<a href=\"{}#sha256={}\"",
            Esc(&file_path(p.package, name, f)),
            Esc(&f.hash)
        );
        if let Some(rp) = &f.requires_python {
            let _ = write!(s, " data-requires-python=\"{}\"", Esc(rp));
        }
        if r.yanked {
            s.push_str(" data-yanked=\"\"");
        }
        if let Some(h) = metadata.get(name) {
            let _ = write!(
                s,
                " data-dist-info-metadata=\"sha256={0}\" data-core-metadata=\"sha256={0}\"",
                Esc(h)
            );
        }
        let _ = writeln!(s, ">{}</a><br>", Esc(name));
    }
    s.push_str("</body>\n</html>\n");
    s.push_str(&stamp(now));
    s.into_bytes()
}

/// Whether a wheel installs on interpreters of `abi` (e.g. `cp311`): its
/// own wheels, `abi3` wheels for that Python or older, and `none` wheels
/// for Python 3 (or that Python or older). Platforms are left to pip.
pub fn installs_on(abi: &str, filename: &str, f: &FileInfo) -> bool {
    if f.abi_file == abi {
        return true;
    }
    let Some(view) = python_of(abi) else {
        return false;
    };
    let tags = crate::wheel::WheelName::parse(filename)
        .map(|w| w.python_tag)
        .unwrap_or_default();
    let fits = |tag: &str| match tag {
        "py3" => view.0 == 3,
        t if t.starts_with("py") || t.starts_with("cp") => {
            python_of(t).is_some_and(|(major, minor)| major == view.0 && minor <= view.1)
        }
        _ => false,
    };
    match f.abi_file.as_str() {
        "abi3" => tags.split('.').any(|t| t.starts_with("cp") && fits(t)),
        "none" => tags.split('.').any(fits),
        _ => false,
    }
}

/// The Python version of a tag: `cp311` → (3, 11), `cp37m` → (3, 7),
/// `py39` → (3, 9), `py3` → (3, 0).
fn python_of(tag: &str) -> Option<(u32, u32)> {
    let digits: String = tag
        .trim_start_matches(|c: char| c.is_ascii_alphabetic())
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let major = digits.get(..1)?.parse().ok()?;
    let minor = digits
        .get(1..)
        .filter(|m| !m.is_empty())
        .map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

/// `simple/<package>/index.json`: the same page in PEP 691's JSON form
/// (API version 1.1: `versions` and each file's `size`, PEP 700).
pub fn simple_json(p: &Project<'_>, metadata: &HashMap<&str, String>) -> Vec<u8> {
    let mut o = Vec::with_capacity(512 + 300 * p.data.releases.len());
    o.extend_from_slice(b"{\"meta\":{\"api-version\":\"1.1\"},\"name\":");
    json_str(&mut o, p.package);
    o.extend_from_slice(b",\"versions\":[");
    // Oldest first, as PyPI lists them.
    for (i, (v, _, _)) in p.releases.iter().rev().enumerate() {
        if i > 0 {
            o.push(b',');
        }
        json_str(&mut o, v);
    }
    o.extend_from_slice(b"],\"files\":[");
    for (i, (_, name, r, f)) in p.files().enumerate() {
        if i > 0 {
            o.push(b',');
        }
        o.extend_from_slice(b"{\"filename\":");
        json_str(&mut o, name);
        o.extend_from_slice(b",\"url\":");
        json_str(&mut o, &file_path(p.package, name, f));
        o.extend_from_slice(b",\"hashes\":{\"sha256\":");
        json_str(&mut o, &f.hash);
        o.extend_from_slice(b"},\"requires-python\":");
        match &f.requires_python {
            Some(rp) => json_str(&mut o, rp),
            None => o.extend_from_slice(b"null"),
        }
        let _ = write!(o, ",\"size\":{},\"yanked\":{}", f.size, r.yanked);
        match metadata.get(name) {
            Some(h) => {
                for key in ["core-metadata", "dist-info-metadata"] {
                    let _ = write!(o, ",\"{key}\":{{\"sha256\":");
                    json_str(&mut o, h);
                    o.push(b'}');
                }
            }
            None => o.extend_from_slice(b",\"core-metadata\":false,\"dist-info-metadata\":false"),
        }
        o.push(b'}');
    }
    o.extend_from_slice(b"]}\n");
    o
}

/// `project/<package>/json/index.json` in piwheels 0.23's layout (Python's
/// default separators, releases newest first).
pub fn project_json(p: &Project<'_>, site: &Site) -> Vec<u8> {
    let mut o = Vec::with_capacity(1024 + 600 * p.data.releases.len());
    let key = |o: &mut Vec<u8>, first: bool, k: &str| {
        if !first {
            o.extend_from_slice(b", ");
        }
        json_str(o, k);
        o.extend_from_slice(b": ");
    };
    let strs = |o: &mut Vec<u8>, items: &mut dyn Iterator<Item = &String>| {
        o.push(b'[');
        for (i, s) in items.enumerate() {
            if i > 0 {
                o.extend_from_slice(b", ");
            }
            json_str(o, s);
        }
        o.push(b']');
    };
    o.push(b'{');
    key(&mut o, true, "package");
    json_str(&mut o, p.package);
    key(&mut o, false, "summary");
    json_str(&mut o, p.data.description.as_deref().unwrap_or(""));
    key(&mut o, false, "pypi_url");
    json_str(
        &mut o,
        &format!("https://pypi.org/project/{}", segment(p.package)),
    );
    key(&mut o, false, "piwheels_url");
    json_str(
        &mut o,
        &format!("{}project/{}", site.base_url, segment(p.package)),
    );
    key(&mut o, false, "releases");
    o.push(b'{');
    for (i, (v, r, parsed)) in p.releases.iter().enumerate() {
        key(&mut o, i == 0, v);
        o.push(b'{');
        key(&mut o, true, "released");
        json_str(&mut o, &r.released.format("%Y-%m-%d %H:%M:%S").to_string());
        key(&mut o, false, "prerelease");
        let _ = write!(o, "{}", parsed.is_prerelease());
        key(&mut o, false, "yanked");
        let _ = write!(o, "{}", r.yanked);
        key(&mut o, false, "skip_reason");
        json_str(&mut o, &r.skip);
        key(&mut o, false, "files");
        o.push(b'{');
        for (j, (name, f)) in r.files.iter().enumerate() {
            key(&mut o, j == 0, name);
            o.push(b'{');
            key(&mut o, true, "file_url");
            let url = file_path(p.package, name, f);
            json_str(
                &mut o,
                &format!("{}{}", site.base_url, url.trim_start_matches('/')),
            );
            key(&mut o, false, "filehash");
            json_str(&mut o, &f.hash);
            key(&mut o, false, "filesize");
            let _ = write!(o, "{}", f.size);
            key(&mut o, false, "builder_abi");
            json_str(&mut o, &f.abi_builder);
            key(&mut o, false, "file_abi_tag");
            json_str(&mut o, &f.abi_file);
            key(&mut o, false, "platform");
            json_str(&mut o, &f.platform);
            key(&mut o, false, "requires_python");
            match &f.requires_python {
                Some(rp) => json_str(&mut o, rp),
                None => o.extend_from_slice(b"null"),
            }
            key(&mut o, false, "apt_dependencies");
            strs(&mut o, &mut f.apt_dependencies.iter());
            key(&mut o, false, "pip_dependencies");
            strs(&mut o, &mut f.pip_dependencies.iter());
            o.push(b'}');
        }
        o.extend_from_slice(b"}}");
    }
    o.extend_from_slice(b"}}\n");
    o
}

/// An ABI column of the release table.
pub struct AbiColumn {
    pub tag: String,
    pub os: String,
    pub python: String,
}

/// One cell of the release table.
pub struct Cell {
    pub class: &'static str,
    pub label: &'static str,
    pub title: String,
    pub log: Option<String>,
}

/// A wheel in a release's file list.
pub struct FileLink<'a> {
    pub name: &'a str,
    pub url: String,
    pub size: String,
}

/// A row of the release table.
pub struct ReleaseRow<'a> {
    pub version: &'a str,
    pub prerelease: bool,
    pub yanked: bool,
    pub released: String,
    pub skip: &'a str,
    pub cells: Vec<Cell>,
    pub files: Vec<FileLink<'a>>,
}

/// A link to another project.
pub struct Dep<'a> {
    pub name: &'a str,
    pub url: String,
}

/// `project/<package>/index.html`.
#[derive(Template)]
#[template(path = "project.html", config = "www-templates/askama.toml")]
pub struct ProjectPage<'a> {
    pub site: &'a Site,
    pub page: &'a str,
    pub package: &'a str,
    pub package_url: String,
    pub name: &'a str,
    pub description: &'a str,
    pub versions_count: String,
    pub files_count: String,
    pub apt: Vec<&'a str>,
    pub pip: Vec<Dep<'a>>,
    pub abis: Vec<AbiColumn>,
    pub releases: Vec<ReleaseRow<'a>>,
    pub fold: usize,
    pub updated: String,
    /// The per-ABI index views to suggest for `pip.conf`: (OS release,
    /// Python, index URL).
    pub views: Vec<(String, String, String)>,
}

impl<'a> ProjectPage<'a> {
    /// The page's view of a project.
    pub fn new(site: &'a Site, p: &Project<'a>, now: DateTime<Utc>) -> ProjectPage<'a> {
        // Known ABIs first in their fixed order, then the others in order
        // of appearance; only those some release mentions.
        let mut tags: Vec<&str> = Vec::new();
        for (_, r, _) in &p.releases {
            for abi in r.abis.keys() {
                if !tags.contains(&abi.as_str()) {
                    tags.push(abi);
                }
            }
        }
        let known = |t: &str| KNOWN_ABIS.iter().position(|k| k.0 == t);
        tags.sort_by_key(|t| known(t).unwrap_or(KNOWN_ABIS.len()));
        let abis = tags
            .iter()
            .map(|t| match known(t) {
                Some(i) => AbiColumn {
                    tag: t.to_string(),
                    os: KNOWN_ABIS[i].1.to_string(),
                    python: KNOWN_ABIS[i].2.to_string(),
                },
                None => AbiColumn {
                    tag: t.to_string(),
                    os: t.to_string(),
                    python: String::new(),
                },
            })
            .collect();
        let releases = p
            .releases
            .iter()
            .map(|(v, r, parsed)| ReleaseRow {
                version: v,
                prerelease: parsed.is_prerelease(),
                yanked: r.yanked,
                released: r.released.format("%Y-%m-%d").to_string(),
                skip: &r.skip,
                cells: tags.iter().map(|t| cell(t, r)).collect(),
                files: r
                    .files
                    .iter()
                    .map(|(name, f)| FileLink {
                        name,
                        url: format!("{}#sha256={}", file_path(p.package, name, f), f.hash),
                        size: size(f.size),
                    })
                    .collect(),
            })
            .collect();
        let install = p.install_file();
        ProjectPage {
            site,
            page: "project",
            package: p.package,
            package_url: segment(p.package).into_owned(),
            name: p.data.name.as_deref().unwrap_or(p.package),
            description: p.data.description.as_deref().unwrap_or(""),
            versions_count: thousands(p.releases.len() as u64),
            files_count: thousands(p.files().count() as u64),
            apt: install
                .map(|f| f.apt_dependencies.iter().map(String::as_str).collect())
                .unwrap_or_default(),
            pip: install
                .map(|f| {
                    f.pip_dependencies
                        .iter()
                        .map(|d| Dep {
                            name: d,
                            url: segment(d).into_owned(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            abis,
            releases,
            fold: FOLD,
            updated: now.format("%Y-%m-%d %H:%M UTC").to_string(),
            views: Vec::new(),
        }
    }

    /// Suggests the per-ABI index views (`simple-<abi>/`) for `pip.conf`,
    /// one per OS release, in the known order.
    pub fn with_views(mut self, abis: &[String]) -> Self {
        let known = |t: &str| KNOWN_ABIS.iter().position(|k| k.0 == t);
        let mut tags: Vec<&String> = abis.iter().collect();
        tags.sort_by_key(|t| known(t).unwrap_or(KNOWN_ABIS.len()));
        self.views = tags
            .into_iter()
            .map(|t| {
                let (os, python) = match known(t) {
                    Some(i) => (KNOWN_ABIS[i].1.to_string(), KNOWN_ABIS[i].2.to_string()),
                    None => (t.clone(), String::new()),
                };
                (os, python, format!("{}simple-{t}/", self.site.base_url))
            })
            .collect();
        self
    }
}

fn cell(tag: &str, r: &Release) -> Cell {
    let Some(a) = r.abis.get(tag) else {
        return Cell {
            class: "none",
            label: "",
            title: String::new(),
            log: None,
        };
    };
    let (label, what) = match a.status {
        BuildStatus::Success => ("\u{2713}", "built"),
        BuildStatus::Fail => ("\u{2717}", "build failed"),
        BuildStatus::Skip => ("\u{2013}", "skipped"),
        BuildStatus::Pending => ("\u{2026}", "waiting to be built"),
        BuildStatus::Error => ("!", "built, but no file for this ABI"),
    };
    Cell {
        class: a.status.as_str(),
        label,
        title: format!("{tag}: {what}"),
        log: a.build_id.map(|id| format!("/{}", log_path(id))),
    }
}

/// The homepage (`index.html`).
#[derive(Template)]
#[template(path = "home.html", config = "www-templates/askama.toml")]
pub struct HomePage<'a> {
    pub site: &'a Site,
    pub page: &'a str,
    pub packages: String,
    pub wheels: String,
    pub downloads_all: String,
    pub downloads_month: String,
    pub updated: String,
}

impl<'a> HomePage<'a> {
    pub fn new(
        site: &'a Site,
        stats: &crate::protocol::MasterStats,
        now: DateTime<Utc>,
    ) -> HomePage<'a> {
        HomePage {
            site,
            page: "home",
            packages: thousands(stats.packages_built),
            wheels: thousands(stats.files_count),
            downloads_all: thousands(stats.downloads_all),
            downloads_month: thousands(stats.downloads_last_month),
            updated: now.format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }
}

/// A page written once at start-up.
pub struct StaticPage<'a> {
    pub site: &'a Site,
    pub page: &'a str,
}

macro_rules! static_page {
    ($name:ident, $file:literal) => {
        #[derive(Template)]
        #[template(path = $file, config = "www-templates/askama.toml")]
        struct $name<'a> {
            site: &'a Site,
            page: &'a str,
        }
    };
}

static_page!(FaqPage, "faq.html");
static_page!(PackagesPage, "packages.html");
static_page!(JsonPage, "json.html");
static_page!(NotFoundPage, "404.html");

/// The static pages: (file name, content).
pub fn static_pages(site: &Site) -> Result<Vec<(&'static str, String)>, askama::Error> {
    Ok(vec![
        ("faq.html", FaqPage { site, page: "faq" }.render()?),
        (
            "packages.html",
            PackagesPage {
                site,
                page: "packages",
            }
            .render()?,
        ),
        ("json.html", JsonPage { site, page: "json" }.render()?),
        ("404.html", NotFoundPage { site, page: "404" }.render()?),
    ])
}

/// The pages listed in `sitemap0.xml` (those we write; piwheels 0.23 also
/// lists `stats.html`, which it no longer writes).
pub const SITEMAP_PAGES: [&str; 4] = ["index.html", "packages.html", "faq.html", "json.html"];

/// Packages per sitemap file (Google's limit).
pub const SITEMAP_URLS: usize = 50_000;

/// A `urlset` sitemap, streamed.
pub struct Sitemap<W: Write> {
    out: W,
}

impl<W: Write> Sitemap<W> {
    pub fn start(mut out: W) -> io::Result<Sitemap<W>> {
        out.write_all(
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
              <urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
        )?;
        Ok(Sitemap { out })
    }

    pub fn url(&mut self, url: &str) -> io::Result<()> {
        writeln!(self.out, "<url><loc>{}</loc></url>", Esc(url))
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(b"</urlset>\n")?;
        Ok(self.out)
    }
}

/// `sitemap.xml`: the index of `sitemap0.xml` … `sitemap<last>.xml`.
pub fn sitemap_index(site: &Site, last: usize, now: DateTime<Utc>) -> Vec<u8> {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n",
    );
    let date = now.format("%Y-%m-%d");
    for n in 0..=last {
        let _ = writeln!(
            s,
            "<sitemap><loc>{}sitemap{n}.xml</loc><lastmod>{date}</lastmod></sitemap>",
            Esc(&site.base_url)
        );
    }
    s.push_str("</sitemapindex>\n");
    s.into_bytes()
}
