//! The settings of `piw-master`: every option of piwheels' master (the
//! seed's list plus 0.23's `--debug` and `--pypi-json`).

use std::path::PathBuf;

use super::{ConfigError, LogSettings, Opt, Parsed, Program, Settings, expand_user};

/// Default addresses, as piwheels' `const.py` has them.
pub mod defaults {
    pub const DSN: &str = "postgres:///piwheels";
    pub const OUTPUT_PATH: &str = "/var/www";
    pub const PYPI_XMLRPC: &str = "https://pypi.org/pypi";
    pub const PYPI_SIMPLE: &str = "https://pypi.org/simple";
    pub const PYPI_JSON: &str = "https://pypi.org/pypi";
    pub const STATUS_QUEUE: &str = "ipc:///tmp/piw-status";
    pub const CONTROL_QUEUE: &str = "ipc:///tmp/piw-control";
    pub const IMPORT_QUEUE: &str = "ipc:///tmp/piw-import";
    pub const LOG_QUEUE: &str = "ipc:///tmp/piw-logger";
    pub const SLAVE_QUEUE: &str = "tcp://*:5555";
    pub const FILE_QUEUE: &str = "tcp://*:5556";
    pub const WEB_QUEUE: &str = "inproc://web";
    pub const BUILDS_QUEUE: &str = "inproc://builds";
    pub const DB_QUEUE: &str = "inproc://db";
    pub const FS_QUEUE: &str = "inproc://fs";
    pub const STATS_QUEUE: &str = "inproc://stats";
}

