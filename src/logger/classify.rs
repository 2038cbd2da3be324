//! Which hits piw-logger reports, and the message it builds for each, as
//! piwheels 0.23 does.
//!
//! A hit is considered only if it is a `GET` answered with status 200 and
//! the client sent a User-Agent. Its path then goes through this table;
//! the first row that matches decides (globs are Python's `fnmatchcase`,
//! so `*` also matches `/`). "installer" means a user agent starting with
//! `pip/` or `uv/`:
//!
//! | user agent | path | message |
//! |---|---|---|
//! | installer | `/simple/` | none (the index of every package) |
//! | any | `/project/` | none |
//! | any | `/simple/*.whl` | `LOGDOWNLOAD` |
//! | installer | `/simple/*` | `LOGSEARCH` |
//! | any | `/project/*/json/*` | `LOGJSON` |
//! | any | `/project/*` | `LOGPROJECT` |
//! | any | `/`, `/*.html` | `LOGPAGE` |
//!
//! Fields:
//! - downloads: the file name (last path segment) and what the installer
//!   says about its platform in the JSON it appends to its user agent
//!   (pip and uv alike); any other client sends an empty description, in
//!   which the Python implementation defaults to `CPython` as in piwheels;
//! - searches, project pages and project JSON: the package, i.e. the third
//!   path segment, canonicalised (PEP 503);
//! - pages: `home` for `/` and `/index.html`, else the path without `/`s and
//!   `.html`;
//! - project pages, JSON and pages carry the user agent's product token
//!   (the text before the first `/`), lower-cased, without NULs, at most
//!   200 characters.
//!
//! Decisions where piwheels would crash rather than decide: a description
//! that is not a JSON object (or has non-text values where text belongs)
//! counts as empty; a client address that is not an IP address (Apache with
//! `HostnameLookups On`) is not logged, since the database stores `inet`.

use std::net::IpAddr;

use serde_json::{Map, Value};

use super::format::Entry;
use crate::protocol::{ClientInfo, DownloadState, LogMessage, PageHit, SearchState};

/// The five kinds of hit, in the lumberjack protocol's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogType {
    Download,
    Search,
    Project,
    Json,
    Page,
}

impl LogType {
    /// Every kind, in protocol order.
    pub const ALL: [LogType; 5] = [
        LogType::Download,
        LogType::Search,
        LogType::Project,
        LogType::Json,
        LogType::Page,
    ];

    /// The message name on the wire.
    pub fn message_name(self) -> &'static str {
        match self {
            LogType::Download => "LOGDOWNLOAD",
            LogType::Search => "LOGSEARCH",
            LogType::Project => "LOGPROJECT",
            LogType::Json => "LOGJSON",
            LogType::Page => "LOGPAGE",
        }
    }

    /// The table the master stores this kind in.
    pub fn table(self) -> &'static str {
        match self {
            LogType::Download => "downloads",
            LogType::Search => "searches",
            LogType::Project => "project_page_hits",
            LogType::Json => "project_json_downloads",
            LogType::Page => "web_page_hits",
        }
    }

    /// Position in [`LogType::ALL`] (for per-kind counters).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The kind of a message.
    pub fn of(msg: &LogMessage) -> LogType {
        match msg {
            LogMessage::Download(_) => LogType::Download,
            LogMessage::Search(_) => LogType::Search,
            LogMessage::Project(_) => LogType::Project,
            LogMessage::Json(_) => LogType::Json,
            LogMessage::Page(_) => LogType::Page,
        }
    }
}

/// Why a well-formed line is not reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ignored {
    /// The request line was not a request (Apache logs garbage as sent).
    NoRequest,
    /// Not a `GET`.
    NotGet,
    /// Status other than 200.
    NotOk,
    /// No User-Agent.
    NoUserAgent,
    /// No row of the table matches.
    NotInteresting,
    /// The path has no package name where one belongs.
    NoName,
    /// The client address is not an IP address.
    NotAnAddress,
}

impl Ignored {
    pub fn describe(self) -> &'static str {
        match self {
            Ignored::NoRequest => "not a valid request line",
            Ignored::NotGet => "not a GET",
            Ignored::NotOk => "status is not 200",
            Ignored::NoUserAgent => "no user agent",
            Ignored::NotInteresting => "not a page piwheels counts",
            Ignored::NoName => "no package or page name in the path",
            Ignored::NotAnAddress => "the client address is not an IP address",
        }
    }
}

