//! the_scribe: writes the site under the output path.
//!
//! Layout (piwheels 0.23's, plus the PEP 691 and PEP 658 files):
//!
//! ```text
//! index.html  faq.html  packages.html  json.html  404.html  packages.json
//! sitemap.xml  sitemap0.xml … sitemapN.xml  styles.css  *.js  logo.svg
//! simple/index.html                      every package (PEP 503)
//! simple/<pkg>/index.html, index.json    its files (HTML and PEP 691 JSON)
//! simple/<pkg>/<wheel>[.metadata]        written by the file juggler
//! project/<pkg>/index.html               the project page
//! project/<pkg>/json/index.json          the project's JSON
//! project/<alias> -> <pkg>               other spellings of the name
//! logs/AAAA/BBBB/CCCC.txt.gz             build logs
//! ```
//!
//! Page writes go through [`Batch`]es; the caller decides how many pages
//! share one (one secretary flush, one chunk of a full rewrite).

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use askama::Template;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::WebError;
use super::pages::{
    self, HomePage, Project, ProjectPage, SITEMAP_PAGES, SITEMAP_URLS, SimpleIndex, Site, Sitemap,
};
use super::text::{json_str, segment};
use super::writer::{Batch, ensure_dir, remove_if_exists, remove_stale_temps, safe_component};
use crate::db::ProjectRow;
use crate::db::{Database, ProjectData};
use crate::logging::target;
use crate::protocol::MasterStats;

/// The static assets, embedded at build time: (file name, content).
pub const ASSETS: [(&str, &[u8]); 4] = [
    (
        "styles.css",
        include_bytes!("../../../www-templates/static/styles.css"),
    ),
    (
        "packages.js",
        include_bytes!("../../../www-templates/static/packages.js"),
    ),
    (
        "project.js",
        include_bytes!("../../../www-templates/static/project.js"),
    ),
    (
        "logo.svg",
        include_bytes!("../../../www-templates/static/logo.svg"),
    ),
];

/// What writing one project's pages found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Files handed to the batch.
    pub files: usize,
    /// The package had no simple page before: the simple index must list it.
    pub new_package: bool,
}

/// The writer of the site.
#[derive(Debug, Clone)]
pub struct Scribe {
    root: PathBuf,
    site: Site,
    durable: bool,
    /// Build ABIs with a per-ABI index view (`simple-<abi>/`).
    abi_views: Vec<String>,
}

impl Scribe {
    pub fn new(root: PathBuf, site: Site) -> Scribe {
        Scribe {
            root,
            site,
            durable: true,
            abi_views: Vec::new(),
        }
    }

