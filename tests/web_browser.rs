//! A real browser: headless Chromium (Debian's package, installed by the
//! test if missing) loads the homepage, a project page and packages.html
//! from the site the web task wrote, the search box finds a package, and a
//! screenshot of each page is saved under `<target>/web-artifacts/`. No
//! page may report an error: uncaught exceptions, console errors, failed
//! loads (404s) and JavaScript dialogs (an injected `alert`) all fail the
//! test. The browser is driven over the DevTools protocol and every wait
//! happens inside the page (promises), never as a sleep in the test.

mod web_support;

use piwheels::testing::TestDb;
use serde_json::Value;
use web_support::browser::Browser;
use web_support::*;

#[test]
fn chromium_loads_the_pages_and_the_search_finds_a_package() {
    test_dsn();
    let tdb = TestDb::new();
    let mut db = seed(&tdb);
    let out = scratch("browser");
    let mut web = web(&out);
    write_site(&mut web, &mut db, &out);
    let server = Server::start(&out);
    let artifacts = target_dir().join("web-artifacts");
    let mut b = Browser::launch(&scratch("chromium-profile"));

    b.goto(&server.url("/"));
    let stats = b.eval("document.querySelector('.stats').innerText");
    assert!(stats.as_str().unwrap().contains("1,234,567"), "{stats}");
    b.screenshot(&artifacts.join("home.png"));

    b.goto(&server.url("/project/foo/"));
    // The download counts come from packages.json once it is fetched.
    let downloads = b.wait_for(
        "document.getElementById('downloads-all').textContent !== '\\u2026'",
        "document.getElementById('downloads-all').textContent",
    );
    assert_eq!(downloads, Value::from("0"));
    let rows = b.eval("document.querySelectorAll('table.releases tbody tr').length");
    assert_eq!(rows, Value::from(6));
    let title = b.eval("document.title");
    assert_eq!(title, Value::from("FOO_ | Example wheels"));
    b.screenshot(&artifacts.join("project.png"));

    // Markup in a package's name and description stays text.
    b.goto(&server.url("/project/a%3Cb%3E%26%22c%27/"));
    let h1 = b.eval("document.querySelector('h1').textContent");
    assert_eq!(h1, Value::from("A<B>&\"C'"));
    let scripts = b.eval("document.scripts.length");
    assert_eq!(scripts, Value::from(1), "only project.js runs");

    b.goto(&server.url("/packages.html"));
    b.wait_for("!document.getElementById('search').disabled", "true");
    b.eval("document.getElementById('search').focus(); true");
    b.type_text("fo");
    let found = b.wait_for(
        "document.querySelectorAll('#packages li').length > 0",
        "Array.from(document.querySelectorAll('#packages a')).map(a => [a.textContent, a.getAttribute('href')])",
    );
    assert_eq!(found, serde_json::json!([["foo", "/project/foo/"]]));
    let status = b.eval("document.getElementById('status').textContent");
    assert_eq!(status, Value::from("1 match."));
    b.screenshot(&artifacts.join("packages.png"));

    // The search result's link leads to a page that loads.
    let href = b.eval("document.querySelector('#packages a').href");
    b.goto(href.as_str().unwrap());
    let h1 = b.eval("document.querySelector('h1').textContent");
    assert_eq!(h1, Value::from("FOO_"));

    let errors = b.errors();
    assert!(errors.is_empty(), "the pages reported errors: {errors:#?}");
    let dialogs: Vec<&Value> = b
        .events
        .iter()
        .filter(|e| e["method"] == "Page.javascriptDialogOpening")
        .collect();
    assert!(dialogs.is_empty(), "a script ran: {dialogs:?}");
    for png in ["home.png", "project.png", "packages.png"] {
        let data = std::fs::read(artifacts.join(png)).unwrap();
        assert!(
            data.starts_with(b"\x89PNG\r\n\x1a\n") && data.len() > 5000,
            "{png}"
        );
    }
}
