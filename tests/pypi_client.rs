//! The PyPI client against the fake PyPI over real HTTP on loopback: the
//! wake-up socket, the scheme kept as given, our User-Agent, connection
//! reuse, descriptions (0.23's rules, the cache, the bounded queue),
//! timeouts and a prompt shutdown.

use std::time::{Duration, Instant};

use piwheels::fake_pypi::{FakePypi, Misbehaviour};
use piwheels::pypi::client::{ClientConfig, FetchError, Lookup, PypiClient, Reply};
use piwheels::pypi::{Action, USER_AGENT};

fn client(fake: &FakePypi, tweak: impl FnOnce(&mut ClientConfig)) -> PypiClient {
    let mut c = ClientConfig::new(&fake.xmlrpc_url(), &fake.json_url());
    c.timeout = Duration::from_secs(5);
    tweak(&mut c);
    PypiClient::new(c, &zmq::Context::new()).unwrap()
}

/// Waits in zmq::poll on the client's socket until `n` replies arrived.
fn replies(client: &mut PypiClient, n: usize) -> Vec<Reply> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "only {} of {n} replies arrived", out.len());
        let mut items = [client.poll_item()];
        zmq::poll(&mut items, left.as_millis() as i64).unwrap();
        if items[0].is_readable() {
            out.extend(client.on_ready());
        }
    }
    out
}

fn changelog(
    client: &mut PypiClient,
    since: i64,
) -> Result<Vec<piwheels::pypi::ChangelogEntry>, FetchError> {
    assert!(client.fetch_changelog(since));
    assert!(
        !client.fetch_changelog(since),
        "only one changelog request in flight"
    );
    match replies(client, 1).pop() {
        Some(Reply::Changelog {
            result, since: s, ..
        }) => {
            assert_eq!(s, since);
            result
        }
        other => panic!("{other:?}"),
    }
}