const MASTER_OPTS: &[Opt] = &[
    Opt::value(
        Some("-d"),
        "--dsn",
        "DSN",
        Some(defaults::DSN),
        "The database to use; this database must be configured with piw-initdb and the \
         user must *not* be a PostgreSQL superuser",
    ),
    Opt::value(
        Some("-o"),
        "--output-path",
        "PATH",
        Some(defaults::OUTPUT_PATH),
        "The path under which the website should be written; must be writable by the \
         current user",
    ),
    Opt::flag(
        None,
        "--dev-mode",
        "Run the master in development mode, which reduces some timeouts and tweaks some \
         defaults",
    ),
    Opt::multi(
        None,
        "--debug",
        "TASK",
        "Set logging to debug level for the named task (a pattern such as \
         master.slave_driver or 'master.the_*'); can be given more than once",
    ),
    Opt::value(
        None,
        "--pypi-xmlrpc",
        "URL",
        Some(defaults::PYPI_XMLRPC),
        "The URL of the PyPI XML-RPC service",
    ),
    Opt::value(
        None,
        "--pypi-simple",
        "URL",
        Some(defaults::PYPI_SIMPLE),
        "The URL of the PyPI simple API, handed to build slaves",
    ),
    Opt::value(
        None,
        "--pypi-json",
        "URL",
        Some(defaults::PYPI_JSON),
        "The URL of the PyPI JSON API, used for package descriptions",
    ),
    Opt::value(
        None,
        "--allow-list",
        "FILE",
        None,
        "Build only the packages this file names: one PEP 503 name or shell pattern \
         (django-*) a line, # for comments. PyPI is still followed completely; other \
         packages are skipped with the reason 'not on the allow-list'. Re-read on \
         SIGHUP (systemctl reload). Without it, every package is built, as piwheels \
         does",
    ),
    Opt::value(
        None,
        "--newest-releases",
        "N",
        None,
        "With --allow-list, build only each package's newest N releases (default: all \
         of them)",
    ),
    Opt::value(
        None,
        "--disk-low-water",
        "MIB",
        Some("1024"),
        "Pause handing out builds when the output path has this many MiB free or \
         fewer, or when a wheel does not fit; resume when twice as much is free \
         again (piwheels pauses at 1 GiB and waits for a monitor's WAKE)",
    ),
    Opt::value(
        None,
        "--web-base-url",
        "URL",
        None,
        "The public URL of the web site, used in canonical links, sitemaps and the JSON \
         API (default: http://<this host's name>/)",
    ),
    Opt::value(
        None,
        "--web-title",
        "TEXT",
        Some("piwheels"),
        "The site's name, shown in page titles and the header",
    ),
    Opt::value(
        None,
        "--web-issues-url",
        "URL",
        None,
        "An issue tracker (GitHub-style) to link from each project page for build \
         problems (default: no links)",
    ),
    Opt::value(
        None,
        "--status-queue",
        "ADDR",
        Some(defaults::STATUS_QUEUE),
        "The address of the queue used to report status to monitors; this is usually an \
         ipc address",
    ),
    Opt::value(
        None,
        "--control-queue",
        "ADDR",
        Some(defaults::CONTROL_QUEUE),
        "The address of the queue a monitor can use to control the master; this is \
         usually an ipc address",
    ),
    Opt::value(
        None,
        "--import-queue",
        "ADDR",
        Some(defaults::IMPORT_QUEUE),
        "The address of the queue used by piw-import, piw-add, piw-remove and \
         piw-rebuild; this should always be an ipc address",
    ),
    Opt::value(
        None,
        "--log-queue",
        "ADDR",
        Some(defaults::LOG_QUEUE),
        "The address of the queue used by piw-logger; this should always be an ipc \
         address",
    ),
    Opt::value(
        None,
        "--slave-queue",
        "ADDR",
        Some(defaults::SLAVE_QUEUE),
        "The address of the queue used to talk to the build slaves; this is usually a \
         tcp address",
    ),
    Opt::value(
        None,
        "--file-queue",
        "ADDR",
        Some(defaults::FILE_QUEUE),
        "The address of the queue used to transfer files from slaves; this is usually a \
         tcp address",
    ),
    Opt::value(
        None,
        "--web-queue",
        "ADDR",
        Some(defaults::WEB_QUEUE),
        concat!(
            "The address of the queue used to request web page updates",
            "; accepted for compatibility with piwheels configuration files, \
             but this master runs every task in one poll loop, so this queue has no socket"
        ),
    ),
    Opt::value(
        None,
        "--builds-queue",
        "ADDR",
        Some(defaults::BUILDS_QUEUE),
        concat!(
            "The address of the queue used to store pending builds",
            "; accepted for compatibility with piwheels configuration files, \
             but this master runs every task in one poll loop, so this queue has no socket"
        ),
    ),
    Opt::value(
        None,
        "--db-queue",
        "ADDR",
        Some(defaults::DB_QUEUE),
        concat!(
            "The address of the queue used to talk to the database server",
            "; accepted for compatibility with piwheels configuration files, \
             but this master runs every task in one poll loop, so this queue has no socket"
        ),
    ),
    Opt::value(
        None,
        "--fs-queue",
        "ADDR",
        Some(defaults::FS_QUEUE),
        concat!(
            "The address of the queue used to talk to the file-system server",
            "; accepted for compatibility with piwheels configuration files, \
             but this master runs every task in one poll loop, so this queue has no socket"
        ),
    ),
    Opt::value(
        None,
        "--stats-queue",
        "ADDR",
        Some(defaults::STATS_QUEUE),
        concat!(
            "The address of the queue used to send statistics to the collator task",
            "; accepted for compatibility with piwheels configuration files, \
             but this master runs every task in one poll loop, so this queue has no socket"
        ),
    ),
];

/// The `piw-master` program description.
pub const PROGRAM: Program = Program {
    name: "piw-master",
    description: "Runs the piwheels master: follows PyPI, hands build jobs to the slaves, receives their wheels, records everything in the database and writes the web site pip installs from. Run it on the database and file server, as an ordinary user who can write the output path, against a database set up with piw-initdb; keep build slaves on other machines.",
    opts: MASTER_OPTS,
    epilog: "Every long option can also be set in /etc/piwheels.conf, \
/usr/local/etc/piwheels.conf, ~/.config/piwheels/piwheels.conf or the file given \
with -c, as 'key = value' lines (e.g. 'output-path = /var/www/piwheels'); \
the command line beats the files, which beat the defaults.

The internal queues (--web-queue, --builds-queue, --db-queue, --fs-queue and \
--stats-queue) are accepted so piwheels configuration files keep working, but this \
master runs all of its tasks in one poll loop and opens no socket for them.

Run as root only in a container or test, with PIWHEELS_ALLOW_ROOT=1 set.",
};

