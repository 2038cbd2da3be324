//! Turning a piwheels DSN into a connection configuration.
//!
//! piwheels hands its DSN to libpq, where `postgres:///piwheels` means: the
//! local unix socket, the operating-system user, database `piwheels`. The
//! `postgres` crate parses such a URL but leaves host and user unset and
//! then refuses to connect, so [`parse`] fills in what libpq would: `PGHOST`
//! (or the first unix socket directory that holds a server socket),
//! `PGPORT`, `PGUSER` (or the OS user), `PGDATABASE` (or the user name) and
//! `PGPASSWORD`.

use std::path::{Path, PathBuf};

use postgres::Config;
use postgres::config::Host;

/// The DSN piwheels uses when none is given.
pub const DEFAULT_DSN: &str = "postgres:///piwheels";

/// Where Debian's and upstream's servers put their sockets, in the order
/// libpq builds commonly look.
const SOCKET_DIRS: &[&str] = &["/var/run/postgresql", "/run/postgresql", "/tmp"];

/// Parses `dsn` (a `postgres://` / `postgresql://` URL or `key=value` pairs)
/// and completes it the way libpq would.
pub fn parse(dsn: &str) -> Result<Config, postgres::Error> {
    let mut config: Config = dsn.parse()?;
    complete(&mut config, |k| std::env::var(k).ok());
    Ok(config)
}

/// Fills in host, port, user, database and password from `env` (a lookup of
/// libpq's environment variables) and the system defaults.
pub fn complete(config: &mut Config, env: impl Fn(&str) -> Option<String>) {
    if config.get_ports().is_empty() {
        if let Some(port) = env("PGPORT").and_then(|p| p.parse().ok()) {
            config.port(port);
        }
    }
    let port = config.get_ports().first().copied().unwrap_or(5432);
    if config.get_hosts().is_empty() {
        match env("PGHOST").filter(|h| !h.is_empty()) {
            Some(h) if h.starts_with('/') => {
                config.host_path(h);
            }
            Some(h) => {
                config.host(&h);
            }
            None => {
                config.host_path(default_socket_dir(port));
            }
        }
    }
    if config.get_user().is_none() {
        let user = env("PGUSER")
            .filter(|u| !u.is_empty())
            .or_else(os_user)
            .unwrap_or_else(|| "postgres".to_owned());
        config.user(&user);
    }
    if config.get_dbname().is_none() {
        let db = env("PGDATABASE")
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| config.get_user().unwrap_or("postgres").to_owned());
        config.dbname(&db);
    }
    if config.get_password().is_none() {
        if let Some(pw) = env("PGPASSWORD") {
            config.password(pw);
        }
    }
}

/// The first socket directory holding `.s.PGSQL.<port>`, else the first of
/// the usual ones.
fn default_socket_dir(port: u16) -> PathBuf {
    SOCKET_DIRS
        .iter()
        .map(Path::new)
        .find(|d| d.join(format!(".s.PGSQL.{port}")).exists())
        .unwrap_or(Path::new(SOCKET_DIRS[0]))
        .to_path_buf()
}

/// The name of the effective OS user, as libpq uses by default.
pub fn os_user() -> Option<String> {
    // SAFETY: getpwuid_r writes into the buffers we own and sized; the result
    // pointer is either null or points at `pwd`, whose strings live in `buf`.
    unsafe {
        let uid = libc::geteuid();
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr(pwd.pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// A description of where a configuration points, for log messages (never
/// includes the password).
pub fn describe(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "?".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "database {} as {} on {}:{}",
        config.get_dbname().unwrap_or("?"),
        config.get_user().unwrap_or("?"),
        host,
        port
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn default_dsn_means_local_socket_and_os_user() {
        let mut c: Config = DEFAULT_DSN.parse().unwrap();
        complete(&mut c, no_env);
        assert!(matches!(c.get_hosts()[0], Host::Unix(_)));
        assert_eq!(c.get_dbname(), Some("piwheels"));
        assert_eq!(c.get_user().map(str::to_owned), os_user());
    }

    #[test]
    fn explicit_parts_are_kept() {
        let mut c: Config = "postgres://alice:pw@db.example:6543/other".parse().unwrap();
        complete(&mut c, |_| Some("ignored".into()));
        assert!(matches!(&c.get_hosts()[0], Host::Tcp(h) if h == "db.example"));
        assert_eq!(c.get_ports(), &[6543]);
        assert_eq!(c.get_user(), Some("alice"));
        assert_eq!(c.get_dbname(), Some("other"));
        assert_eq!(c.get_password(), Some(&b"pw"[..]));
    }

    #[test]
    fn environment_fills_gaps() {
        let mut c: Config = "postgres:///".parse().unwrap();
        complete(&mut c, |k| match k {
            "PGHOST" => Some("/sock".into()),
            "PGPORT" => Some("5433".into()),
            "PGUSER" => Some("bob".into()),
            _ => None,
        });
        assert!(matches!(&c.get_hosts()[0], Host::Unix(p) if p == Path::new("/sock")));
        assert_eq!(c.get_ports(), &[5433]);
        assert_eq!(c.get_user(), Some("bob"));
        assert_eq!(c.get_dbname(), Some("bob"));
    }

    #[test]
    fn key_value_form_works() {
        let mut c: Config = "dbname=piwheels user=piwheels".parse().unwrap();
        complete(&mut c, no_env);
        assert_eq!(c.get_user(), Some("piwheels"));
        assert!(!c.get_hosts().is_empty());
    }
}
