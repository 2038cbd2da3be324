// Package search: loads /packages.json ([name, downloads in 30 days,
// downloads ever] per package) and shows up to 100 names matching the
// regular expression typed, most downloaded first. ?q=... pre-fills it.
(function () {
  "use strict";
  const LIMIT = 100;
  const input = document.getElementById("search");
  const status = document.getElementById("status");
  const list = document.getElementById("packages");
  let packages = [];

  function show(query) {
    list.replaceChildren();
    if (query.length < 2) {
      status.textContent = "Type at least two characters to search " +
        packages.length.toLocaleString("en") + " packages.";
      return;
    }
    let pattern;
    try {
      pattern = new RegExp(query, "i");
    } catch (e) {
      status.textContent = "That is not a valid regular expression.";
      return;
    }
    const found = packages.filter((p) => pattern.test(p[0]));
    found.sort((a, b) => (b[1] - a[1]) || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const p of found.slice(0, LIMIT)) {
      const item = document.createElement("li");
      const link = document.createElement("a");
      link.href = "/project/" + encodeURIComponent(p[0]) + "/";
      link.textContent = p[0];
      item.append(link);
      list.append(item);
    }
    status.textContent = found.length > LIMIT
      ? "Showing the " + LIMIT + " most downloaded of " + found.length.toLocaleString("en") + " matches."
      : found.length + (found.length === 1 ? " match." : " matches.");
  }

  input.addEventListener("input", () => show(input.value));

  fetch("/packages.json")
    .then((r) => {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    })
    .then((data) => {
      packages = data;
      input.disabled = false;
      const q = new URLSearchParams(window.location.search).get("q");
      if (q) input.value = q;
      show(input.value);
      input.focus();
    })
    .catch(() => {
      status.textContent = "The package list could not be loaded.";
    });
})();
