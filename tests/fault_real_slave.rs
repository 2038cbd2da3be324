//! A real `piw-slave` SIGKILLed in the middle of a real pip build: the
//! real master expires it after the busy timeout it announced, records
//! nothing, and once the exclusion window (its build timeout) has passed
//! hands the job to a second real slave, whose wheel lands intact.

mod common;
mod rel_support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{MasterProcess, TempDir};
use piwheels::testing::TestDb;
use piwheels::testing_sdist::{SdistSpec, SimpleIndex};
use rel_support::{count, wait_for};

fn python_abi() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print('cp%d%d' % sys.version_info[:2])"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn slave(master: &MasterProcess, dir: &Path, label: &str, extra: &[&str]) -> Child {
    let build = dir.join(label);
    std::fs::create_dir_all(&build).unwrap();
    Command::new(env!("CARGO_BIN_EXE_piw-slave"))
        .args(["-v", "-m", "127.0.0.1", "--slave-port"])
        .arg(master.slave_port.to_string())
        .arg("--file-port")
        .arg(master.file_port.to_string())
        .arg("-d")
        .arg(&build)
        .args(["-L", label, "--extra-index-url", ""])
        .args(extra)
        .env("PIWHEELS_ALLOW_ROOT", "1")
        .env("HOME", &build)
        .env("PIP_NO_CACHE_DIR", "1")
        .env_remove("PIW_MASTER")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{label}.log"))).unwrap())
        .spawn()
        .unwrap()
}

#[test]
fn a_real_slave_killed_mid_build_is_expired_and_another_builds_the_job() {
    let abi = python_abi();
    let tdb = TestDb::new();
    tdb.admin()
        .execute("INSERT INTO build_abis (abi_tag) VALUES ($1)", &[&abi])
        .unwrap();
    let mut db = tdb.database();
    db.add_new_package("tiny-pkg", "", "").unwrap();
    db.add_new_package_version("tiny-pkg", "0.1", None, "")
        .unwrap();
    drop(db);
    let work = TempDir::new("realslave");
    let index = SimpleIndex::serve(&work.path().join("index")).unwrap();
    // The first build hangs (and says where it runs) until it is killed.
    let pid_file = work.path().join("build.pid");
    let mut slow = SdistSpec::new("tiny-pkg", "0.1");
    slow.delay = Some(Duration::from_secs(60));
    slow.pid_file = Some(pid_file.clone());
    index.add(&slow, "python3").unwrap();
    let index_url = index.url();
    let master = MasterProcess::start_offline(tdb, Some(&index_url));
    // Busy timeout 3 s (expired at the next 10 s sweep); build timeout
    // 20 s, the exclusion window (and the slave's own limit on the build:
    // long enough to kill it first).
    let mut doomed = slave(
        &master,
        work.path(),
        "doomed",
        &["-t", "20s", "--master-timeout", "3s"],
    );
    wait_for(
        Duration::from_secs(40),
        || std::fs::read_to_string(&pid_file).is_ok_and(|s| !s.trim().is_empty()),
        || format!("the build never started; master:\n{}", master.stderr()),
    );
    doomed.kill().unwrap();
    doomed.wait().unwrap();
    // The orphaned build too, as the kernel's OOM killer would not.
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: killing the test's own grandchild.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }

    let simple = master.dir.path().join("www/simple");
    wait_for(
        Duration::from_secs(25),
        || {
            master
                .stderr()
                .contains("timed out while building tiny-pkg 0.1")
        },
        || {
            format!(
                "the dead slave was not expired; master:\n{}",
                master.stderr()
            )
        },
    );
    assert_eq!(count(&master.db, "builds"), 0);
    assert_eq!(common::transfer_temps(&simple), 0);

    // A quick build now; a second slave gets the job and finishes it.
    index
        .add(&SdistSpec::new("tiny-pkg", "0.1"), "python3")
        .unwrap();
    let mut rescuer = slave(&master, work.path(), "rescuer", &[]);
    let wheel = simple
        .join("tiny-pkg")
        .join(SdistSpec::new("tiny-pkg", "0.1").wheel_filename());
    wait_for(
        Duration::from_secs(60),
        || count(&master.db, "builds") == 1 && wheel.exists(),
        || {
            format!(
                "no rebuild; master:\n{}\nrescuer:\n{}",
                master.stderr(),
                std::fs::read_to_string(work.path().join("rescuer.log")).unwrap_or_default()
            )
        },
    );
    let ok: bool = master
        .db
        .admin()
        .query_one("SELECT status FROM builds", &[])
        .unwrap()
        .get(0);
    assert!(ok);
    assert_eq!(count(&master.db, "files"), 1);
    assert_eq!(common::transfer_temps(&simple), 0);
    let _ = rescuer.kill();
    let _ = rescuer.wait();
}
