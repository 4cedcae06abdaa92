// Live status on the project page: while a run or a round is in progress, poll the page's
// JSON feed every ~2 s and rewrite text (textContent only) and the charts' polyline points.
(function () {
  "use strict";
  const root = document.getElementById("dashboard");
  if (!root) return;
  const url = root.dataset.liveUrl;
  const POLL_MS = 2000;
  let formsTouched = false;
  document.addEventListener("input", function () { formsTouched = true; });

  function isLive() {
    return root.querySelector('[data-live="true"]') !== null;
  }

  function setText(scope, field, value) {
    const el = scope.querySelector('[data-field="' + field + '"]');
    if (el) el.textContent = value === null || value === undefined || value === "" ? "—" : String(value);
    return el;
  }

  function number(value) {
    if (value === null || value === undefined) return "—";
    const text = Number(value).toPrecision(4);
    if (text.indexOf("e") !== -1 || text.indexOf(".") === -1) return text;
    return text.replace(/0+$/, "").replace(/\.$/, "");
  }

  function drawChart(scope, key, chart) {
    const figure = scope.querySelector('[data-chart="' + key + '"]');
    if (!figure) return;
    chart.series.forEach(function (series, index) {
      const line = figure.querySelector('[data-series="' + index + '"]');
      if (line) line.setAttribute("points", series.points);
      const last = figure.querySelector('[data-last="' + index + '"]');
      if (last) last.textContent = number(series.last);
    });
    const empty = figure.querySelector("[data-empty]");
    // An SVG element has no .hidden property: set the attribute (app.css hides [hidden]).
    if (empty) empty.toggleAttribute("hidden", chart.series.some(function (series) { return series.points; }));
    setText(figure, "y_max", number(chart.y_max));
    setText(figure, "y_min", number(chart.y_min));
    setText(figure, "x_min", Math.round(chart.x_min));
    setText(figure, "x_max", Math.round(chart.x_max));
  }

  function updateRun(run) {
    const el = root.querySelector('[data-run="' + run.id + '"]');
    if (!el) return false;
    const wasLive = el.dataset.live === "true";
    const status = setText(el, "status", run.status);
    if (status) status.className = "status status-" + run.status;
    setText(el, "phase", run.phase);
    setText(el, "step", run.step);
    setText(el, "total_steps", run.total_steps || "?");
    setText(el, "eta", run.eta);
    const error = el.querySelector('[data-field="error"]');
    if (error) {
      error.textContent = run.error || "";
      error.hidden = !run.error;
    }
    Object.keys(run.charts).forEach(function (key) { drawChart(el, key, run.charts[key]); });
    el.dataset.live = run.live ? "true" : "false";
    if (!run.live) {
      const cancel = el.querySelector(".run-cancel");
      if (cancel) cancel.remove();
    }
    return wasLive && !run.live;
  }

  function updateRound(round) {
    const row = root.querySelector('[data-round="' + round.id + '"]');
    if (!row) return false;
    const wasLive = row.dataset.live === "true";
    const status = setText(row, "status", round.status);
    if (status) status.className = "status status-" + round.status;
    setText(row, "progress_done", round.progress_done);
    setText(row, "progress_total", round.progress_total);
    setText(row, "generations", round.generations);
    setText(row, "labels", round.labels);
    row.dataset.live = round.live ? "true" : "false";
    return wasLive && !round.live;
  }

  async function poll() {
    let data;
    try {
      const query = new URLSearchParams();
      root.querySelectorAll('[data-run][data-live="true"]').forEach(function (el) { query.append("run", el.dataset.run); });
      root.querySelectorAll('[data-round][data-live="true"]').forEach(function (el) { query.append("round", el.dataset.round); });
      const response = await fetch(url + "?" + query.toString(), { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!response.ok) return schedule();
      data = await response.json();
    } catch (e) {
      return schedule();  // a network blip: try again at the next tick
    }
    let finished = false;
    data.runs.forEach(function (run) { finished = updateRun(run) || finished; });
    data.rounds.forEach(function (round) { finished = updateRound(round) || finished; });
    if (finished) {
      // New checkpoints and rates are server-rendered: reload unless the admin is typing.
      if (!formsTouched) { window.location.reload(); return; }
      const notice = root.querySelector("[data-finished-notice]");
      if (notice) notice.hidden = false;
    }
    schedule();
  }

  function schedule() {
    if (isLive()) window.setTimeout(poll, POLL_MS);
  }

  schedule();
})();
