// The dashboard's Datasets panel: export a version of this campaign through /api/v1/datasets/ (202, built by
// a Celery job), follow its progress, download it when done.
"use strict";
(function () {
  const section = document.getElementById("datasets");
  if (!section) return;
  const api = window.synsightApi;
  const campaign = Number(section.dataset.campaign);
  const form = document.getElementById("dataset-form");
  const out = document.getElementById("dataset-status");
  const tbody = document.querySelector("#datasets-table tbody");
  let timer = null;
  let building = null;  // the id of the version this page asked for, until it is done or failed

  function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }
  function bytes(n) {
    if (n === null || n === undefined) return "";
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
    return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
  }
  function statusText(v) {
    if (v.status === "running") return `running · ${v.phase || "building"} ${Math.round((v.progress || 0) * 100)}%`;
    if (v.status === "failed") return `failed: ${v.error}`;
    return v.status;
  }

  function render(versions) {
    if (!versions.length) {
      const td = el("td", "No version of this campaign yet.", "muted");
      td.colSpan = 8;
      const tr = el("tr");
      tr.appendChild(td);
      tbody.replaceChildren(tr);
      return;
    }
    tbody.replaceChildren(...versions.map((v) => {
      const tr = el("tr");
      tr.dataset.version = String(v.id);
      tr.dataset.status = v.status;
      const name = el("td", v.name);
      if (v.notes) name.title = v.notes;
      tr.appendChild(name);
      tr.appendChild(el("td", String(v.version), "num"));
      tr.appendChild(el("td", statusText(v), v.status === "failed" ? "error" : ""));
      for (const n of [v.images, v.labels, v.boxes]) tr.appendChild(el("td", n === null || n === undefined ? "–" : String(n), "num"));
      tr.appendChild(el("td", v.snapshot_at ? new Date(v.snapshot_at).toLocaleString() : "–"));
      const cell = el("td");
      if (v.download_url) {
        const a = el("a", `tar, ${bytes(v.total_bytes)}`);
        a.href = v.download_url;
        a.setAttribute("download", "");
        cell.appendChild(a);
        if (v.manifest_sha256) cell.title = `manifest SHA-256 ${v.manifest_sha256}`;
      }
      tr.appendChild(cell);
      return tr;
    }));
  }

  async function refresh() {
    clearTimeout(timer);
    const r = await api.request("GET", `/api/v1/datasets/?campaign=${campaign}`);
    if (!r.ok) { out.textContent = (r.data && r.data.detail) || `Could not list the versions (${r.status}).`; return; }
    render(r.data);
    const mine = r.data.find((v) => v.id === building);
    if (mine && mine.status === "done") {
      out.textContent = `${mine.name} v${mine.version} is ready: ${mine.images} images, ${mine.labels} labels, ${mine.boxes} boxes; download it below.`;
      building = null;
    } else if (mine && mine.status === "failed") {
      out.textContent = `${mine.name} v${mine.version} ${statusText(mine)}`;
      building = null;
    }
    if (r.data.some((v) => v.status === "pending" || v.status === "running")) timer = setTimeout(refresh, 1500);
  }

  function options() {
    const f = form.elements;
    const formats = [...form.querySelectorAll('input[name="formats"]:checked')].map((i) => i.value);
    const number = (input) => (input.value === "" ? null : Number(input.value));
    const imageSize = f.image_policy.value === "resized" ? { policy: "resized", max_side: number(f.max_side) } : { policy: "original" };
    return {
      formats,
      min_confidence: number(f.min_confidence),
      include_ancestors: f.include_ancestors.checked,
      split: { train: number(f.train), val: number(f.val), test: number(f.test), seed: number(f.seed) },
      image_size: imageSize,
    };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { name: form.elements.name.value, notes: form.elements.notes.value, campaigns: [campaign], options: options() };
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const r = await api.request("POST", "/api/v1/datasets/", body);
      if (r.status !== 202) { out.textContent = (r.data && r.data.detail) || `Export refused (${r.status}).`; return; }
      out.textContent = `${r.data.name} v${r.data.version} is being built; it appears below and can be downloaded when done.`;
      building = r.data.id;
      await refresh();
    } finally {
      button.disabled = false;
    }
  });

  refresh();
})();
