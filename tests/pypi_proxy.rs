//! HTTPS_PROXY and NO_PROXY are honoured: through a CONNECT proxy on
//! loopback, and straight past it for the hosts NO_PROXY names.
//!
//! One test in its own binary: it sets the proxy variables, which the
//! client reads when it is created.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use piwheels::fake_pypi::FakePypi;
use piwheels::pypi::client::{ClientConfig, FetchError, PypiClient, Reply};

/// A CONNECT proxy that records each target and tunnels to it.
fn proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { break };
            let seen = seen2.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                        break;
                    }
                }
                let target = line.split(' ').nth(1).unwrap_or("").to_owned();
                seen.lock().unwrap().push(line.trim().to_owned());
                let mut client = client;
                let Ok(upstream) = TcpStream::connect(&target) else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                    return;
                };
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .unwrap();
                let mut up_read = upstream.try_clone().unwrap();
                let mut down_write = client.try_clone().unwrap();
                let t = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut up_read, &mut down_write);
                    let _ = down_write.shutdown(std::net::Shutdown::Write);
                });
                let mut upstream = upstream;
                let _ = std::io::copy(&mut reader, &mut upstream);
                let _ = upstream.shutdown(std::net::Shutdown::Write);
                let _ = t.join();
            });
        }
    });
    (port, seen)
}

fn changelog(url: &str) -> Result<usize, FetchError> {
    let mut client = PypiClient::new(ClientConfig::new(url, url), &zmq::Context::new()).unwrap();
    assert!(client.fetch_changelog(0));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no reply");
        let mut items = [client.poll_item()];
        zmq::poll(&mut items, left.as_millis() as i64).unwrap();
        for reply in client.on_ready() {
            if let Reply::Changelog { result, .. } = reply {
                client.shutdown();
                return result.map(|v| v.len());
            }
        }
    }
}

#[test]
fn https_proxy_and_no_proxy() {
    let fake = FakePypi::start();
    fake.add_release("proxied", "1.0");
    let (port, seen) = proxy();
    // SAFETY: this binary's only test; nothing else reads the environment
    // concurrently.
    unsafe {
        for v in [
            "ALL_PROXY",
            "all_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "https_proxy",
            "NO_PROXY",
            "no_proxy",
        ] {
            std::env::remove_var(v);
        }
        std::env::set_var("HTTPS_PROXY", format!("http://127.0.0.1:{port}"));
    }
    assert_eq!(changelog(&fake.xmlrpc_url()), Ok(3));
    let target = format!("CONNECT 127.0.0.1:{} HTTP/1.1", fake.port());
    assert_eq!(*seen.lock().unwrap(), vec![target]);

    unsafe { std::env::set_var("NO_PROXY", "localhost,127.0.0.1") };
    assert_eq!(changelog(&fake.xmlrpc_url()), Ok(3));
    assert_eq!(seen.lock().unwrap().len(), 1, "NO_PROXY hosts go direct");
    assert_eq!(fake.changelog_calls(), 2);
}