fn description(client: &mut PypiClient, package: &str) -> Result<String, FetchError> {
    match client.request_description(package) {
        Lookup::Cached(d) => return Ok(d),
        Lookup::Queued => {}
        other => panic!("{other:?}"),
    }
    match replies(client, 1).pop() {
        Some(Reply::Description { package: p, result }) => {
            assert_eq!(p, package);
            result
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn plain_http_stays_http_and_names_us() {
    let fake = FakePypi::start();
    assert!(fake.xmlrpc_url().starts_with("http://"));
    fake.add_release("Foo", "1.0");
    let mut c = client(&fake, |_| {});
    let got = changelog(&mut c, 0).unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].action, Action::AddFile { source: true });
    assert_eq!(&*got[2].name, "Foo");
    assert_eq!(fake.last_user_agent().as_deref(), Some(USER_AGENT));
    assert!(USER_AGENT.starts_with("piwheels-rs/"));
    assert_eq!(fake.sinces(), vec![0]);
    // since is exclusive
    let last = fake.last_serial();
    assert!(changelog(&mut c, last).unwrap().is_empty());
    c.shutdown();
}

#[test]
fn one_connection_is_reused() {
    let fake = FakePypi::start();
    fake.add_release("a", "1");
    fake.set_summary("a", Some("A"));
    let mut c = client(&fake, |_| {});
    for _ in 0..3 {
        changelog(&mut c, 0).unwrap();
    }
    assert_eq!(description(&mut c, "a").unwrap(), "A");
    assert_eq!(fake.connections(), 1);
    c.shutdown();
}

#[test]
fn descriptions_follow_0_23() {
    let fake = FakePypi::start();
    fake.add_release("short", "1");
    fake.set_summary("short", Some("Short and sweet"));
    fake.add_release("long", "1");
    fake.set_summary("long", Some(&"é".repeat(300)));
    fake.add_release("null", "1");
    let mut c = client(&fake, |_| {});
    assert_eq!(description(&mut c, "short").unwrap(), "Short and sweet");
    let long = description(&mut c, "long").unwrap();
    assert_eq!(long.chars().count(), 200);
    assert!(long.ends_with("é…"));
    assert_eq!(description(&mut c, "null").unwrap(), "");
    assert_eq!(description(&mut c, "missing"), Err(FetchError::Status(404)));
    fake.misbehave_json(Misbehaviour::Status(500));
    assert_eq!(description(&mut c, "other"), Err(FetchError::Status(500)));
    fake.misbehave_json(Misbehaviour::Garbage);
    assert!(matches!(
        description(&mut c, "another"),
        Err(FetchError::Malformed(_))
    ));
    // cached: no request
    let calls = fake.json_calls();
    assert_eq!(
        c.request_description("short"),
        Lookup::Cached("Short and sweet".into())
    );
    assert_eq!(fake.json_calls(), calls);
    // failures are not cached
    assert_eq!(c.request_description("missing"), Lookup::Queued);
    replies(&mut c, 1);
    c.shutdown();
}

#[test]
fn the_description_cache_holds_100() {
    let fake = FakePypi::start();
    let mut c = client(&fake, |_| {});
    for i in 0..101 {
        let name = format!("p{i}");
        fake.set_summary(&name, Some(&name));
        assert_eq!(description(&mut c, &name).unwrap(), name);
    }
    // p0 was the least recently used: gone; p100 is there
    assert!(matches!(c.request_description("p100"), Lookup::Cached(_)));
    assert_eq!(c.request_description("p0"), Lookup::Queued);
    replies(&mut c, 1);
    c.shutdown();
}

#[test]
fn the_description_queue_is_bounded_and_shutdown_is_prompt() {
    let fake = FakePypi::start();
    let mut c = client(&fake, |c| c.description_queue = 2);
    // Keep the worker busy on a stalled changelog request.
    fake.misbehave(Misbehaviour::Stall(Duration::from_secs(60)));
    assert!(c.fetch_changelog(0));
    assert_eq!(c.request_description("a"), Lookup::Queued);
    assert_eq!(c.request_description("a"), Lookup::Pending);
    assert_eq!(c.request_description("b"), Lookup::Queued);
    assert_eq!(c.request_description("c"), Lookup::Dropped);
    assert_eq!(c.descriptions_dropped(), 1);
    assert_eq!(c.descriptions_pending(), 2);
    // Wait until the request is really stalled at the server.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.changelog_calls() == 0 {
        assert!(
            Instant::now() < deadline,
            "the changelog request never arrived"
        );
        std::thread::yield_now();
    }
    let start = Instant::now();
    c.shutdown();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
}

#[test]
fn a_stalled_server_times_out() {
    let fake = FakePypi::start();
    let mut c = client(&fake, |c| c.timeout = Duration::from_millis(200));
    fake.misbehave(Misbehaviour::Stall(Duration::from_secs(30)));
    let start = Instant::now();
    let err = changelog(&mut c, 0).unwrap_err();
    assert!(matches!(err, FetchError::Timeout(_)), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(5));
    // and the next request works
    fake.add_release("x", "1");
    assert_eq!(changelog(&mut c, 0).unwrap().len(), 3);
    c.shutdown();
}

#[test]
fn the_total_limit_bounds_a_request() {
    // A server that trickles slower than the total limit is cut off.
    let fake = FakePypi::start();
    let mut c = client(&fake, |c| {
        c.timeout = Duration::from_secs(5);
        c.total_timeout = Duration::from_millis(300);
    });
    fake.misbehave(Misbehaviour::Stall(Duration::from_secs(30)));
    let err = changelog(&mut c, 0).unwrap_err();
    assert!(matches!(err, FetchError::Timeout(_)), "{err:?}");
    c.shutdown();
}

#[test]
fn nothing_listening_is_a_transport_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/pypi");
    let mut c = PypiClient::new(ClientConfig::new(&url, &url), &zmq::Context::new()).unwrap();
    let err = changelog(&mut c, 0).unwrap_err();
    assert!(matches!(err, FetchError::Transport(_)), "{err:?}");
    assert_eq!(description(&mut c, "x").unwrap_err().kind(), "transport");
    c.shutdown();
}
