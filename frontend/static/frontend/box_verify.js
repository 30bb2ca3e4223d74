// Quality and coverage pages: a fast grid like the labelling page. Each tile shows an image with its box
// (quality) or all its accepted boxes (coverage); marked means "yes", unmarked "no".
"use strict";
(function () {
  const root = document.getElementById("verifier");
  const campaign = root.dataset.campaign;
  const kind = root.dataset.kind;
  const grid = document.getElementById("grid");
  const statusLine = document.getElementById("status");
  const submitButton = document.getElementById("submit");
  const api = window.synsightApi;
  const LOOK_AGAIN_S = Number(root.dataset.lookAgain) || 20;  // after "no work right now"
  let task = null, marks = [], touched = [], focus = 0, shownAt = 0, busy = false, key = null, done = 0;
  grid.classList.add(kind);

  function say(text) { statusLine.textContent = text; }
  function tiles() { return grid.querySelectorAll(".tile"); }
  function columns() {
    const t = tiles();
    if (t.length < 2) return 1;
    let n = 0;
    while (n < t.length && t[n].offsetTop === t[0].offsetTop) n++;
    return Math.max(n, 1);
  }
  function setFocus(i) {
    const t = tiles();
    if (!t.length) return;
    focus = Math.max(0, Math.min(t.length - 1, i));
    t[focus].focus();
  }
  function toggle(i) {
    const t = tiles();
    if (!task || i < 0 || i >= t.length) return;
    marks[i] = !marks[i];
    touched[i] = performance.now() - shownAt;
    t[i].classList.toggle("marked", marks[i]);
    t[i].setAttribute("aria-pressed", String(marks[i]));
  }

  function tile(item, i) {
    const cell = document.createElement("button");
    cell.type = "button";
    cell.className = "tile";
    cell.setAttribute("role", "gridcell");
    cell.setAttribute("aria-pressed", "false");
    cell.dataset.index = String(i);
    const frame = document.createElement("span");
    frame.className = "frame";
    const img = document.createElement("img");
    img.src = item.image.medium;
    img.alt = "image " + (i + 1);
    frame.appendChild(img);
    const W = item.image.width, H = item.image.height;
    for (const b of item.box ? [item.box] : item.boxes) {
      // Percentages of the displayed size: the overlay follows the image at any tile size.
      const ov = document.createElement("span");
      ov.className = "ov";
      ov.style.left = (100 * b[0] / W) + "%";
      ov.style.top = (100 * b[1] / H) + "%";
      ov.style.width = (100 * (b[2] - b[0]) / W) + "%";
      ov.style.height = (100 * (b[3] - b[1]) / H) + "%";
      frame.appendChild(ov);
    }
    cell.appendChild(frame);
    if (i < 9) {
      const badge = document.createElement("span");
      badge.className = "key"; badge.textContent = String(i + 1);
      cell.appendChild(badge);
    }
    cell.addEventListener("click", () => { toggle(i); setFocus(i); });
    return cell;
  }

  // No task on screen: no question and no submit button; the status line says why and when the page looks again.
  function idle(on) {
    root.querySelector("header.task h1").hidden = on;
    root.querySelector(".help").hidden = on;
    submitButton.hidden = on;
  }

  function render(data) {
    idle(false);
    task = data;
    marks = data.items.map(() => false);
    touched = data.items.map(() => null);
    key = api.newKey();
    document.getElementById("synset-name").textContent = data.synset.lemmas[0];
    document.getElementById("synset-gloss").textContent = data.synset.gloss;
    grid.replaceChildren(...data.items.map(tile));
    shownAt = performance.now();
    setFocus(0);
    say(data.items.length + " images · lease ends " + new Date(data.expires_at).toLocaleTimeString());
  }

  async function next() {
    busy = true;
    say("Loading…");
    const response = await api.request("POST", "/api/v1/campaigns/" + campaign + "/boxes/" + kind + "/next/");
    busy = false;
    if (response.status === 200) return render(response.data);
    task = null;
    grid.replaceChildren();
    idle(true);
    if (response.status === 204) {
      // Box work arrives as images are accepted and boxes drawn: look again while the page is open.
      setTimeout(next, LOOK_AGAIN_S * 1000);
      return say("Nothing to check for you right now: new boxes come as others draw them. Looking again in " + LOOK_AGAIN_S + " s.");
    }
    if (response.status === 403 && /quiz/.test(response.data.detail)) { window.location.href = root.dataset.quizUrl; return; }
    say(response.data ? response.data.detail : "The server did not answer; try again.");
  }

  async function submit() {
    if (!task || busy) return;
    busy = true;
    submitButton.disabled = true;
    const total = performance.now() - shownAt;
    const even = Math.round(total / task.items.length);
    const answers = task.items.map((item, i) => ({
      item: item.id,
      answer: marks[i] ? "yes" : "no",
      ms: Math.min(3600000, Math.max(0, Math.round(touched[i] === null ? even : Math.min(touched[i], total)))),
    }));
    say("Saving…");
    let response;
    for (let attempt = 0; attempt < 3; attempt++) {
      response = await api.request("POST", "/api/v1/box-tasks/" + task.id + "/submit/", { idempotency_key: key, answers })
        .catch(() => ({ status: 0, data: null }));
      if (response.status !== 0 && response.status < 500) break;
    }
    submitButton.disabled = false;
    busy = false;
    if (response.status === 201 || response.status === 200) {
      done += 1;
      document.getElementById("done-count").textContent = String(done);
      return next();
    }
    if (response.status === 410) return next();
    say(response.data ? response.data.detail : "Could not save; press Enter to retry.");
  }

  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const k = event.key;
    if (k === "Enter") { submit(); event.preventDefault(); }
    else if (k === " " || k === "Spacebar") { toggle(focus); event.preventDefault(); }
    else if (k === "ArrowRight") { setFocus(focus + 1); event.preventDefault(); }
    else if (k === "ArrowLeft") { setFocus(focus - 1); event.preventDefault(); }
    else if (k === "ArrowDown") { setFocus(focus + columns()); event.preventDefault(); }
    else if (k === "ArrowUp") { setFocus(focus - columns()); event.preventDefault(); }
    else if (/^[1-9]$/.test(k)) { toggle(Number(k) - 1); setFocus(Number(k) - 1); event.preventDefault(); }
  });
  grid.addEventListener("focusin", (event) => {
    const t = event.target.closest(".tile");
    if (t) focus = Number(t.dataset.index);
  });
  submitButton.addEventListener("click", submit);
  next();
})();
