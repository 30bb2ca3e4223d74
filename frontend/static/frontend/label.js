// The labelling page: one HIT at a time, marked with mouse or keyboard, submitted straight into the next.
"use strict";
(function () {
  const root = document.getElementById("labeller");
  const campaign = root.dataset.campaign;
  const grid = document.getElementById("grid");
  const statusLine = document.getElementById("status");
  const submitButton = document.getElementById("submit");
  const zoom = document.getElementById("zoom");
  const api = window.synsightApi;
  let hit = null;
  let marks = [];
  let touched = [];
  let focus = 0;
  let shownAt = 0;
  let busy = false;
  let key = null;
  let done = 0;
  // "Nothing right now" (204 with Retry-After: the last images are with other workers, or awaiting consensus):
  // look again, at most MAX_WAITS times in a row, before saying there is nothing left.
  const MAX_WAITS = 6;
  let waits = 0;
  // Said once ahead of the next HIT's status: what happened to the last one (its lease ran out).
  let notice = "";
  let leaseTimer = null;
  const LEASE_WARNING_MS = 60000;

  function say(text) { statusLine.textContent = text; }
  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
  // The marks of the HIT on screen survive a reload (the server gives the same open HIT back).
  function saved(id) { try { return JSON.parse(sessionStorage.getItem("synsight-hit-" + id)); } catch (e) { return null; } }
  function save() {
    if (!hit) return;
    try { sessionStorage.setItem("synsight-hit-" + hit.id, JSON.stringify({ marks, key })); } catch (e) { /* private mode */ }
  }
  function forget(id) { try { sessionStorage.removeItem("synsight-hit-" + id); } catch (e) { /* private mode */ } }

  // No HIT left for this worker, or none they may have (blocked, campaign paused): the page says so in its
  // heading and status line, and points back to the other campaigns.
  function finished(heading, text) {
    root.querySelector("header.task h1").textContent = heading;
    say(heading + ".");
    const back = document.createElement("a");
    back.href = root.dataset.homeUrl;
    back.textContent = "Back to your campaigns";
    document.getElementById("synset-gloss").replaceChildren(text + " ", back);
    document.getElementById("synset-lemmas").parentElement.hidden = true;
    document.getElementById("examples").replaceChildren();
    root.querySelector(".help").hidden = true;
  }

  function columns() {
    const tiles = grid.querySelectorAll(".tile");
    if (tiles.length < 2) return 1;
    const top = tiles[0].offsetTop;
    let n = 0;
    while (n < tiles.length && tiles[n].offsetTop === top) n++;
    return Math.max(n, 1);
  }

  function setFocus(i) {
    const tiles = grid.querySelectorAll(".tile");
    if (!tiles.length) return;
    focus = Math.max(0, Math.min(tiles.length - 1, i));
    tiles[focus].focus({ preventScroll: false });
  }

  function toggle(i) {
    const tiles = grid.querySelectorAll(".tile");
    if (!hit || i < 0 || i >= tiles.length) return;
    marks[i] = !marks[i];
    touched[i] = performance.now() - shownAt;
    tiles[i].classList.toggle("marked", marks[i]);
    tiles[i].setAttribute("aria-pressed", String(marks[i]));
    save();
  }

  function render(data) {
    hit = data;
    showZoom(false);
    const kept = saved(data.id);
    const restored = kept && Array.isArray(kept.marks) && kept.marks.length === data.items.length;
    marks = restored ? kept.marks.map(Boolean) : data.items.map(() => false);
    touched = data.items.map(() => null);
    key = restored && kept.key ? kept.key : api.newKey();
    const s = data.synset;
    document.getElementById("synset-name").textContent = s.lemmas[0];
    document.querySelector(".article").textContent = /^[aeiou]/i.test(s.lemmas[0]) ? "an" : "a";
    document.getElementById("synset-gloss").textContent = s.gloss;
    document.getElementById("synset-lemmas").textContent = s.lemmas.join(", ");
    document.getElementById("synset-more").href = s.read_more;
    const examples = document.getElementById("examples");
    examples.replaceChildren(...data.examples.map((url) => {
      const img = document.createElement("img");
      img.src = url; img.alt = "accepted example"; return img;
    }));
    grid.replaceChildren(...data.items.map((item, i) => {
      const cell = api.tile(item.thumbnail, "image " + (i + 1));
      cell.dataset.index = String(i);
      cell.dataset.medium = item.medium;
      cell.addEventListener("click", () => { toggle(i); setFocus(i); });
      // A long press (touch) or right click opens the larger view of this image.
      cell.addEventListener("contextmenu", (event) => { event.preventDefault(); setFocus(i); showZoom(true); });
      if (i < 9) {
        const badge = document.createElement("span");
        badge.className = "key"; badge.textContent = String(i + 1);
        cell.appendChild(badge);
      }
      return cell;
    }));
    marks.forEach((on, i) => {
      const tile = grid.children[i];
      tile.classList.toggle("marked", on);
      tile.setAttribute("aria-pressed", String(on));
    });
    shownAt = performance.now();
    submitButton.disabled = false;  // disabled in the page until a HIT is shown, and while none is
    setFocus(0);
    const expires = new Date(data.expires_at);
    const status = plural(data.items.length, "image") + " · lease ends " + expires.toLocaleTimeString() +
      (restored ? " · your marks were kept" : "");
    say(notice ? notice + " " + status : status);
    notice = "";
    clearTimeout(leaseTimer);
    const warnIn = expires.getTime() - Date.now() - LEASE_WARNING_MS;
    const shown = data.id;
    leaseTimer = setTimeout(() => {
      if (hit && hit.id === shown && !busy) say("Less than a minute left on this HIT: press Enter to send it, or its answers are lost.");
    }, Math.max(0, warnIn));
  }

  async function next() {
    busy = true;
    say("Loading the next HIT…");
    const response = await api.request("POST", "/api/v1/campaigns/" + campaign + "/hits/next/");
    busy = false;
    if (response.status === 200) {
      waits = 0;
      return render(response.data);
    }
    hit = null;
    clearTimeout(leaseTimer);
    showZoom(false);
    submitButton.disabled = true;
    grid.replaceChildren();
    if (response.status === 204 && response.retryAfter && waits < MAX_WAITS) {
      waits += 1;
      setTimeout(next, response.retryAfter * 1000);
      return say("No images for you right now: the last ones are with other workers. Looking again in " +
        response.retryAfter + " s…");
    }
    if (response.status === 204) {
      finished("No more images for you in this campaign", "Thank you! Other campaigns may have work for you.");
      return say("No more images for you in this campaign. Thank you!");
    }
    if (response.status === 403 && /quiz/.test(response.data.detail)) {
      window.location.href = root.dataset.quizUrl;
      return;
    }
    if ((response.status === 403 || response.status === 409) && response.data) {
      return finished("No work for you in this campaign", response.data.detail);
    }
    say(response.data ? response.data.detail : "The server did not answer; try again.");
  }

  async function submit() {
    if (!hit || busy) return;
    busy = true;
    submitButton.disabled = true;
    const total = performance.now() - shownAt;
    const even = Math.round(total / hit.items.length);
    const answers = hit.items.map((item, i) => ({
      item: item.id,
      answer: marks[i] ? "present" : "absent",
      ms: Math.min(3600000, Math.max(0, Math.round(touched[i] === null ? even : Math.min(touched[i], total)))),
    }));
    say("Saving…");
    let response;
    for (let attempt = 0; attempt < 3; attempt++) {
      // The same key on every retry: the server stores the answers once however often this is sent.
      response = await api.request("POST", "/api/v1/hits/" + hit.id + "/submit/", { idempotency_key: key, answers })
        .catch(() => ({ status: 0, data: null }));
      if (response.status !== 0 && response.status < 500) break;
    }
    submitButton.disabled = false;
    busy = false;
    if (response.status === 201 || response.status === 200) {
      forget(hit.id);
      done += 1;
      document.getElementById("done-count").textContent = String(done);
      document.getElementById("done-unit").textContent = done === 1 ? "HIT" : "HITs";
      return next();
    }
    if (response.status === 410) {
      // The lease ran out before the answers arrived: they were not recorded (nor paid); say so with the next HIT.
      forget(hit.id);
      notice = "The lease on your last HIT ran out before you sent it, so its answers were not recorded.";
      return next();
    }
    say(response.data ? response.data.detail : "Could not save; press Enter to retry.");
  }

  function showZoom(open) {
    if (open && hit) {
      const tile = grid.querySelectorAll(".tile")[focus];
      zoom.querySelector("img").src = tile.dataset.medium;
    }
    zoom.hidden = !open;
  }

  document.addEventListener("keydown", (event) => {
    if (event.target.tagName === "INPUT" || event.target.tagName === "TEXTAREA") return;
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const k = event.key;
    // While the larger view is open, Enter only closes it: a HIT is never sent from under it.
    if (!zoom.hidden && (k === "Escape" || k === "z" || k === "Z" || k === "Enter")) { showZoom(false); event.preventDefault(); return; }
    if (k === "Enter") { submit(); event.preventDefault(); }
    else if (k === " " || k === "Spacebar") { toggle(focus); event.preventDefault(); }
    else if (k === "ArrowRight") { setFocus(focus + 1); event.preventDefault(); }
    else if (k === "ArrowLeft") { setFocus(focus - 1); event.preventDefault(); }
    else if (k === "ArrowDown") { setFocus(focus + columns()); event.preventDefault(); }
    else if (k === "ArrowUp") { setFocus(focus - columns()); event.preventDefault(); }
    else if (/^[1-9]$/.test(k)) { toggle(Number(k) - 1); setFocus(Number(k) - 1); event.preventDefault(); }
    else if (k === "z" || k === "Z") { showZoom(true); event.preventDefault(); }
  });
  grid.addEventListener("focusin", (event) => {
    const tile = event.target.closest(".tile");
    if (tile) focus = Number(tile.dataset.index);
  });
  zoom.addEventListener("click", () => showZoom(false));
  submitButton.addEventListener("click", submit);
  next();
})();