/// Most characters kept of a user agent's product token (piwheels 0.23).
pub const MAX_USER_AGENT: usize = 200;

fn is_installer(ua: &str) -> bool {
    ua.starts_with("pip/") || ua.starts_with("uv/")
}

/// The classification table; see the module documentation.
const PATTERNS: &[(bool, &str, Option<LogType>)] = &[
    (true, "/simple/", None),
    (false, "/project/", None),
    (false, "/simple/*.whl", Some(LogType::Download)),
    (true, "/simple/*", Some(LogType::Search)),
    (false, "/project/*/json/*", Some(LogType::Json)),
    (false, "/project/*", Some(LogType::Project)),
    (false, "/", Some(LogType::Page)),
    (false, "/*.html", Some(LogType::Page)),
];

/// Classifies a hit.
pub fn log_type(
    method: &str,
    status: u16,
    path: &str,
    user_agent: Option<&str>,
) -> Result<LogType, Ignored> {
    if method != "GET" {
        return Err(Ignored::NotGet);
    }
    if status != 200 {
        return Err(Ignored::NotOk);
    }
    let ua = user_agent.ok_or(Ignored::NoUserAgent)?;
    let installer = is_installer(ua);
    for &(installer_only, pattern, result) in PATTERNS {
        if (!installer_only || installer) && crate::logging::fnmatch(pattern, path) {
            return result.ok_or(Ignored::NotInteresting);
        }
    }
    Err(Ignored::NotInteresting)
}

/// Turns a parsed line into the message piw-logger sends, or says why
/// there is none.
pub fn to_message(entry: &Entry<'_>) -> Result<LogMessage, Ignored> {
    let request = entry.request.as_ref().ok_or(Ignored::NoRequest)?;
    let ua = entry.user_agent.as_deref();
    let kind = log_type(&request.method, entry.status, &request.path, ua)?;
    let ua = ua.unwrap_or_default();
    let host = entry.remote_host.trim();
    if host.parse::<IpAddr>().is_err() {
        return Err(Ignored::NotAnAddress);
    }
    let host = host.to_owned();
    let timestamp = entry.time;
    let path: &str = &request.path;
    let package = || {
        let name = canonicalize_name(path.split('/').nth(2).unwrap_or_default());
        if name.is_empty() {
            Err(Ignored::NoName)
        } else {
            Ok(name)
        }
    };
    Ok(match kind {
        LogType::Download => {
            let filename = path.rsplit('/').next().unwrap_or_default().to_owned();
            LogMessage::Download(DownloadState {
                filename,
                host,
                timestamp,
                client: client_info(ua),
            })
        }
        LogType::Search => LogMessage::Search(SearchState {
            package: package()?,
            host,
            timestamp,
            client: client_info(ua),
        }),
        LogType::Project | LogType::Json => {
            let hit = PageHit {
                name: package()?,
                host,
                timestamp,
                user_agent: product_token(ua),
            };
            if kind == LogType::Project {
                LogMessage::Project(hit)
            } else {
                LogMessage::Json(hit)
            }
        }
        LogType::Page => {
            let name = page_name(path);
            if name.is_empty() {
                return Err(Ignored::NoName);
            }
            LogMessage::Page(PageHit {
                name,
                host,
                timestamp,
                user_agent: product_token(ua),
            })
        }
    })
}

/// PEP 503 normalisation: runs of `-`, `_` and `.` become one `-`, and
/// the name is lower-cased.
pub fn canonicalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            separator = true;
            continue;
        }
        if separator {
            out.push('-');
            separator = false;
        }
        out.extend(c.to_lowercase());
    }
    if separator {
        out.push('-');
    }
    out
}

/// The product token of a user agent: the text before the first `/`,
/// lower-cased, without NULs, at most [`MAX_USER_AGENT`] characters.
pub fn product_token(ua: &str) -> String {
    ua.split('/')
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|&c| c != '\0')
        .flat_map(char::to_lowercase)
        .take(MAX_USER_AGENT)
        .collect()
}

