//! The output disk fills up: a wheel that does not fit fails cleanly (no
//! temp file, the slave told DONE, no build recorded with it), the master
//! pauses (idle slaves get SLEEP) and says why, and resumes by itself when
//! space comes back; the same holds for free space falling under
//! `--disk-low-water`, and for free inodes falling under 1% of them. The
//! output path is a small tmpfs mounted by the test (skipped, with a
//! message, where mounting is not permitted).

mod common;
mod rel_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{MasterProcess, SimSlave, TempDir};
use piwheels::protocol::{SlaveReply, SlaveRequest};
use rel_support::{built, count, hello, seeded_db, stats, wheel};

const LONG: Duration = Duration::from_secs(40);
const MIB: usize = 1 << 20;

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, options: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A dev-mode master writing to a tmpfs mounted with `options`, with a
/// low-water mark of 1 MiB; None (and a message) where mounting is not
/// permitted. The first item unmounts the tmpfs, then removes its directory.
fn master_on_tmpfs(
    tag: &str,
    options: &str,
    db: piwheels::testing::TestDb,
) -> Option<((Tmpfs, TempDir), PathBuf, MasterProcess)> {
    let mnt_dir = TempDir::new(tag);
    let www = mnt_dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let Some(tmpfs) = Tmpfs::mount(&www, options) else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return None;
    };
    let master = MasterProcess::start_on(
        db,
        &[
            "--output-path",
            www.to_str().unwrap(),
            "--disk-low-water",
            "1",
            "--dev-mode",
        ],
    );
    Some(((tmpfs, mnt_dir), www, master))
}

/// Sends IDLE until the reply satisfies `want`.
fn idle_until(slave: &SimSlave, want: impl Fn(&SlaveReply) -> bool, what: &str) -> SlaveReply {
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let reply = slave.request(&SlaveRequest::Idle(stats()));
        if want(&reply) {
            return reply;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: last reply {reply:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_full_output_disk_pauses_builds_and_space_coming_back_resumes_them() {
    let Some((_tmpfs, www, master)) =
        master_on_tmpfs("tmpfs", "size=8m", seeded_db(&[("foo", "1.0")]))
    else {
        return;
    };
    let simple = www.join("simple");
    let filler = www.join("filler");
    std::fs::write(&filler, vec![1u8; 4 * MIB]).unwrap();
    let content: Vec<u8> = (0..5 * MIB as u32).map(|i| (i % 251) as u8).collect();
    let w = wheel("foo-1.0-py3-none-any.whl", &content);

    let slave = SimSlave::connect(&master);
    let SlaveReply::Ack { slave_id, .. } = slave.request(&hello(300, 2, "sim")) else {
        panic!("no ACK")
    };
    assert!(matches!(
        slave.idle_until_work(&stats(), LONG),
        SlaveReply::Build { .. }
    ));
    assert!(matches!(
        slave.request(&built(vec![w.clone()])),
        SlaveReply::Send { .. }
    ));
    // 5 MiB into 4 MiB: the master says DONE early, and DONE to SENT.
    slave.send_file(slave_id, &content, |_, _| {});
    assert_eq!(slave.request(&SlaveRequest::Sent), SlaveReply::Done);
    assert_eq!(common::transfer_temps(&simple), 0, "temp file left behind");
    assert!(!simple.join("foo").join(&w.filename).exists());
    assert_eq!(count(&master.db, "builds"), 0, "a build without its file");
    assert_eq!(count(&master.db, "files"), 0);
    let log = master.stderr();
    assert!(log.contains("No space left on device"), "{log}");
    assert!(log.contains("pausing builds"), "{log}");
    assert_eq!(
        slave.request(&SlaveRequest::Idle(stats())),
        SlaveReply::Sleep { paused: true }
    );

    // Space comes back: the master resumes and the build is done again.
    std::fs::remove_file(&filler).unwrap();
    idle_until(
        &slave,
        |r| matches!(r, SlaveReply::Build { .. }),
        "no build after space came back",
    );
    assert!(master.stderr().contains("resuming builds"));
    assert!(matches!(
        slave.request(&built(vec![w.clone()])),
        SlaveReply::Send { .. }
    ));
    slave.send_file(slave_id, &content, |_, _| {});
    assert_eq!(slave.request(&SlaveRequest::Sent), SlaveReply::Done);
    assert_eq!(
        std::fs::read(simple.join("foo").join(&w.filename)).unwrap(),
        content
    );
    assert_eq!(count(&master.db, "builds"), 1);
    assert_eq!(count(&master.db, "files"), 1);

    // Under the low-water mark (1 MiB) without a failure: paused again at
    // the next reading, resumed when the filler goes.
    let (_, free) = piwheels::info::disk_usage(&www).unwrap();
    let fill = free as usize - MIB / 2;
    std::fs::write(&filler, vec![1u8; fill]).unwrap();
    idle_until(
        &slave,
        |r| *r == SlaveReply::Sleep { paused: true },
        "not paused under the low-water mark",
    );
    assert!(
        master
            .stderr()
            .contains("output disk full: only 0 MiB free")
    );
    std::fs::remove_file(&filler).unwrap();
    idle_until(
        &slave,
        |r| *r == SlaveReply::Sleep { paused: false },
        "not resumed after the filler went",
    );
    assert_eq!(master.stderr().matches("resuming builds").count(), 2);
}

#[test]
fn running_out_of_inodes_pauses_builds_until_some_are_free() {
    // 2,000 inodes: the guard's mark is 1% of them, 20. Nothing to
    // build: an idle slave is told to sleep either way, and the reply says
    // whether the master is paused.
    let Some((_tmpfs, www, master)) =
        master_on_tmpfs("tmpfs-inodes", "size=64m,nr_inodes=2000", seeded_db(&[]))
    else {
        return;
    };
    let slave = SimSlave::connect(&master);
    assert!(matches!(
        slave.request(&hello(300, 2, "sim")),
        SlaveReply::Ack { .. }
    ));
    // Gigabytes would be free; inodes are not.
    let filler = www.join("filler");
    std::fs::create_dir(&filler).unwrap();
    let mut made = 0;
    loop {
        let (_, free) = piwheels::info::inode_usage(&www).unwrap().unwrap();
        if free <= 10 {
            break;
        }
        std::fs::write(filler.join(made.to_string()), "").unwrap();
        made += 1;
    }
    idle_until(
        &slave,
        |r| *r == SlaveReply::Sleep { paused: true },
        &format!("not paused when out of inodes: {}", master.stderr()),
    );
    let log = master.stderr();
    assert!(log.contains("output disk out of inodes: only"), "{log}");
    std::fs::remove_dir_all(&filler).unwrap();
    idle_until(
        &slave,
        |r| *r != SlaveReply::Sleep { paused: true },
        "not resumed after inodes came back",
    );
    assert!(
        master
            .stderr()
            .contains("inodes free again, resuming builds")
    );
}
