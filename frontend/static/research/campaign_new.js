// New campaign: pick synsets from the taxonomy (itself, children, leaves, subtree) or paste wnids; the label
// set is checked live (overlaps, unknown, sensitive) through /api/v1/label-sets/check/ before it is created.
"use strict";
(function () {
  const api = window.synsightApi;
  const wnids = document.getElementById("wnids");
  const check = document.getElementById("check");
  const root = document.getElementById("root");
  const results = document.getElementById("root-results");
  const status = document.getElementById("create-status");
  let timer = null;
  let lastReport = null;

  function parse() {
    const seen = new Set();
    for (const token of wnids.value.split(/[\s,]+/)) if (token) seen.add(token.trim());
    return [...seen];
  }
  function node(tag, text, cls) {
    const el = document.createElement(tag);
    if (text !== undefined) el.textContent = text;
    if (cls) el.className = cls;
    return el;
  }
  async function runCheck() {
    const list = parse();
    if (!list.length) { check.replaceChildren(node("span", "Add synsets to check the label set.", "muted")); lastReport = null; return; }
    const r = await api.request("POST", "/api/v1/label-sets/check/", { wnids: list });
    if (!r.ok) { check.replaceChildren(node("span", (r.data && r.data.detail) || "Check failed.", "error")); lastReport = null; return; }
    const d = r.data;
    lastReport = d;
    const named = (wnid) => (d.names[wnid] ? `${d.names[wnid].split(", ")[0]} (${wnid})` : wnid);
    const parts = [];
    const head = node("p", `${d.count} synset${d.count === 1 ? "" : "s"} · `);
    head.appendChild(node("b", d.ok ? "no overlaps" : "not a clean label set", d.ok ? "ok" : "error"));
    head.id = "check-summary";
    parts.push(head);
    if (d.overlaps.length) {
      const p = node("p", `${d.overlaps.length} overlapping pair${d.overlaps.length === 1 ? "" : "s"} (ancestor › descendant), e.g. `, "error");
      p.id = "check-overlaps";
      p.appendChild(document.createTextNode(d.overlaps.slice(0, 3).map((o) => o.map(named).join(" › ")).join("; ")));
      parts.push(p);
    }
    if (d.unknown.length) parts.push(node("p", `Unknown: ${d.unknown.slice(0, 10).join(", ")}`, "error"));
    if (d.sensitive.length) {
      const p = node("p", `${d.sensitive.length} sensitive (people) synset${d.sensitive.length === 1 ? "" : "s"}: ${d.sensitive.slice(0, 5).map(named).join(", ")} — labelling them needs the explicit opt-in below.`, "warn");
      p.id = "check-sensitive";
      parts.push(p);
    }
    // What the codes are: the first members, by name, in the order of the list.
    const shown = list.filter((w) => d.names[w]).slice(0, 20);
    if (shown.length) {
      const members = node("ul", undefined, "plain members");
      members.id = "check-members";
      for (const w of shown) {
        const li = node("li");
        li.appendChild(node("code", w));
        li.appendChild(document.createTextNode(" " + d.names[w]));
        members.appendChild(li);
      }
      if (d.count > shown.length) members.appendChild(node("li", `… and ${d.count - shown.length} more`, "muted"));
      parts.push(members);
    }
    check.replaceChildren(...parts);
  }
  function scheduleCheck() { clearTimeout(timer); timer = setTimeout(runCheck, 300); }
  wnids.addEventListener("input", scheduleCheck);

  let searchTimer = null;
  root.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(async () => {
      const q = root.value.trim();
      if (q.length < 2 || /^n\d{8}$/.test(q)) { results.replaceChildren(); return; }
      const r = await api.request("GET", `/api/v1/synsets/?q=${encodeURIComponent(q)}`);
      if (!r.ok) return;
      results.replaceChildren(...r.data.results.slice(0, 8).map((s) => {
        const li = node("li");
        const b = node("button", "", "link");
        b.type = "button";
        b.appendChild(node("code", s.wnid));
        b.appendChild(document.createTextNode(" " + ((s.lemmas && s.lemmas.length) ? s.lemmas.join(", ") : s.name)));
        b.addEventListener("click", () => { root.value = s.wnid; results.replaceChildren(); });
        li.appendChild(b);
        // The gloss on screen: the eight senses of "dog" are told apart by it, not by hovering over each.
        if (s.gloss) li.appendChild(node("div", s.gloss, "gloss"));
        return li;
      }));
    }, 250);
  });

  document.getElementById("pick").addEventListener("submit", async (event) => {
    event.preventDefault();
    const mode = new FormData(event.target).get("mode");
    const r = await api.request("GET", `/api/v1/campaigns/label-set/expand/?root=${encodeURIComponent(root.value.trim())}&mode=${mode}`);
    if (!r.ok) { check.replaceChildren(node("span", (r.data && r.data.detail) || "Unknown synset.", "error")); return; }
    const merged = new Set([...parse(), ...r.data.wnids]);
    wnids.value = [...merged].join("\n");
    const name = document.getElementById("name");
    if (!name.value) name.value = `${r.data.root} ${mode}`;
    await runCheck();
  });

  let creating = false;
  document.getElementById("policy").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (creating) return;  // a double click creates one campaign, not two
    const button = event.target.querySelector("button[type=submit], button:not([type])");
    const form = new FormData(event.target);
    const body = {
      name: form.get("name"), wnids: parse(), allow_sensitive: form.get("allow_sensitive") === "on",
      quiz_per_synset: form.get("quiz_per_synset") === "on", boxes_enabled: form.get("boxes_enabled") === "on",
    };
    for (const key of ["target_per_synset", "images_per_hit", "min_votes", "max_votes", "quiz_size"]) body[key] = parseInt(form.get(key), 10);
    for (const key of ["confidence", "gold_rate", "min_worker_accuracy", "quiz_pass_mark"]) body[key] = parseFloat(form.get(key));
    body.reward_per_hit = form.get("reward_per_hit");
    creating = true;
    if (button) button.disabled = true;
    status.textContent = "Creating the campaign…";
    const r = await api.request("POST", "/api/v1/campaigns/", body);
    if (r.status === 201) { window.location.href = `/research/${r.data.id}/`; return; }
    creating = false;
    if (button) button.disabled = false;
    status.textContent = (r.data && r.data.detail) || `Could not create the campaign (${r.status}).`;
    // Disabling the focused button dropped focus to <body>: keyboard and screen-reader users lost their place.
    // Focus goes to the field at fault, marked invalid and described by the sentence; else back to the button.
    const field = faultyField(event.target, r);
    if (field) {
      field.setAttribute("aria-invalid", "true");
      field.setAttribute("aria-describedby", status.id);
      field.focus();
    } else if (button) button.focus();
  });

  // The field an answer refuses: a 400 names fields in `errors` (the label set is the textarea outside this form);
  // a name the researcher already has (case aside) is a 409 with the code name_taken.
  function faultyField(form, r) {
    const code = r.data && r.data.code;
    const names = code === "name_taken" ? ["name"] : Object.keys((r.data && r.data.errors) || {});
    for (const name of names) {
      const field = name === "wnids" ? wnids : form.elements.namedItem(name);
      if (field instanceof HTMLInputElement || field instanceof HTMLTextAreaElement) return field;
    }
    return null;
  }
  document.getElementById("campaign-new").addEventListener("input", (event) => {
    if (event.target.getAttribute("aria-invalid") !== "true") return;  // corrected: no longer marked
    event.target.removeAttribute("aria-invalid");
    event.target.removeAttribute("aria-describedby");
  });

  if (document.getElementById("campaign-new").dataset.root) root.dispatchEvent(new Event("input"));
})();