/// An external queue: a socket the master binds and peers connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    Status,
    Control,
    Import,
    Log,
    Slave,
    File,
}

impl Queue {
    pub const ALL: [Queue; 6] = [
        Queue::Status,
        Queue::Control,
        Queue::Import,
        Queue::Log,
        Queue::Slave,
        Queue::File,
    ];

    /// The option (and config key) naming this queue.
    pub fn option(self) -> &'static str {
        match self {
            Queue::Status => "status-queue",
            Queue::Control => "control-queue",
            Queue::Import => "import-queue",
            Queue::Log => "log-queue",
            Queue::Slave => "slave-queue",
            Queue::File => "file-queue",
        }
    }
}

/// Internal queues of piwheels' threaded master, kept only as settings.
const INTERNAL_QUEUES: [(&str, &str); 5] = [
    ("web-queue", defaults::WEB_QUEUE),
    ("builds-queue", defaults::BUILDS_QUEUE),
    ("db-queue", defaults::DB_QUEUE),
    ("fs-queue", defaults::FS_QUEUE),
    ("stats-queue", defaults::STATS_QUEUE),
];

/// The master's validated settings.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    pub dsn: String,
    pub output_path: PathBuf,
    pub dev_mode: bool,
    pub pypi_xmlrpc: String,
    pub pypi_simple: String,
    pub pypi_json: String,
    /// `--allow-list`: build only what it names (None: everything).
    pub allow_list: Option<PathBuf>,
    /// `--newest-releases`.
    pub newest_releases: Option<usize>,
    /// `--disk-low-water`, in bytes.
    pub disk_low_water: u64,
    /// `--web-base-url`; `None`: `http://<host name>/`.
    pub web_base_url: Option<String>,
    pub web_title: String,
    /// `--web-issues-url`; empty for none.
    pub web_issues_url: String,
    pub status_queue: String,
    pub control_queue: String,
    pub import_queue: String,
    pub log_queue: String,
    pub slave_queue: String,
    pub file_queue: String,
    pub log: LogSettings,
    /// Internal queue options set to something other than their default:
    /// `(option, value)`, warned about at start-up.
    pub ignored_internal_queues: Vec<(String, String)>,
}

impl MasterConfig {
    /// Parses the process's arguments and config files.
    pub fn from_env() -> Result<Parsed, ConfigError> {
        PROGRAM.parse_env()
    }

