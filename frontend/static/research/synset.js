// Inspecting one synset of a campaign: counts, the learned confidence table, the precision audit (accepted images
// drawn at random for the researcher's own yes or no), candidates by state (or the disagreements) with thumbnails,
// and per-candidate overrides and gold marks, recorded through the API.
"use strict";
(function () {
  const root = document.getElementById("inspect");
  const base = root.dataset.api;
  const wnid = root.dataset.wnid;
  const api = window.synsightApi;
  const cards = document.getElementById("candidates");
  const more = document.getElementById("more");
  const status = document.getElementById("candidates-status");
  let state = "disagreements";
  let next = null;
  function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }

  async function overview() {
    const r = await api.request("GET", `${base}synsets/${wnid}/`);
    if (!r.ok) return;
    const d = r.data;
    const stats = document.getElementById("counts");
    const tiles = [["accepted", d.counters.accepted], ["rejected", d.counters.rejected], ["unresolved", d.counters.unresolved],
      ["voting", d.by_state.voting], ["new", d.by_state.new], ["gold", d.gold], ["answers", d.answers], ["target", d.target]];
    stats.replaceChildren(...tiles.map(([name, value]) => { const div = el("div"); const b = el("b", String(value)); b.dataset.stat = name; div.append(b, el("span", name)); return div; }));
    const box = document.getElementById("confidence");
    const t = d.confidence_table;
    if (!t) { box.replaceChildren(el("p", "No votes yet.", "muted")); return; }
    const table = el("table", undefined, "data confidence");
    table.id = "confidence-table";
    const head = el("tr"); head.appendChild(el("th", "yes \\ no"));
    for (let n = 0; n <= t.max_total; n++) head.appendChild(el("th", String(n), "num"));
    table.appendChild(head);
    t.table.forEach((row, y) => {
      const tr = el("tr"); tr.appendChild(el("th", String(y)));
      row.forEach((v) => {
        const td = el("td", v === null ? "" : v.toFixed(2), "num");
        if (v !== null) td.style.background = `rgba(46,125,50,${(v * 0.6).toFixed(2)})`;
        tr.appendChild(td);
      });
      table.appendChild(tr);
    });
    box.replaceChildren(el("p", `From ${t.seed_items} seed items of ${t.items} voted (prior ${t.good_prior}, P(yes|present) ${t.p_yes_good}, P(yes|absent) ${t.p_yes_bad}).`, "muted"), table);
  }

  // The precision audit. Percentages rounded down, as on the dashboard: 99.96% must not read as 100%.
  const auditSummary = document.getElementById("audit-summary");
  const auditCards = document.getElementById("audit-sample");
  const auditStatus = document.getElementById("audit-status");
  const auditReject = document.getElementById("audit-reject");
  const pct = (v) => `${(Math.floor(v * 1000) / 10).toFixed(1)}%`;
  function auditLine(s) {
    const judged = s.judged
      ? `${s.correct} of ${s.judged} judged right: sampled precision ${pct(s.precision)} (95% interval ${pct(s.wilson95[0])}–${pct(s.wilson95[1])}); the model expected ${pct(s.model_estimate)} of the same images.`
      : "No accepted image judged yet.";
    const calibration = s.judged && s.model_estimate > s.wilson95[1]
      ? " The model's estimate is above the audit's interval: its posteriors are over-confident here."
      : s.judged && s.model_estimate < s.wilson95[0] ? " The model's estimate is below the audit's interval: its posteriors are too cautious here." : "";
    const wrong = s.wrong_still_accepted.length
      ? ` Judged wrong and still accepted: ${s.wrong_still_accepted.map((i) => "#" + i).join(", ")}.`
      : "";
    let left;
    if (s.unjudged) left = ` ${s.unjudged} accepted image${s.unjudged === 1 ? "" : "s"} not judged yet.`;
    else left = s.judged ? " Every accepted image has been judged." : " Nothing is accepted yet to audit.";
    auditSummary.textContent = judged + calibration + wrong + left;
    // One click rejects what the audit found wrong (an override, recorded with that reason), no hunt through
    // the Accepted tab's pages.
    auditReject.replaceChildren(...s.wrong_still_accepted.map((id) => {
      const b = el("button", `Reject #${id}`, "small-button");
      b.type = "button";
      b.addEventListener("click", async () => {
        b.disabled = true;
        const r = await api.request("POST", `${base}candidates/${id}/override/`, { action: "reject", reason: "judged wrong in the precision audit" });
        auditStatus.textContent = r.ok ? `#${id}: accepted → rejected (recorded).` : (r.data && r.data.detail) || "Failed.";
        if (!r.ok) { b.disabled = false; return; }
        overview();
        audit();
        load(true);
      });
      return b;
    }));
  }
  // The last verdict, with a button to turn it round: a slip of the key is put right here, not by an override.
  function verdictStatus(id, correct, changed) {
    const change = el("button", `Change #${id} to ${correct ? "wrong" : "right"}`, "small-button");
    change.type = "button";
    change.addEventListener("click", async () => {
      change.disabled = true;
      const r = await api.request("POST", `${base}candidates/${id}/audit/`, { correct: !correct });
      if (!r.ok) { auditStatus.textContent = (r.data && r.data.detail) || "Not changed; try again."; return; }
      verdictStatus(id, !correct, "changed to ");
      auditLine(r.data.summary);
    });
    auditStatus.replaceChildren(document.createTextNode(`#${id}: ${changed}${correct ? "right" : "wrong"} (recorded). `), change);
  }
  function auditCard(c) {
    const div = el("div", undefined, "card");
    div.dataset.audit = String(c.id);
    // The thumbnail opens the larger image in a new tab: a verdict may need a closer look.
    const thumb = el("a", undefined, "thumb");
    thumb.href = c.medium; thumb.target = "_blank"; thumb.rel = "noopener";
    thumb.title = "Open the larger image";
    const img = el("img"); img.src = c.thumbnail; img.alt = `candidate ${c.id}`;
    thumb.appendChild(img);
    div.append(thumb, el("p", `#${c.id} · ${c.yes}/${c.votes} yes · p=${c.posterior === null ? "–" : c.posterior.toFixed(3)}`, "small"));
    const actions = el("div", undefined, "card-actions");
    const buttons = [["Yes", true], ["No", false]].map(([label, correct]) => {
      const b = el("button", label, "small-button");
      b.type = "button";
      b.setAttribute("aria-label", `Candidate ${c.id}: ${label.toLowerCase()}, it ${correct ? "shows" : "does not show"} the synset`);
      b.addEventListener("click", async () => {
        buttons.forEach((x) => { x.disabled = true; });
        const r = await api.request("POST", `${base}candidates/${c.id}/audit/`, { correct });
        if (!r.ok) {
          auditStatus.textContent = (r.data && r.data.detail) || "Not recorded; try again.";
          buttons.forEach((x) => { x.disabled = false; });
          return;
        }
        div.remove();
        verdictStatus(c.id, correct, "");
        auditLine(r.data.summary);
        if (!auditCards.children.length) audit();
      });
      actions.appendChild(b);
      return b;
    });
    div.appendChild(actions);
    return div;
  }
  // Y and N judge the first image of the draw, as its buttons do (not while typing, nor with a modifier).
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey || event.repeat) return;
    if (event.target.closest && event.target.closest("input, textarea, select")) return;
    const key = event.key.toLowerCase();
    if (key !== "y" && key !== "n") return;
    const first = auditCards.querySelector("[data-audit]");
    if (!first) return;
    const button = first.querySelectorAll("button")[key === "y" ? 0 : 1];
    if (button && !button.disabled) { event.preventDefault(); button.click(); }
  });
  async function audit() {
    const r = await api.request("GET", `${base}synsets/${wnid}/audit/?limit=12`);
    if (!r.ok) { auditSummary.textContent = (r.data && r.data.detail) || "The audit did not load."; return; }
    auditLine(r.data.summary);
    auditCards.replaceChildren(...r.data.sample.map(auditCard));
  }

  function card(c) {
    const div = el("div", undefined, "card");
    div.dataset.candidate = String(c.id);
    const img = el("img"); img.src = c.thumbnail; img.alt = `candidate ${c.id}`; img.loading = "lazy";
    const thumb = el("div", undefined, "thumb");
    thumb.appendChild(img);
    // Final boxes over the thumbnail, which is letterboxed into a square (object-fit: contain).
    const side = Math.max(c.width, c.height);
    for (const [x1, y1, x2, y2] of c.boxes) {
      const b = el("div", undefined, "bbox");
      b.style.left = `${(((side - c.width) / 2 + x1) / side) * 100}%`;
      b.style.top = `${(((side - c.height) / 2 + y1) / side) * 100}%`;
      b.style.width = `${((x2 - x1) / side) * 100}%`;
      b.style.height = `${((y2 - y1) / side) * 100}%`;
      thumb.appendChild(b);
    }
    div.appendChild(thumb);
    const post = c.posterior === null ? "–" : c.posterior.toFixed(3);
    const boxes = c.boxes.length ? ` · ${c.boxes.length} box${c.boxes.length > 1 ? "es" : ""}` : "";
    div.appendChild(el("p", `#${c.id} · ${c.state} · ${c.yes}/${c.votes} yes · p=${post}${boxes}`, "small"));
    if (c.gold) div.appendChild(el("span", `gold: ${c.gold}`, "badge"));
    if (c.override) div.appendChild(el("span", `override: ${c.override.action}`, "badge warn"));
    const actions = el("div", undefined, "card-actions");
    const act = (label, fn) => { const b = el("button", label, "small-button"); b.type = "button"; b.addEventListener("click", fn); actions.appendChild(b); };
    if (!c.gold) {
      for (const [label, action] of [["Accept", "accept"], ["Reject", "reject"], ["Re-open", "reopen"]]) {
        act(label, async () => {
          const reason = prompt(`Reason to ${action} candidate ${c.id}?`, "");
          if (reason === null) return;  // Cancel: nothing is recorded
          const r = await api.request("POST", `${base}candidates/${c.id}/override/`, { action, reason });
          if (!r.ok) { status.textContent = (r.data && r.data.detail) || "Failed."; return; }
          overview();
          load(true, `Candidate ${c.id}: ${r.data.previous_state} → ${r.data.state} (recorded).`);
        });
      }
      for (const [label, present] of [["Gold: present", true], ["Gold: absent", false]]) {
        act(label, async () => {
          const r = await api.request("POST", `${base}candidates/${c.id}/gold/`, { present });
          if (!r.ok) { status.textContent = (r.data && r.data.detail) || "Failed."; return; }
          overview();
          load(true, `Candidate ${c.id} is now gold (${present ? "present" : "absent"}).`);
        });
      }
    }
    div.appendChild(actions);
    return div;
  }

  // ``note``: what the researcher just did, kept in the status line ahead of the new count.
  // Only the latest load draws: a slower answer to an earlier tab (the first load's disagreements, say) must not
  // replace the cards and count of the tab chosen since.
  let loads = 0;
  async function load(reset, note) {
    const url = reset || !next ? (state === "disagreements" ? `${base}synsets/${wnid}/disagreements/` : `${base}synsets/${wnid}/candidates/?state=${state}`) : next;
    const mine = ++loads;
    const r = await api.request("GET", url);
    if (!r.ok || mine !== loads) return;
    if (reset) cards.replaceChildren();
    r.data.results.forEach((c) => cards.appendChild(card(c)));
    next = r.data.next;
    more.hidden = !next;
    const n = r.data.count, plural = n === 1 ? "" : "s";
    const count = `${n} ${state === "disagreements" ? `candidate${plural} with split votes` : `${state} candidate${plural}`}.`;
    status.textContent = note ? `${note} ${count}` : count;
  }
  document.querySelectorAll("#states [data-state]").forEach((b) => b.addEventListener("click", () => {
    state = b.dataset.state;
    document.querySelectorAll("#states [data-state]").forEach((x) => x.setAttribute("aria-selected", String(x === b)));
    next = null;
    load(true);
  }));
  more.addEventListener("click", () => load(false));
  document.getElementById("promote").addEventListener("click", async () => {
    const r = await api.request("POST", `${base}synsets/${wnid}/gold/promote/`, { limit: 20 });
    document.getElementById("promote-status").textContent = r.ok ? `${r.data.present} present and ${r.data.absent} absent gold items added.` : (r.data && r.data.detail) || "Failed.";
    overview();
  });
  overview();
  audit();
  load(true);
})();