    /// Sets the ABIs that get a view of the index of their own,
    /// `simple-<abi>/`, listing only the files that install there (the
    /// ABI's own wheels plus the `none`/`abi3` ones that fit), so a pip on
    /// one OS release never picks a wheel built for another (piwheels issue
    /// #301). The views link to the same wheel files; their root index is a
    /// link to `simple/index.html`, whose relative links lead to the view's
    /// package pages.
    pub fn set_abi_views(&mut self, abis: Vec<String>) -> Result<(), WebError> {
        self.abi_views = abis.into_iter().filter(|a| safe_component(a)).collect();
        for abi in &self.abi_views {
            let dir = self.root.join(format!("simple-{abi}"));
            ensure_dir(&dir)?;
            let link = dir.join("index.html");
            if fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink("../simple/index.html", &link)?;
            }
        }
        Ok(())
    }

    /// The ABIs with an index view of their own.
    pub fn abi_views(&self) -> &[String] {
        &self.abi_views
    }

    /// Publishes without syncing first (benchmarks only: measures what
    /// durability costs).
    pub fn set_durable(&mut self, durable: bool) {
        self.durable = durable;
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn site(&self) -> &Site {
        &self.site
    }

    /// A new batch, durable unless [`Scribe::set_durable`] said otherwise.
    pub fn batch(&self) -> Batch {
        if self.durable {
            Batch::new()
        } else {
            Batch::volatile()
        }
    }

    /// A batch for a full rewrite: staged (see [`Batch::staged`]).
    pub fn staged_batch(&self) -> Batch {
        self.batch().staged()
    }

    /// Creates the output directories, writes the assets, the static pages
    /// and `sitemap0.xml`, and removes temporaries a crash left behind.
    pub fn setup(&self) -> Result<(), WebError> {
        log::info!(target: target::THE_SCRIBE, "setting up output path {}", self.root.display());
        fs::create_dir_all(&self.root)?;
        for dir in ["simple", "project", "logs"] {
            ensure_dir(&self.root.join(dir))?;
        }
        // Where pages and package directories are written (a staged batch
        // builds new package directories next to where they go).
        let mut dirs = vec![self.root.clone()];
        for top in fs::read_dir(&self.root)? {
            let top = top?;
            let name = top.file_name();
            let name = name.to_string_lossy();
            if top.file_type()?.is_dir()
                && (name == "simple" || name == "project" || name.starts_with("simple-"))
            {
                dirs.push(top.path());
            }
        }
        for dir in dirs {
            let n = remove_stale_temps(&dir)?;
            if n > 0 {
                log::warn!(target: target::THE_SCRIBE, "removed {n} temporary files or directories a crash left in {}", dir.display());
            }
        }
        let mut batch = self.batch();
        for (name, content) in ASSETS {
            batch.write(&self.root.join(name), content)?;
        }
        for (name, html) in pages::static_pages(&self.site)? {
            batch.write(&self.root.join(name), html.as_bytes())?;
        }
        let mut map = Sitemap::start(Vec::new())?;
        for page in SITEMAP_PAGES {
            map.url(&format!("{}{}", self.site.base_url, page))?;
        }
        batch.write(&self.root.join("sitemap0.xml"), &map.finish()?)?;
        batch.commit()?;
        Ok(())
    }

    fn simple_dir(&self, package: &str) -> PathBuf {
        self.root.join("simple").join(package)
    }

    fn project_dir(&self, package: &str) -> PathBuf {
        self.root.join("project").join(package)
    }

    /// Hashes of the `.metadata` files the file juggler left next to the
    /// project's wheels (PEP 658), by wheel name.
    fn metadata_hashes<'a>(&self, p: &Project<'a>) -> HashMap<&'a str, String> {
        let mut out = HashMap::new();
        for (_, name, _, f) in p.files() {
            let location = f.location.trim_matches('/');
            if !location.split('/').all(safe_component) || !safe_component(name) {
                continue;
            }
            let path = self
                .root
                .join(location)
                .join(p.package)
                .join(format!("{name}.metadata"));
            let Ok(mut file) = fs::File::open(&path) else {
                continue;
            };
            let mut hasher = Sha256::new();
            let mut buf = [0u8; 16 * 1024];
            let ok = loop {
                match file.read(&mut buf) {
                    Ok(0) => break true,
                    Ok(n) => hasher.update(&buf[..n]),
                    Err(e) => {
                        log::warn!(target: target::THE_SCRIBE, "cannot read {}: {e}", path.display());
                        break false;
                    }
                }
            };
            if ok {
                let digest = hasher.finalize();
                let hex = digest.iter().fold(String::with_capacity(64), |mut s, b| {
                    use std::fmt::Write as _;
                    let _ = write!(s, "{b:02x}");
                    s
                });
                out.insert(name, hex);
            }
        }
        out
    }

    /// Writes a project's pages into `batch`: the project page and its
    /// JSON, and with `both` the simple page (HTML and PEP 691 JSON).
    /// `exclude` leaves out a version being deleted.
    pub fn write_project(
        &self,
        batch: &mut Batch,
        package: &str,
        data: &ProjectData,
        both: bool,
        exclude: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Written, WebError> {
        if !safe_component(package) {
            return Err(WebError::BadName(package.to_owned()));
        }
        let p = Project::new(package, data, exclude);
        let mut written = Written::default();
        if both {
            let dir = self.simple_dir(package);
            batch.ensure_dir(&dir)?;
            let index = dir.join("index.html");
            written.new_package = !index.exists();
            let metadata = self.metadata_hashes(&p);
            let page = pages::simple_page(&p, &metadata, now);
            batch.write_stamped(&index, &page, pages::simple_page_stamp(&page))?;
            batch.write(&dir.join("index.json"), &pages::simple_json(&p, &metadata))?;
            written.files += 2;
            for abi in &self.abi_views {
                let view = p.for_abi(abi);
                let dir = self.root.join(format!("simple-{abi}")).join(package);
                batch.ensure_dir(&dir)?;
                let page = pages::simple_page(&view, &metadata, now);
                batch.write_stamped(
                    &dir.join("index.html"),
                    &page,
                    pages::simple_page_stamp(&page),
                )?;
                batch.write(
                    &dir.join("index.json"),
                    &pages::simple_json(&view, &metadata),
                )?;
                written.files += 2;
            }
        }
        let dir = self.project_dir(package);
        batch.ensure_dir(&dir)?;
        let html = ProjectPage::new(&self.site, &p, now)
            .with_views(&self.abi_views)
            .render()?;
        batch.write_stamped(
            &dir.join("index.html"),
            html.as_bytes(),
            pages::project_page_stamp(&html),
        )?;
        let json_dir = dir.join("json");
        batch.ensure_dir(&json_dir)?;
        batch.write(
            &json_dir.join("index.json"),
            &pages::project_json(&p, &self.site),
        )?;
        written.files += 2;
        Ok(written)
    }

    /// Links every alias of `package` to it under `project/` (relative
    /// symlinks), where nothing else stands yet.
    pub fn link_aliases(&self, package: &str, aliases: &[String]) {
        for alias in aliases {
            if alias == package || !safe_component(alias) {
                continue;
            }
            let link = self.root.join("project").join(alias);
            if fs::symlink_metadata(&link).is_ok() {
                continue;
            }
            if let Err(e) = std::os::unix::fs::symlink(package, &link) {
                log::warn!(target: target::THE_SCRIBE, "cannot link {} to {package}: {e}", link.display());
            }
        }
    }

    /// Writes the pages of one row of a bulk read; false when the row was
    /// skipped (not a package, unreadable, unsafe name).
    pub fn write_row(
        &self,
        batch: &mut Batch,
        row: &ProjectRow,
        both: bool,
        now: DateTime<Utc>,
    ) -> Result<Option<Written>, WebError> {
        if !row.exists {
            log::warn!(target: target::THE_SCRIBE, "not writing pages of {}: no such package", row.package);
            return Ok(None);
        }
        let data = match &row.data {
            Ok(d) => d,
            Err(e) => {
                log::error!(target: target::THE_SCRIBE, "cannot read the data of {}: {e}", row.package);
                return Ok(None);
            }
        };
        match self.write_project(batch, &row.package, data, both, None, now) {
            Ok(w) => Ok(Some(w)),
            Err(WebError::BadName(name)) => {
                log::error!(target: target::THE_SCRIBE, "refusing to write pages for the unsafe name {name:?}");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Rewrites `simple/index.html` (every package, sorted by name) and the
    /// sitemaps, streaming the names from the database. `exclude` is a
    /// package being deleted whose rows are still there.
    pub fn write_simple_index(
        &self,
        db: &mut Database,
        exclude: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<usize, WebError> {
        log::info!(target: target::THE_SCRIBE, "writing package index");
        let mut batch = self.batch();
        let mut index = SimpleIndex::start(
            batch.start(&self.root.join("simple").join("index.html"))?,
            &self.site,
        )?;
        let mut map: Option<Sitemap<_>> = None;
        let mut maps = 0;
        let mut count = 0;
        let mut failed: Option<io::Error> = None;
        let mut each = |name: &str| -> io::Result<()> {
            if Some(name) == exclude {
                return Ok(());
            }
            index.package(name)?;
            if count % SITEMAP_URLS == 0 {
                if let Some(m) = map.take() {
                    let f = m.finish()?;
                    batch.finish(f, Ok(()))?;
                }
                maps += 1;
                let f = batch.start(&self.root.join(format!("sitemap{maps}.xml")))?;
                map = Some(Sitemap::start(f)?);
            }
            if let Some(m) = map.as_mut() {
                m.url(&format!("{}project/{}/", self.site.base_url, segment(name)))?;
            }
            count += 1;
            Ok(())
        };
        db.for_each_package_sorted(|name| {
            if failed.is_none() {
                if let Err(e) = each(name) {
                    failed = Some(e);
                }
            }
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        if let Some(m) = map.take() {
            let f = m.finish()?;
            batch.finish(f, Ok(()))?;
        }
        let f = index.finish(now)?;
        batch.finish(f, Ok(()))?;
        batch.write(
            &self.root.join("sitemap.xml"),
            &pages::sitemap_index(&self.site, maps, now),
        )?;
        batch.commit()?;
        // Sitemaps beyond the last one are stale now.
        let mut n = maps + 1;
        while remove_if_exists(&self.root.join(format!("sitemap{n}.xml")))? {
            n += 1;
        }
        Ok(count)
    }

    /// Rewrites the homepage with `stats`.
    pub fn write_homepage(&self, stats: &MasterStats, now: DateTime<Utc>) -> Result<(), WebError> {
        log::info!(target: target::THE_SCRIBE, "writing homepage");
        let html = HomePage::new(&self.site, stats, now).render()?;
        let mut batch = self.batch();
        batch.write(&self.root.join("index.html"), html.as_bytes())?;
        batch.commit()?;
        Ok(())
    }

    /// Rewrites `packages.json` (`[package, downloads in 30 days,
    /// downloads ever]` for every package), streamed from the database.
    pub fn write_search_index(&self, db: &mut Database) -> Result<usize, WebError> {
        log::info!(target: target::THE_SCRIBE, "writing search index");
        let mut batch = self.batch();
        let mut f = batch.start(&self.root.join("packages.json"))?;
        let mut failed: Option<io::Error> = None;
        let mut first = true;
        let mut row = Vec::with_capacity(128);
        f.write_all(b"[")?;
        let n = db.get_search_index(|package, recent, all| {
            if failed.is_some() {
                return;
            }
            row.clear();
            if !first {
                row.push(b',');
            }
            first = false;
            row.push(b'[');
            json_str(&mut row, package);
            let _ = write!(row, ",{recent},{all}]");
            if let Err(e) = f.write_all(&row) {
                failed = Some(e);
            }
        })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        let done = f.write_all(b"]\n");
        batch.finish(f, done)?;
        batch.commit()?;
        Ok(n)
    }

    /// Writes a build's log, gzip-compressed, replacing any earlier one.
    pub fn write_log(&self, build_id: i32, output: &str) -> Result<(), WebError> {
        log::info!(target: target::THE_SCRIBE, "writing log for build {build_id}");
        let [a, b, c] = pages::log_parts(build_id);
        let mut dir = self.root.join("logs");
        for part in [a, b] {
            dir.push(part);
            ensure_dir(&dir)?;
        }
        let path = dir.join(format!("{c}.txt.gz"));
        let mut batch = self.batch();
        let f = batch.start(&path)?;
        let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        let wrote = gz.write_all(output.as_bytes());
        let f = gz.finish()?;
        batch.finish(f, wrote)?;
        batch.commit()?;
        Ok(())
    }

    /// Removes a package's wheels (with their `.metadata`), pages, alias
    /// links and directories, then rewrites the simple index without it.
    /// Call it before the package's rows are deleted: the file names come
    /// from the database.
    pub fn delete_package(
        &self,
        db: &mut Database,
        package: &str,
        now: DateTime<Utc>,
    ) -> Result<(), WebError> {
        if !safe_component(package) {
            return Err(WebError::BadName(package.to_owned()));
        }
        log::info!(target: target::THE_SCRIBE, "deleting package {package}");
        for alias in db.get_package_aliases(package)? {
            if !safe_component(&alias) {
                continue;
            }
            let link = self.root.join("project").join(&alias);
            if fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()) {
                remove_if_exists(&link)?;
            }
        }
        let simple = self.simple_dir(package);
        let project = self.project_dir(package);
        let files = db.get_package_files(package)?;
        self.remove_wheels(&simple, files.keys())?;
        for f in [
            simple.join("index.html"),
            simple.join("index.json"),
            project.join("index.html"),
            project.join("json").join("index.json"),
        ] {
            remove_if_exists(&f)?;
        }
        let views: Vec<PathBuf> = self
            .abi_views
            .iter()
            .map(|abi| self.root.join(format!("simple-{abi}")).join(package))
            .collect();
        for view in &views {
            remove_if_exists(&view.join("index.html"))?;
            remove_if_exists(&view.join("index.json"))?;
        }
        for dir in [&simple, &project.join("json"), &project]
            .into_iter()
            .chain(views.iter())
        {
            if let Err(e) = fs::remove_dir(dir) {
                if e.kind() != io::ErrorKind::NotFound {
                    log::error!(target: target::THE_SCRIBE, "cannot remove {}: {e}", dir.display());
                }
            }
        }
        self.write_simple_index(db, Some(package), now)?;
        Ok(())
    }

    /// Removes a version's wheels and rewrites the package's pages without
    /// it. Call it before the version's rows are deleted.
    pub fn delete_version(
        &self,
        db: &mut Database,
        package: &str,
        version: &str,
        now: DateTime<Utc>,
    ) -> Result<(), WebError> {
        if !safe_component(package) {
            return Err(WebError::BadName(package.to_owned()));
        }
        log::info!(target: target::THE_SCRIBE, "deleting package {package} version {version}");
        let files = db.get_version_files(package, version)?;
        self.remove_wheels(&self.simple_dir(package), files.iter())?;
        let mut rows = Vec::with_capacity(1);
        db.for_each_project_of(&[package.to_owned()], |r| rows.push(r))?;
        let Some(row) = rows.pop().filter(|r| r.exists) else {
            return Ok(());
        };
        let data = row.data.map_err(WebError::Data)?;
        let mut batch = self.batch();
        self.write_project(&mut batch, package, &data, true, Some(version), now)?;
        batch.commit()?;
        Ok(())
    }

    fn remove_wheels<'a>(
        &self,
        dir: &Path,
        files: impl Iterator<Item = &'a String>,
    ) -> Result<(), WebError> {
        for name in files {
            if !safe_component(name) {
                continue;
            }
            if !remove_if_exists(&dir.join(name))? {
                log::warn!(target: target::THE_SCRIBE, "file not found: {}", dir.join(name).display());
            }
            remove_if_exists(&dir.join(format!("{name}.metadata")))?;
        }
        Ok(())
    }
}
