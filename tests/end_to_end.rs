//! The whole farm on one machine: the real master, the real Rust piw-slave
//! building with real pip from a local index serving a tiny sdist, and real
//! pip installing the wheel from the site the master wrote.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{MasterProcess, TempDir};
use piwheels::testing::TestDb;
use piwheels::testing_sdist::{SdistSpec, SimpleIndex};

fn python_abi() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print('cp%d%d' % sys.version_info[:2])"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Python's own http.server serving `root` on a free port.
struct StaticServer {
    child: std::process::Child,
    port: u16,
}

impl StaticServer {
    fn start(root: &Path) -> StaticServer {
        use std::io::BufRead;
        let mut child = Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(root)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected banner {line:?}"));
        StaticServer { child, port }
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_real_slave_builds_a_wheel_that_pip_installs_from_the_site() {
    let abi = python_abi();
    let tdb = TestDb::new();
    tdb.admin()
        .execute("INSERT INTO build_abis (abi_tag) VALUES ($1)", &[&abi])
        .unwrap();
    let mut db = tdb.database();
    db.add_new_package("tiny-pkg", "", "A tiny package")
        .unwrap();
    db.add_new_package_version("tiny-pkg", "0.1", None, "")
        .unwrap();
    drop(db);

    let work = TempDir::new("e2e");
    let index = SimpleIndex::serve(&work.path().join("index")).unwrap();
    let spec = SdistSpec::new("tiny-pkg", "0.1");
    index.add(&spec, "python3").unwrap();

    // Dev mode: the secretary flushes after 3 s and an idle slave makes the
    // architect look again after 10 s. PyPI itself is out of reach here.
    let index_url = index.url();
    let master = MasterProcess::start_offline(tdb, Some(&index_url));
    let build = work.path().join("build");
    std::fs::create_dir_all(&build).unwrap();
    let slave_log = work.path().join("slave.log");
    let mut slave = Command::new(env!("CARGO_BIN_EXE_piw-slave"))
        .args(["-v", "-m", "127.0.0.1", "--slave-port"])
        .arg(master.slave_port.to_string())
        .arg("--file-port")
        .arg(master.file_port.to_string())
        .arg("-d")
        .arg(&build)
        .args(["-L", "e2e-slave", "--extra-index-url", ""])
        .env("PIWHEELS_ALLOW_ROOT", "1")
        .env("HOME", work.path())
        .env_remove("PIW_MASTER")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&slave_log).unwrap())
        .spawn()
        .unwrap();

    let www = master.dir.path().join("www");
    let wheel = www.join("simple/tiny-pkg").join(spec.wheel_filename());
    let page = www.join("simple/tiny-pkg/index.html");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(wheel.exists()
        && std::fs::read_to_string(&page).is_ok_and(|p| p.contains(&spec.wheel_filename())))
    {
        assert!(
            Instant::now() < deadline,
            "no wheel on the site;\nmaster:\n{}\nslave:\n{}",
            master.stderr(),
            std::fs::read_to_string(&slave_log).unwrap_or_default()
        );
        assert!(slave.try_wait().unwrap().is_none(), "the slave exited");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The build is in the database, with its log on the site and the
    // wheel's core metadata beside it.
    let row = master
        .db
        .admin()
        .query_one(
            "SELECT status, build_id FROM builds WHERE package = 'tiny-pkg'",
            &[],
        )
        .unwrap();
    assert!(row.get::<_, bool>(0));
    let build_id: i32 = row.get(1);
    let log = www.join(format!(
        "logs/{:04}/{:04}/{:04}.txt.gz",
        build_id / 100_000_000,
        build_id / 10_000 % 10_000,
        build_id % 10_000
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !log.exists() {
        assert!(
            Instant::now() < deadline,
            "no build log at {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        wheel
            .with_file_name(format!("{}.metadata", spec.wheel_filename()))
            .exists()
    );

    // pip installs it from the site, as a user of the farm would.
    let server = StaticServer::start(&www);
    let target = work.path().join("installed");
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--disable-pip-version-check",
        ])
        .arg("--index-url")
        .arg(format!("http://127.0.0.1:{}/simple/", server.port))
        .arg("--target")
        .arg(&target)
        .arg("tiny-pkg==0.1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pip install failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let check = Command::new("python3")
        .args(["-c", "import tiny_pkg; print(tiny_pkg.__version__)"])
        .env("PYTHONPATH", &target)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "0.1");

    // The slave shuts down cleanly on SIGTERM (BYE to the master).
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(slave.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while slave.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "slave did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}