    /// Validates parsed settings.
    pub fn from_settings(s: &Settings) -> Result<MasterConfig, ConfigError> {
        let bad =
            |key: &str, why: &str| ConfigError(format!("piw-master: {}: {why}", s.describe(key)));
        for key in ["dsn", "output-path"] {
            if s.value(key).trim().is_empty() {
                return Err(bad(key, "must not be empty"));
            }
        }
        let newest_releases = match s.get("newest-releases") {
            None => None,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    return Err(bad(
                        "newest-releases",
                        &format!("{v:?} is not a positive number"),
                    ));
                }
            },
        };
        let disk_low_water = match s.value("disk-low-water").parse::<u64>() {
            Ok(mib) if mib <= u64::MAX >> 21 => mib << 20,
            _ => {
                return Err(bad(
                    "disk-low-water",
                    &format!("{:?} is not a number of MiB", s.value("disk-low-water")),
                ));
            }
        };
        if newest_releases.is_some() && s.get("allow-list").is_none() {
            return Err(bad("newest-releases", "only applies with --allow-list"));
        }
        for key in ["web-base-url", "web-issues-url"] {
            if let Some(v) = s.get(key) {
                if !(v.is_empty() || v.starts_with("http://") || v.starts_with("https://")) {
                    return Err(bad(
                        key,
                        &format!("{v:?} is not an http:// or https:// URL"),
                    ));
                }
            }
        }
        for key in ["pypi-xmlrpc", "pypi-simple", "pypi-json"] {
            let v = s.value(key);
            if !(v.starts_with("http://") || v.starts_with("https://")) {
                return Err(bad(
                    key,
                    &format!("{v:?} is not an http:// or https:// URL"),
                ));
            }
        }
        for q in Queue::ALL {
            let v = s.value(q.option());
            check_external_address(&v).map_err(|why| bad(q.option(), &why))?;
        }
        let ignored_internal_queues = INTERNAL_QUEUES
            .iter()
            .filter(|(key, default)| s.value(key) != *default)
            .map(|(key, _)| (key.to_string(), s.value(key)))
            .collect();
        Ok(MasterConfig {
            dsn: s.value("dsn"),
            output_path: expand_user(&s.value("output-path")),
            dev_mode: s.flag("dev-mode"),
            pypi_xmlrpc: s.value("pypi-xmlrpc"),
            pypi_simple: s.value("pypi-simple"),
            pypi_json: s.value("pypi-json"),
            allow_list: s
                .get("allow-list")
                .filter(|v| !v.is_empty())
                .map(expand_user),
            newest_releases,
            disk_low_water,
            web_base_url: s
                .get("web-base-url")
                .filter(|v| !v.is_empty())
                .map(str::to_string),
            web_title: s.value("web-title"),
            web_issues_url: s.get("web-issues-url").unwrap_or_default().to_string(),
            status_queue: s.value("status-queue"),
            control_queue: s.value("control-queue"),
            import_queue: s.value("import-queue"),
            log_queue: s.value("log-queue"),
            slave_queue: s.value("slave-queue"),
            file_queue: s.value("file-queue"),
            log: LogSettings::from_settings(s),
            ignored_internal_queues,
        })
    }

    /// The address configured for an external queue.
    pub fn queue(&self, q: Queue) -> &str {
        match q {
            Queue::Status => &self.status_queue,
            Queue::Control => &self.control_queue,
            Queue::Import => &self.import_queue,
            Queue::Log => &self.log_queue,
            Queue::Slave => &self.slave_queue,
            Queue::File => &self.file_queue,
        }
    }

    /// A configuration for tests and the local demo: everything under `dir`
    /// (ipc sockets and output), with the given TCP ports for slaves.
    pub fn for_dir(dir: &std::path::Path, dsn: &str, slave_port: u16, file_port: u16) -> Self {
        let ipc = |name: &str| format!("ipc://{}", dir.join(name).display());
        MasterConfig {
            dsn: dsn.to_string(),
            output_path: dir.join("www"),
            dev_mode: false,
            pypi_xmlrpc: defaults::PYPI_XMLRPC.to_string(),
            pypi_simple: defaults::PYPI_SIMPLE.to_string(),
            pypi_json: defaults::PYPI_JSON.to_string(),
            allow_list: None,
            newest_releases: None,
            disk_low_water: 1 << 30,
            web_base_url: None,
            web_title: "piwheels".to_string(),
            web_issues_url: String::new(),
            status_queue: ipc("status"),
            control_queue: ipc("control"),
            import_queue: ipc("import"),
            log_queue: ipc("logger"),
            slave_queue: format!("tcp://127.0.0.1:{slave_port}"),
            file_queue: format!("tcp://127.0.0.1:{file_port}"),
            log: LogSettings {
                console_level: log::LevelFilter::Warn,
                log_file: None,
                debug: Vec::new(),
                dev_mode: false,
            },
            ignored_internal_queues: Vec::new(),
        }
    }
}

/// The external queues must be something a peer in another process can reach.
fn check_external_address(addr: &str) -> Result<(), String> {
    let Some((scheme, rest)) = addr.split_once("://") else {
        return Err(format!(
            "{addr:?} is not a ZeroMQ address such as tcp://*:5555"
        ));
    };
    match scheme {
        "tcp" => {
            let port = rest.rsplit_once(':').map(|(_, p)| p).unwrap_or("");
            if port.is_empty() || (port != "*" && port.parse::<u16>().is_err()) {
                return Err(format!("{addr:?} needs a port, e.g. tcp://*:5555"));
            }
            Ok(())
        }
        "ipc" if !rest.is_empty() => Ok(()),
        "ipc" => Err(format!(
            "{addr:?} needs a path, e.g. ipc:///tmp/piw-control"
        )),
        _ => Err(format!(
            "{addr:?}: only tcp:// and ipc:// addresses can be reached by other programs"
        )),
    }
}

