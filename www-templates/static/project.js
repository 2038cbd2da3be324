// Project page: fills in the download counts from /packages.json and folds
// long release tables (every row stays visible without JavaScript).
(function () {
  "use strict";
  const project = document.getElementById("package");
  if (!project) return;
  const name = project.dataset.package;

  const table = document.querySelector("table.releases.foldable");
  if (table) {
    table.classList.add("folded");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "show-all";
    button.textContent = "Show all " + table.tBodies[0].rows.length + " releases";
    button.addEventListener("click", () => {
      table.classList.remove("folded");
      button.remove();
    });
    table.after(button);
  }

  const all = document.getElementById("downloads-all");
  const recent = document.getElementById("downloads-30");
  fetch("/packages.json")
    .then((r) => {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    })
    .then((packages) => {
      const row = packages.find((p) => p[0] === name);
      all.textContent = row ? row[2].toLocaleString("en") : "0";
      recent.textContent = row ? row[1].toLocaleString("en") : "0";
    })
    .catch(() => {
      all.textContent = recent.textContent = "unavailable";
    });
})();
