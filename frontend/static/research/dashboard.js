// The researcher dashboard: every panel polls its JSON endpoint and updates its chart or table in place
// (Chart.js from the npm registry, copied to /static/vendor/ at setup).
"use strict";
(function () {
  const root = document.getElementById("dashboard");
  const base = root.dataset.api;
  const api = window.synsightApi;
  const FAST = 5000, SLOW = 15000;
  let windowName = "hour";
  const fmt = (v, digits = 1) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
  const pct = (v) => (v === null || v === undefined ? "–" : `${Math.round(v * 100)}%`);
  // Precision to a tenth of a percent, rounded down: 99.92% must not read as 100% (ImageNet's bar is 99.7%).
  const precisionPct = (v) => (v === null || v === undefined ? "–" : `${(Math.floor(v * 1000) / 10).toFixed(1)}%`);
  function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }
  function minutes(m) {
    if (m === null || m === undefined) return "–";
    if (m < 90) return `${Math.round(m)} min`;
    if (m < 48 * 60) return `${(m / 60).toFixed(1)} h`;
    return `${(m / 1440).toFixed(1)} days`;
  }
  const FLAG_MEANING = {
    done: "Reached the target of accepted images.",
    starved: "No open candidates left: import more images for this synset.",
    stuck: "Open candidates, but no answer for a while (since the campaign started or resumed) while other synsets get answers.",
    short: "Fewer open candidates left than accepted images still needed, even if every one is accepted.",
    overconfident: "The precision audit's 95% interval lies below the model's estimate for the images it judged: "
      + "the posteriors promise more than your verdicts found. Reject the wrong ones on the synset's page, add gold "
      + "among its look-alikes, or judge more.",
  };
  const LOOK_ALIKES_MEANING = "Share of this synset's negatives that fool workers more than the campaign's typical "
    + "negative (estimated at the last refit). Agreement on such images proves less, so they take more votes; "
    + "a high share suggests gold items among the look-alikes, or a clearer gloss.";
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;

  function makeChart(id, config) {
    const canvas = document.getElementById(id);
    return { canvas, chart: new Chart(canvas, config) };
  }
  function loaded(c, points) { c.canvas.dataset.loaded = String(points); c.canvas.dataset.updated = String(Date.now()); }

  const throughput = makeChart("throughput-chart", {
    type: "line",
    data: { labels: [], datasets: [
      { label: "answers / min", data: [], borderColor: "#2457c5", backgroundColor: "#2457c533", fill: true, yAxisID: "y", tension: 0.2, pointRadius: 0 },
      { label: "HITs / hour", data: [], borderColor: "#a6540a", yAxisID: "y1", tension: 0.2, pointRadius: 0 },
      // Workers on a scale of their own: beside hundreds of HITs an hour, a handful of workers drew a flat line.
      { label: "active workers", data: [], borderColor: "#2e7d32", yAxisID: "y2", stepped: true, pointRadius: 0 },
    ] },
    options: { interaction: { mode: "index", intersect: false }, scales: {
      y: { beginAtZero: true, title: { display: true, text: "answers / min" } },
      y1: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false }, title: { display: true, text: "HITs / hour" } },
      y2: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false }, ticks: { precision: 0 }, title: { display: true, text: "workers" } } } },
  });
  const progressChart = makeChart("progress-chart", {
    type: "bar",
    data: { labels: [], datasets: [
      // Accepted and still to accept first, so that every bar below its target ends at the target.
      { label: "accepted", data: [], backgroundColor: "#2e7d32" },
      { label: "still to accept", data: [], backgroundColor: "#dde3ea" },
      { label: "rejected", data: [], backgroundColor: "#b3261e" },
      { label: "unresolved", data: [], backgroundColor: "#f2a900" },
    ] },
    options: { indexAxis: "y", scales: { x: { stacked: true, beginAtZero: true }, y: { stacked: true } } },
  });
  const qualityChart = makeChart("quality-chart", {
    type: "bar",
    data: { labels: [], datasets: [
      { label: "workers by gold accuracy", data: [], backgroundColor: "#2457c5" },
      { label: "workers by agreement", data: [], backgroundColor: "#7aa0e8" },
    ] },
    options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  const payChart = makeChart("pay-chart", {
    type: "bar",
    data: { labels: [], datasets: [
      { label: "effective hourly pay", data: [], backgroundColor: [] },
      { type: "line", label: "pay floor", data: [], borderColor: "#b3261e", pointRadius: 0, borderDash: [6, 4] },
    ] },
    // The bars are green or red by worker: the legend says which is which rather than taking one bar's colour.
    options: { scales: { y: { beginAtZero: true } }, plugins: { legend: { labels: { generateLabels(chart) {
      const items = Chart.defaults.plugins.legend.labels.generateLabels(chart);
      Object.assign(items[0], { text: "effective hourly pay (red: below the floor)", fillStyle: "#2e7d32", strokeStyle: "#2e7d32" });
      return items;
    } } } } },
  });

  function label(iso, bucketSeconds) {
    const d = new Date(iso);
    if (bucketSeconds < 3600) return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (bucketSeconds < 86400 && windowName === "day") return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    return d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit" });
  }

  // When the figures stop updating (signed out elsewhere, the server stopped), say so next to "updated": the
  // last figures stay on screen and would otherwise pass for live ones.
  let lastUpdated = null;
  function notUpdated(reason) {
    const since = lastUpdated ? lastUpdated.toLocaleTimeString() : "the page opened";
    const line = document.getElementById("refreshed");
    line.textContent = `· not updated since ${since}: ${reason}`;
    line.classList.add("warn");
  }
  async function refreshSummary() {
    let r;
    try {
      r = await api.request("GET", `${base}dashboard/summary/`);
    } catch (error) {
      notUpdated("the server does not answer");
      return;
    }
    if (!r.ok) {
      notUpdated(r.status === 401 || r.status === 403 ? "you are signed out: sign in again to see live figures"
        : `the server answered ${r.status}`);
      return;
    }
    for (const [key, value] of Object.entries(r.data)) {
      root.querySelectorAll(`[data-stat="${key}"]`).forEach((node) => { node.textContent = typeof value === "number" ? String(value) : value; });
    }
    document.getElementById("campaign-state").textContent = r.data.state;
    document.getElementById("campaign-state").className = `state state-${r.data.state}`;
    // Only the changes the campaign's state allows are offered.
    document.querySelectorAll("[data-state]").forEach((button) => {
      button.disabled = !r.data.next_states.includes(button.dataset.state);
    });
    document.getElementById("start").textContent = r.data.state === "draft" ? "Start" : "Resume";
    document.getElementById("no-gold").hidden = r.data.gold_items > 0 || r.data.state === "finished";
    document.getElementById("policy-panel").hidden = r.data.state === "finished";
    const boxes = document.getElementById("boxes-panel");
    boxes.hidden = !r.data.boxes;
    for (const [key, value] of Object.entries(r.data.boxes || {})) {
      boxes.querySelectorAll(`[data-box="${key}"]`).forEach((node) => { node.textContent = String(value); });
    }
    lastUpdated = new Date();
    document.getElementById("refreshed").textContent = `· updated ${lastUpdated.toLocaleTimeString()}`;
    document.getElementById("refreshed").classList.remove("warn");
  }
  async function refreshThroughput() {
    const r = await api.request("GET", `${base}dashboard/throughput/?window=${windowName}`);
    if (!r.ok) return;
    const d = r.data, c = throughput.chart;
    c.data.labels = d.labels.map((l) => label(l, d.bucket_seconds));
    c.data.datasets[0].data = d.answers_per_minute;
    c.data.datasets[1].data = d.hits_per_hour;
    c.data.datasets[2].data = d.active_workers;
    c.update("none");
    loaded(throughput, d.labels.length);
    throughput.canvas.dataset.answers = String(d.totals.answers);
  }

  // The server filters, sorts and pages the synsets (a campaign may have tens of thousands); the table shows
  // the first PROGRESS_ROWS of the chosen order, the chart its first 25.
  const PROGRESS_ROWS = 100;
  let progressData = null, progressAsked = 0, progressOffset = 0;
  function renderProgress() {
    if (!progressData) return;
    const query = progressData.query;  // the one this answer is for (the field may have moved on)
    const list = progressData.synsets;
    const top = list.slice(0, 25);
    const c = progressChart.chart;
    c.data.labels = top.map((s) => s.name);
    c.data.datasets[0].data = top.map((s) => s.accepted);
    c.data.datasets[1].data = top.map((s) => Math.max(0, s.target - s.accepted));
    c.data.datasets[2].data = top.map((s) => s.rejected);
    c.data.datasets[3].data = top.map((s) => s.unresolved);
    progressChart.canvas.parentElement.style.height = `${Math.max(160, top.length * 22 + 60)}px`;
    c.update("none");
    loaded(progressChart, top.length);
    const tbody = document.querySelector("#progress-table tbody");
    tbody.replaceChildren(...list.map((s) => {
      const tr = el("tr");
      tr.dataset.wnid = s.wnid;
      const name = el("td");
      const a = el("a", s.name);
      a.href = `/research/${root.dataset.campaign}/synsets/${s.wnid}/`;
      name.appendChild(a);
      tr.appendChild(name);
      for (const v of [s.candidates, s.open, s.accepted, s.rejected, s.unresolved]) tr.appendChild(el("td", String(v), "num"));
      tr.appendChild(el("td", fmt(s.votes_per_decision, 2), "num"));
      tr.appendChild(el("td", precisionPct(s.precision), "num"));
      const audit = s.audit;
      const audited = el("td", audit ? `${audit.correct}/${audit.judged}` : "–", "num");
      audited.title = audit
        ? `Sampled precision ${precisionPct(audit.precision)} (95% interval ${precisionPct(audit.wilson95[0])}–${precisionPct(audit.wilson95[1])}); the model expected ${precisionPct(audit.model_estimate)} of the same images.`
        : "No accepted image judged yet: the synset's page draws a sample to judge.";
      tr.appendChild(audited);
      const lookAlikes = el("td", s.look_alikes === null || s.look_alikes === undefined ? "–" : `${Math.round(s.look_alikes * 100)}%`, "num");
      lookAlikes.title = LOOK_ALIKES_MEANING;
      tr.appendChild(lookAlikes);
      tr.appendChild(el("td", s.answers_needed === null ? "–" : String(s.answers_needed), "num"));
      const flags = el("td");
      for (const f of ["done", "starved", "stuck", "short", "overconfident"]) {
        if (!s[f]) continue;
        const badge = el("span", f, `badge flag-${f}`);
        badge.title = FLAG_MEANING[f];
        flags.appendChild(badge);
      }
      tr.appendChild(flags);
      return tr;
    }));
    const t = progressData.totals, matched = progressData.matched, shown = list.length, from = progressData.offset;
    // Rows from+1 to from+shown of the order chosen; the pager steps through the rest, 100 at a time.
    const range = shown && matched > shown ? `rows ${from + 1}–${from + shown} of ${matched}` : "";
    document.getElementById("progress-shown").textContent = query
      ? `${matched} of ${t.synsets} synsets match “${query}”${range ? `; ${range} shown` : ""}.`
      : (range ? `Synsets ${range.slice(5)} shown; find one by name or wnid above.` : "");
    document.getElementById("progress-pager").hidden = matched <= PROGRESS_ROWS;
    document.getElementById("progress-previous").disabled = from === 0;
    document.getElementById("progress-next").disabled = from + shown >= matched;
    document.getElementById("progress-note").textContent = `${t.done} of ${t.synsets} synsets done · ${t.starved} starved · ${t.stuck} stuck`
      + (t.overconfident ? ` · ${t.overconfident} over-confident by the audit` : "");
    document.getElementById("all-done").hidden = !(t.synsets > 0 && t.done === t.synsets && document.getElementById("campaign-state").textContent !== "finished");
    // The note is on screen, not in a tooltip: why no time can be told is what the researcher must act on.
    root.querySelectorAll('[data-stat="eta"]').forEach((n) => { n.textContent = minutes(t.eta_minutes); });
    document.getElementById("eta-note").textContent = t.eta_minutes === null ? `time to finish: ${t.eta_note}`
      : t.eta_minutes === 0 ? t.eta_note : `to finish, ${t.eta_note}`;
  }
  async function refreshProgress() {
    const params = new URLSearchParams({
      sort: document.getElementById("progress-sort").value,
      q: document.getElementById("progress-filter").value.trim(),
      limit: String(PROGRESS_ROWS),
      offset: String(progressOffset),
    });
    const asked = ++progressAsked;
    const r = await api.request("GET", `${base}dashboard/progress/?${params}`);
    if (!r.ok || asked !== progressAsked) return;  // a later question (the researcher typed on) answers instead
    if (progressOffset && progressOffset >= r.data.matched) {  // fewer rows than before: back to the last page
      progressOffset = Math.max(0, Math.floor((r.data.matched - 1) / PROGRESS_ROWS) * PROGRESS_ROWS);
      refreshProgress();
      return;
    }
    progressData = { ...r.data, query: params.get("q"), offset: progressOffset };
    renderProgress();
  }
  let typing = null;
  const firstPage = () => { progressOffset = 0; refreshProgress(); };
  document.getElementById("progress-sort").addEventListener("change", firstPage);
  document.getElementById("progress-filter").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(firstPage, 250);
  });
  document.getElementById("progress-previous").addEventListener("click", () => {
    progressOffset = Math.max(0, progressOffset - PROGRESS_ROWS);
    refreshProgress();
  });
  document.getElementById("progress-next").addEventListener("click", () => {
    progressOffset += PROGRESS_ROWS;
    refreshProgress();
  });

  async function refreshTree() {
    const panel = document.getElementById("tree-panel");
    if (!panel.open) return;
    const r = await api.request("GET", `${base}dashboard/tree/`);
    if (!r.ok) return;
    const nodes = new Map(r.data.nodes.map((n) => [n.wnid, { ...n, children: [] }]));
    const roots = [];
    for (const n of nodes.values()) {
      const parent = n.parents.find((p) => nodes.has(p));
      if (parent) nodes.get(parent).children.push(n); else roots.push(n);
    }
    function item(n) {
      // Collapse chains of single-child ancestors so the tree starts where the campaign branches.
      while (!n.member && n.children.length === 1) n = n.children[0];
      const li = el("li");
      const text = `${n.name} — ${n.accepted} accepted of ${n.target} (${pct(n.progress)}) · ${n.synsets} synset${n.synsets === 1 ? "" : "s"}`;
      if (!n.children.length) { li.textContent = text; return li; }
      const d = el("details"); const s = el("summary", text);
      d.appendChild(s);
      const ul = el("ul");
      n.children.sort((a, b) => a.name.localeCompare(b.name)).forEach((c) => ul.appendChild(item(c)));
      d.appendChild(ul);
      li.appendChild(d);
      return li;
    }
    document.getElementById("tree").replaceChildren(...roots.map(item));
  }
  document.getElementById("tree-panel").addEventListener("toggle", refreshTree);

  async function refreshQuality() {
    const r = await api.request("GET", `${base}dashboard/quality/?synsets=false`);  // per synset: progress
    if (!r.ok) return;
    const d = r.data, c = qualityChart.chart;
    c.data.labels = d.bins.slice(0, -1).map((b, i) => `${Math.round(b * 100)}–${Math.round(d.bins[i + 1] * 100)}%`);
    c.data.datasets[0].data = d.gold_accuracy_histogram;
    c.data.datasets[1].data = d.agreement_histogram;
    c.update("none");
    loaded(qualityChart, d.workers);
    document.getElementById("precision").textContent = precisionPct(d.precision);
    // What the estimate rests on: 99.9% of one label and of ten thousand must not read alike.
    const n = d.precision_labels;
    document.getElementById("precision-basis").textContent = n ? ` (mean posterior of ${n} consensus label${n === 1 ? "" : "s"})` : "";
    // The sampled precision: researchers' own verdicts on accepted images drawn at random (synset pages).
    const a = d.audit;
    document.getElementById("audited-precision").textContent = a.judged ? precisionPct(a.precision) : "–";
    document.getElementById("audit-basis").textContent = a.judged
      ? ` (${a.correct} of ${a.judged} judged right; 95% interval ${precisionPct(a.wilson95[0])}–${precisionPct(a.wilson95[1])}; the model expected ${precisionPct(a.model_estimate)} of them${a.model_estimate > a.wilson95[1] ? ", above the interval: over-confident" : ""})`
      : " (no accepted image judged yet: judge a sample on a synset's page)";
    document.getElementById("gold-accuracy").textContent = pct(d.gold_accuracy);
    document.getElementById("agreement").textContent = pct(d.agreement_mean);
    const list = document.getElementById("blocked");
    list.replaceChildren(...(d.blocked.length ? d.blocked.map((b) => el("li", `${b.username} — ${b.reason || "blocked"}${b.gold_accuracy !== null ? ` (gold ${pct(b.gold_accuracy)})` : ""}`)) : [el("li", "None.", "muted")]));
  }

  async function refreshCost(force = false) {
    const r = await api.request("GET", `${base}dashboard/cost/`);
    if (!r.ok) return;
    const d = r.data;
    document.getElementById("spent").textContent = d.spent;
    document.getElementById("cost-per-accepted").textContent = d.cost_per_accepted ?? "–";
    document.getElementById("median-pay").textContent = d.median_hourly_pay ?? "–";
    document.getElementById("pay-floor").textContent = d.pay_floor_per_hour;
    const paid = d.workers.filter((w) => w.hourly_pay !== null).slice(0, 60);
    const c = payChart.chart;
    c.data.labels = paid.map((w) => w.username);
    c.data.datasets[0].data = paid.map((w) => Number(w.hourly_pay));
    c.data.datasets[0].backgroundColor = paid.map((w) => (w.below_floor ? "#b3261e" : "#2e7d32"));
    c.data.datasets[1].data = paid.map(() => Number(d.pay_floor_per_hour));
    c.update("none");
    loaded(payChart, paid.length);
    renderWorkers(d.workers, force);
  }

  function renderWorkers(workers, force) {
    const tbody = document.querySelector("#workers-table tbody");
    if (!force && tbody.contains(document.activeElement)) return; // do not redraw under a researcher typing
    tbody.replaceChildren(...workers.map((w) => {
      const tr = el("tr");
      tr.dataset.worker = w.username;
      tr.appendChild(el("td", w.username, "who"));
      tr.appendChild(el("td", String(w.hits), "num"));
      tr.appendChild(el("td", String(w.answers), "num"));
      tr.appendChild(el("td", pct(w.gold_accuracy), "num"));
      tr.appendChild(el("td", pct(w.agreement), "num"));
      tr.appendChild(el("td", w.hourly_pay ?? "–", w.below_floor ? "num error" : "num"));
      tr.appendChild(el("td", w.blocked_here ? "blocked" : w.blocked ? "blocked elsewhere" : "active", w.blocked ? "warn" : ""));
      const cell = el("td");
      const form = el("form", undefined, "row-form");
      const reason = el("input");
      reason.name = "reason"; reason.required = true; reason.maxLength = 200; reason.placeholder = "reason";
      reason.setAttribute("aria-label", `Reason for ${w.username}`);
      const button = el("button", w.blocked_here ? "Unblock" : "Block");
      button.type = "submit";
      form.append(reason, button);
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const action = w.blocked_here ? "unblock" : "block";
        const res = await api.request("POST", `${base}workers/${w.worker}/${action}/`, { reason: reason.value });
        if (!res.ok) { alert((res.data && res.data.detail) || "Failed."); return; }
        if (res.data && res.data.message) alert(res.data.message); // e.g. still blocked by another campaign
        await Promise.all([refreshCost(true), refreshQuality()]);
      });
      cell.appendChild(form);
      tr.appendChild(cell);
      return tr;
    }));
  }

  // The throughput chart's time spans, as WAI-ARIA tabs: one tab stop; arrows, Home and End move between them and
  // show that span at once.
  const windowTabs = [...document.querySelectorAll("#windows [data-window]")];
  function chooseWindow(button) {
    windowName = button.dataset.window;
    windowTabs.forEach((b) => {
      b.setAttribute("aria-selected", String(b === button));
      b.tabIndex = b === button ? 0 : -1;
    });
    document.getElementById("throughput-panel").setAttribute("aria-labelledby", button.id);
    refreshThroughput();
  }
  windowTabs.forEach((button, i) => {
    button.addEventListener("click", () => chooseWindow(button));
    button.addEventListener("keydown", (event) => {
      const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: windowTabs.length - 1 }[event.key];
      if (to === undefined) return;
      event.preventDefault();
      const next = windowTabs[(to + windowTabs.length) % windowTabs.length];
      next.focus();
      chooseWindow(next);
    });
  });
  document.querySelectorAll("[data-state]").forEach((button) => {
    button.addEventListener("click", async () => {
      // Finishing cannot be undone and its button sits beside Pause: ask first.
      const finishing = `Finish “${root.dataset.name}”? Workers get no more work from it, and a finished campaign cannot run again.`;
      if (button.dataset.state === "finished" && !window.confirm(finishing)) return;
      const r = await api.request("POST", `${base}state/`, { state: button.dataset.state });
      if (!r.ok) { alert((r.data && r.data.detail) || "Failed."); return; }
      refreshSummary();
    });
  });

  document.getElementById("policy-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = document.getElementById("policy-status");
    const body = {};
    for (const input of event.target.querySelectorAll("input")) {
      if (input.type === "checkbox") { body[input.name] = input.checked; continue; }
      if (input.value === "") continue;
      body[input.name] = input.name === "reward_per_hit" ? input.value : Number(input.value);
    }
    const r = await api.request("PATCH", base, body);
    if (!r.ok) { out.textContent = (r.data && r.data.detail) || `Not saved (${r.status}).`; return; }
    for (const [key, value] of Object.entries(r.data.policy)) {
      const text = typeof value === "boolean" ? (value ? "on" : "off") : String(value);
      root.querySelectorAll(`[data-policy="${key}"]`).forEach((node) => { node.textContent = text; });
    }
    refreshSummary();
    out.textContent = `Policy saved at ${new Date().toLocaleTimeString()}.`;
    refreshProgress();
  });

  // A campaign of many synsets has a text field instead of a select: it suggests the synsets the server's
  // search finds for what the researcher types (20 at a time).
  const synsetField = document.getElementById("import-synset");
  if (synsetField.tagName === "INPUT") {
    let asked = 0, wait = null;
    synsetField.addEventListener("input", () => {
      clearTimeout(wait);
      wait = setTimeout(async () => {
        const q = synsetField.value.trim();
        if (!q) return;
        const mine = ++asked;
        const r = await api.request("GET", `${base}dashboard/progress/?${new URLSearchParams({ q, limit: "20" })}`);
        if (!r.ok || mine !== asked) return;
        document.getElementById("import-synset-options").replaceChildren(...r.data.synsets.map((s) => {
          const option = el("option", s.name);
          option.value = s.wnid;
          return option;
        }));
      }, 250);
    });
  }

  document.getElementById("import-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = document.getElementById("import-status");
    const synset = synsetField.value.trim();
    const files = document.getElementById("import-files").files;
    // One URL a line, as the label says: a line with a space in it is one (refused) item, not several.
    const urls = document.getElementById("import-urls").value.split(/\r?\n/).map((line) => line.trim()).filter(Boolean);
    const term = document.getElementById("import-term").value;
    const rejectedList = document.getElementById("import-rejected");
    rejectedList.replaceChildren();
    rejectedList.hidden = true;
    if (files.length && urls.length) {
      out.textContent = "Import files or URLs, one kind at a time: clear the files or the URLs, then import again.";
      return;
    }
    let response;
    if (files.length) {
      const body = new FormData();
      body.append("synset", synset); body.append("query_term", term); body.append("campaign", root.dataset.campaign);
      for (const f of files) body.append("files", f);
      const csrf = (document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/) || [])[1] || "";
      const raw = await fetch("/api/v1/image-imports/", { method: "POST", body, credentials: "same-origin", headers: { "X-CSRFToken": decodeURIComponent(csrf), Accept: "application/json" } });
      response = { ok: raw.ok, status: raw.status, data: await raw.json().catch(() => null) };
    } else if (urls.length) {
      response = await api.request("POST", "/api/v1/image-imports/", { synset, urls, query_term: term, campaign: Number(root.dataset.campaign) });
    } else { out.textContent = "Choose files or paste URLs."; return; }
    if (response.status !== 202) { out.textContent = (response.data && response.data.detail) || `Import refused (${response.status}).`; return; }
    const poll = async (id) => {
      const r = await api.request("GET", `/api/v1/image-imports/${id}/`);
      if (!r.ok) return;
      const d = r.data;
      out.textContent = `Import ${id}: ${d.status}, ${d.processed} of ${d.total} — ${d.counts.accepted} accepted, ${d.counts.duplicate + d.counts.near_duplicate} duplicate${d.counts.duplicate + d.counts.near_duplicate === 1 ? "" : "s"}, ${d.counts.rejected} rejected.`;
      if (d.status === "pending" || d.status === "running") { setTimeout(() => poll(id), 1500); return; }
      if (d.counts.rejected) showRejected(id, d.counts.rejected);
    };
    // Which files or URLs were rejected, and why (the first 20; all of them are at the items endpoint).
    const showRejected = async (id, total) => {
      const r = await api.request("GET", `/api/v1/image-imports/${id}/items/?outcome=rejected`);
      if (!r.ok) return;
      const rows = Array.isArray(r.data) ? r.data : r.data.results;
      const items = rows.slice(0, 20).map((item) => {
        const li = el("li");
        li.appendChild(el("code", item.name));
        li.appendChild(document.createTextNode(` — ${item.reason}`));
        return li;
      });
      if (total > items.length) items.push(el("li", `… and ${total - items.length} more: /api/v1/image-imports/${id}/items/?outcome=rejected`));
      rejectedList.replaceChildren(...items);
      rejectedList.hidden = false;
    };
    poll(response.data.id);
  });

  function every(ms, fn) { fn(); setInterval(() => { if (!document.hidden) fn(); }, ms); }
  every(FAST, refreshSummary);
  every(FAST, refreshThroughput);
  every(SLOW, refreshProgress);
  every(SLOW, refreshQuality);
  every(SLOW, refreshCost);
})();