/// The file-system path of an `ipc://` address, if it is one.
pub fn ipc_path(addr: &str) -> Option<PathBuf> {
    addr.strip_prefix("ipc://").map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn parse(args: &[&str]) -> Result<MasterConfig, ConfigError> {
        let args = args.iter().map(OsString::from).collect();
        match PROGRAM.parse(args, &[])? {
            Parsed::Run(s) => MasterConfig::from_settings(&s),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults_are_piwheels_defaults() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.dsn, "postgres:///piwheels");
        assert_eq!(c.output_path, PathBuf::from("/var/www"));
        assert_eq!(c.slave_queue, "tcp://*:5555");
        assert_eq!(c.file_queue, "tcp://*:5556");
        assert_eq!(c.status_queue, "ipc:///tmp/piw-status");
        assert_eq!(c.control_queue, "ipc:///tmp/piw-control");
        assert_eq!(c.import_queue, "ipc:///tmp/piw-import");
        assert_eq!(c.log_queue, "ipc:///tmp/piw-logger");
        assert_eq!(c.pypi_xmlrpc, "https://pypi.org/pypi");
        assert_eq!(c.pypi_simple, "https://pypi.org/simple");
        assert_eq!(c.pypi_json, "https://pypi.org/pypi");
        assert!(!c.dev_mode);
        assert!(c.ignored_internal_queues.is_empty());
    }

    #[test]
    fn help_lists_every_option() {
        let help = PROGRAM.help();
        for opt in [
            "-h, --help",
            "--version",
            "-c FILE, --configuration FILE",
            "-q, --quiet",
            "-v, --verbose",
            "-l FILE, --log-file FILE",
            "-d DSN, --dsn DSN",
            "-o PATH, --output-path PATH",
            "--dev-mode",
            "--debug TASK",
            "--pypi-xmlrpc URL",
            "--pypi-simple URL",
            "--pypi-json URL",
            "--allow-list FILE",
            "--newest-releases N",
            "--web-base-url URL",
            "--web-title TEXT",
            "--web-issues-url URL",
            "--status-queue ADDR",
            "--control-queue ADDR",
            "--import-queue ADDR",
            "--log-queue ADDR",
            "--slave-queue ADDR",
            "--file-queue ADDR",
            "--web-queue ADDR",
            "--builds-queue ADDR",
            "--db-queue ADDR",
            "--fs-queue ADDR",
            "--stats-queue ADDR",
        ] {
            assert!(help.contains(opt), "--help lacks {opt}:\n{help}");
        }
        assert!(help.contains("has no socket"));
    }

    #[test]
    fn internal_queues_are_accepted_and_remembered() {
        let c = parse(&[
            "--db-queue",
            "inproc://elsewhere",
            "--web-queue",
            "inproc://web",
        ])
        .unwrap();
        assert_eq!(
            c.ignored_internal_queues,
            vec![("db-queue".to_string(), "inproc://elsewhere".to_string())]
        );
    }

    #[test]
    fn external_queues_are_checked() {
        assert!(parse(&["--slave-queue", "tcp://0.0.0.0:6000"]).is_ok());
        assert!(parse(&["--control-queue", "ipc:///run/piwheels/control"]).is_ok());
        let e = parse(&["--slave-queue", "inproc://slaves"]).unwrap_err();
        assert!(e.0.contains("--slave-queue"), "{e}");
        let e = parse(&["--file-queue", "tcp://*"]).unwrap_err();
        assert!(e.0.contains("--file-queue"), "{e}");
        let e = parse(&["--status-queue", "nonsense"]).unwrap_err();
        assert!(
            e.0.contains("--status-queue (from the command line)"),
            "{e}"
        );
    }

    #[test]
    fn urls_are_checked() {
        let e = parse(&["--pypi-xmlrpc", "ftp://x"]).unwrap_err();
        assert!(e.0.contains("--pypi-xmlrpc"), "{e}");
        assert!(parse(&["--pypi-simple", "http://127.0.0.1:8080/simple"]).is_ok());
    }

    #[test]
    fn ipc_paths() {
        assert_eq!(
            ipc_path("ipc:///tmp/piw-control"),
            Some(PathBuf::from("/tmp/piw-control"))
        );
        assert_eq!(ipc_path("tcp://*:5555"), None);
    }
}