/// A page's name: `home` for `/` and `/index.html`, else the path without
/// its slashes and `.html`.
pub fn page_name(path: &str) -> String {
    if path == "/" || path == "/index.html" {
        "home".to_owned()
    } else {
        path.replace('/', "").replace(".html", "")
    }
}

/// What an installer says about its platform: the JSON object after the
/// first `{` of a `pip/` or `uv/` user agent. Anything else, and anything
/// that is not a JSON object, gives the empty description.
pub fn client_info(ua: &str) -> ClientInfo {
    let parsed = if is_installer(ua) {
        ua.find('{')
            .and_then(|i| serde_json::from_str::<Value>(&ua[i..]).ok())
    } else {
        None
    };
    let empty = Map::new();
    let data = match &parsed {
        Some(Value::Object(map)) => map,
        _ => &empty,
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let nested = |key: &str, field: &str| {
        text(
            data.get(key)
                .and_then(Value::as_object)
                .and_then(|o| o.get(field)),
        )
    };
    // piwheels: implementation defaults to {'name': 'CPython'} for the name
    // and to {'version': <python>} for the version.
    let (py_name, py_version) = match data.get("implementation") {
        None => (Some("CPython".to_owned()), text(data.get("python"))),
        Some(Value::Object(imp)) => (text(imp.get("name")), text(imp.get("version"))),
        Some(_) => (None, None),
    };
    ClientInfo {
        arch: text(data.get("cpu")),
        distro_name: nested("distro", "name"),
        distro_version: nested("distro", "version"),
        os_name: nested("system", "name"),
        os_version: nested("system", "release"),
        py_name,
        py_version,
        installer_name: nested("installer", "name"),
        installer_version: nested("installer", "version"),
        setuptools_version: text(data.get("setuptools_version")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(method: &str, status: u16, path: &str, ua: Option<&str>) -> Result<LogType, Ignored> {
        log_type(method, status, path, ua)
    }

    #[test]
    fn the_table() {
        let pip = Some("pip/24.0 {}");
        let uv = Some("uv/0.4.0 {}");
        let firefox = Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0");
        let wget = Some("Wget/1.21");
        use LogType::*;
        for (ua, path, want) in [
            (pip, "/simple/", Err(Ignored::NotInteresting)),
            (uv, "/simple/", Err(Ignored::NotInteresting)),
            (firefox, "/simple/", Err(Ignored::NotInteresting)),
            (firefox, "/project/", Err(Ignored::NotInteresting)),
            (
                pip,
                "/simple/numpy/numpy-1.0-cp311-cp311-linux_armv7l.whl",
                Ok(Download),
            ),
            (
                wget,
                "/simple/numpy/numpy-1.0-cp311-cp311-linux_armv7l.whl",
                Ok(Download),
            ),
            (
                firefox,
                "/simple/numpy/numpy-1.0-cp311-cp311-linux_armv7l.whl",
                Ok(Download),
            ),
            (pip, "/simple/numpy/", Ok(Search)),
            (uv, "/simple/numpy/", Ok(Search)),
            (firefox, "/simple/numpy/", Err(Ignored::NotInteresting)),
            (wget, "/project/numpy/json/", Ok(Json)),
            (pip, "/project/numpy/json/index.json", Ok(Json)),
            (firefox, "/project/numpy/", Ok(Project)),
            (pip, "/project/numpy/", Ok(Project)),
            (firefox, "/", Ok(Page)),
            (firefox, "/faq.html", Ok(Page)),
            (firefox, "/packages.html", Ok(Page)),
            (firefox, "/robots.txt", Err(Ignored::NotInteresting)),
            (
                firefox,
                "/logs/ab/cd/ef.txt.gz",
                Err(Ignored::NotInteresting),
            ),
            (
                Some("PIP/24.0"),
                "/simple/numpy/",
                Err(Ignored::NotInteresting),
            ),
        ] {
            assert_eq!(kind("GET", 200, path, ua), want, "{ua:?} {path}");
        }
        assert_eq!(kind("HEAD", 200, "/", firefox), Err(Ignored::NotGet));
        assert_eq!(kind("POST", 200, "/", firefox), Err(Ignored::NotGet));
        assert_eq!(kind("GET", 304, "/", firefox), Err(Ignored::NotOk));
        assert_eq!(kind("GET", 404, "/simple/x/", pip), Err(Ignored::NotOk));
        assert_eq!(kind("GET", 200, "/", None), Err(Ignored::NoUserAgent));
    }

    #[test]
    fn names() {
        assert_eq!(
            canonicalize_name("Django_REST.framework"),
            "django-rest-framework"
        );
        assert_eq!(canonicalize_name("a--_.b"), "a-b");
        assert_eq!(canonicalize_name("_x_"), "-x-");
        assert_eq!(page_name("/"), "home");
        assert_eq!(page_name("/index.html"), "home");
        assert_eq!(page_name("/faq.html"), "faq");
        assert_eq!(page_name("/simple/index.html"), "simpleindex");
        assert_eq!(product_token("Mozilla/5.0 (X11)"), "mozilla");
        assert_eq!(
            product_token("Mythic HTTP monitor check"),
            "mythic http monitor check"
        );
        assert_eq!(product_token("a\0B\0c/1"), "abc");
        assert_eq!(product_token(&"x".repeat(10_000)).len(), MAX_USER_AGENT);
    }

    #[test]
    fn pip_and_uv_descriptions() {
        let pip = r#"pip/19.0.3 {"cpu":"armv7l","distro":{"id":"stretch","libc":{"lib":"glibc","version":"2.24"},"name":"Raspbian GNU/Linux","version":"9"},"implementation":{"name":"CPython","version":"3.5.3"},"installer":{"name":"pip","version":"19.0.3"},"openssl_version":"OpenSSL 1.1.0j  20 Nov 2018","python":"3.5.3","setuptools_version":"33.1.1","system":{"name":"Linux","release":"4.19.27-v7+"}}"#;
        let c = client_info(pip);
        assert_eq!(c.arch.as_deref(), Some("armv7l"));
        assert_eq!(c.distro_name.as_deref(), Some("Raspbian GNU/Linux"));
        assert_eq!(c.distro_version.as_deref(), Some("9"));
        assert_eq!(c.os_name.as_deref(), Some("Linux"));
        assert_eq!(c.os_version.as_deref(), Some("4.19.27-v7+"));
        assert_eq!(c.py_name.as_deref(), Some("CPython"));
        assert_eq!(c.py_version.as_deref(), Some("3.5.3"));
        assert_eq!(c.installer_name.as_deref(), Some("pip"));
        assert_eq!(c.installer_version.as_deref(), Some("19.0.3"));
        assert_eq!(c.setuptools_version.as_deref(), Some("33.1.1"));

        let uv = r#"uv/0.4.0 {"installer":{"name":"uv","version":"0.4.0"},"python":"3.12.5","implementation":{"name":"CPython","version":"3.12.5"},"distro":{"name":"Debian GNU/Linux","version":"12","id":"bookworm","libc":{"lib":"glibc","version":"2.36"}},"system":{"name":"Linux","release":"6.6.31+rpt-rpi-v8"},"cpu":"aarch64","openssl_version":null,"setuptools_version":null,"rustc_version":null,"ci":null}"#;
        let c = client_info(uv);
        assert_eq!(c.installer_name.as_deref(), Some("uv"));
        assert_eq!(c.arch.as_deref(), Some("aarch64"));
        assert_eq!(c.setuptools_version, None);
        assert_eq!(c.py_version.as_deref(), Some("3.12.5"));
    }

    #[test]
    fn broken_descriptions_are_empty() {
        let empty = ClientInfo {
            py_name: Some("CPython".into()),
            ..ClientInfo::default()
        };
        for ua in [
            "pip/19.0.3 no JSON UA",
            "pip/evil {invalid JSON}",
            "pip/1 {\"cpu\": \"x\"} trailing",
            "pip/1 [1, 2]",
            "Wget/1.21 {\"cpu\":\"armv7l\"}",
            "pip/1 {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{",
        ] {
            assert_eq!(client_info(ua), empty, "{ua}");
        }
        let odd = client_info(r#"pip/1 {"cpu":5,"distro":"x","implementation":null,"python":"3"}"#);
        assert_eq!(odd, ClientInfo::default());
        let deep = format!("pip/1 {}", "[".repeat(100_000));
        assert_eq!(client_info(&deep), empty);
    }
}
