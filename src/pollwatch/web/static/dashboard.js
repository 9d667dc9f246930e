/* pollwatch dashboard: sortable tables, the region filter and Vega chart embedding.
   Plain JavaScript, no external resources. */
"use strict";

function pollwatchCellValue(row, index, kind) {
  var cell = row.cells[index];
  if (!cell) return kind === "number" ? NaN : "";
  var raw = cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent;
  if (kind === "number") {
    var n = parseFloat(String(raw).replace(/[,%\s]/g, ""));
    return isNaN(n) ? NaN : n;
  }
  return String(raw).trim().toLowerCase();
}

function pollwatchSortTable(table, th) {
  var index = Array.prototype.indexOf.call(th.parentNode.children, th);
  var kind = th.getAttribute("data-sort") || "text";
  var ascending = !th.classList.contains("asc");
  Array.prototype.forEach.call(th.parentNode.children, function (h) {
    h.classList.remove("asc", "desc");
  });
  th.classList.add(ascending ? "asc" : "desc");
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = pollwatchCellValue(a, index, kind), y = pollwatchCellValue(b, index, kind);
    if (kind === "number") {
      if (isNaN(x) && isNaN(y)) return 0;
      if (isNaN(x)) return 1;   /* missing values last either way */
      if (isNaN(y)) return -1;
      return ascending ? x - y : y - x;
    }
    var c = x.localeCompare(y);
    return ascending ? c : -c;
  });
  rows.forEach(function (r) { body.appendChild(r); });
}

function pollwatchFilterRegions(input) {
  var needle = input.value.trim().toLowerCase();
  var table = document.getElementById("regions");
  if (!table) return;
  Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
    var name = row.cells[0] ? row.cells[0].textContent.toLowerCase() : "";
    row.style.display = !needle || name.indexOf(needle) !== -1 ? "" : "none";
  });
}

function pollwatchEmbedCharts() {
  var node = document.getElementById("chart-specs");
  if (!node || typeof vegaEmbed !== "function") return;
  var specs = JSON.parse(node.textContent);
  Object.keys(specs).forEach(function (id) {
    var target = document.getElementById(id);
    if (target) {
      vegaEmbed(target, specs[id], {actions: false, renderer: "svg"}).catch(function (e) {
        target.textContent = "chart failed: " + e;
      });
    }
  });
}

/* The import job page (/jobs/{id}): poll the job until it ends, then open the election or
   show the error. */
function pollwatchFollowJob(node) {
  var url = node.getAttribute("data-poll");
  var bar = document.getElementById("job-progress");
  var stage = document.getElementById("job-stage");
  function show(job) {
    bar.value = job.progress;
    stage.textContent = job.stage;
    node.setAttribute("data-state", job.state);
    if (job.state === "done") {
      window.location.assign(job.result.url);
    } else if (job.state === "failed") {
      var error = document.createElement("p");
      error.id = "error";
      error.className = "error";
      error.setAttribute("role", "alert");
      error.textContent = job.error;
      var note = document.getElementById("job-result");
      if (note) note.remove();
      node.appendChild(error);
    } else {
      window.setTimeout(poll, 500);
    }
  }
  function poll() {
    fetch(url, {headers: {"Accept": "application/json"}})
      .then(function (response) { return response.json(); })
      .then(show)
      .catch(function () { window.setTimeout(poll, 2000); });
  }
  var state = node.getAttribute("data-state");
  if (state === "queued" || state === "running") poll();
}

document.addEventListener("DOMContentLoaded", function () {
  var job = document.getElementById("job");
  if (job) pollwatchFollowJob(job);
  document.querySelectorAll("table.sortable th[data-sort]").forEach(function (th) {
    th.addEventListener("click", function () { pollwatchSortTable(th.closest("table"), th); });
  });
  var filter = document.getElementById("region-filter");
  if (filter) {
    filter.addEventListener("input", function () { pollwatchFilterRegions(filter); });
  }
});
