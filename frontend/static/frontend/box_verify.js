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
  const zoomView = document.getElementById("zoom");
  const LOOK_AGAIN_S = Number(root.dataset.lookAgain) || 20;  // after "no work right now"
  // A key held down, or pressed again as the next task appears, must not answer it: key repeats of the answer
  // keys are ignored, and they are taken only once a new task has been on screen this long.
  const ANSWER_PAUSE_MS = 400;
  let task = null, marks = [], touched = [], focus = 0, shownAt = 0, busy = false, key = null, done = 0;
  let answerable = false, pauseTimer = null;
  let notice = ""; // said once ahead of the next task's status: what happened to the last one
  grid.classList.add(kind);
  zoomView.classList.add(kind);

  function say(text) { statusLine.textContent = text; }
  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
  function setAnswerable(on) {
    answerable = on;
    root.dataset.answerable = String(on);  // for tests: when an answer key is taken
  }
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

  // The image with its box(es) drawn over it, at any size: the overlays are percentages of the image.
  function framed(item, alt) {
    const frame = document.createElement("span");
    frame.className = "frame";
    const img = document.createElement("img");
    img.src = item.image.medium;
    img.alt = alt;
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
    return frame;
  }

  function tile(item, i) {
    const cell = document.createElement("button");
    cell.type = "button";
    cell.className = "tile";
    cell.setAttribute("aria-pressed", "false");
    cell.dataset.index = String(i);
    cell.appendChild(framed(item, "Image " + (i + 1) + " of " + task.items.length));
    if (i < 9) cell.appendChild(api.keyBadge(i + 1));
    cell.addEventListener("click", () => { toggle(i); setFocus(i); });
    // A right click or a long press (touch) opens the larger view of this image, as Z does.
    cell.addEventListener("contextmenu", (event) => { event.preventDefault(); setFocus(i); showZoom(true); });
    return cell;
  }

  function showZoom(open) {
    if (open && task && task.items[focus]) {
      zoomView.querySelector(".zoomed").replaceChildren(framed(task.items[focus], "Image " + (focus + 1) + " of " + task.items.length + ", enlarged"));
    }
    zoomView.hidden = !(open && task);
  }

  // No task on screen: no question and no submit button, but a heading that says so and a way back; the status
  // line says why and when the page looks again.
  function idle(on, heading) {
    root.querySelector("header.task h1").hidden = on;  // (.task sets display, which outweighs hidden)
    document.getElementById("synset-gloss").hidden = on;
    root.querySelector(".help").hidden = on;
    submitButton.hidden = on;
    const away = document.getElementById("idle");
    away.hidden = !on;
    if (on) away.querySelector("h1").textContent = heading;
  }

  function render(data) {
    idle(false);
    shownAgain(data.id);
    showZoom(false);
    task = data;
    marks = data.items.map(() => false);
    touched = data.items.map(() => null);
    key = api.newKey();
    document.getElementById("synset-name").textContent = data.synset.lemmas[0];
    document.getElementById("synset-gloss").textContent = data.synset.gloss;
    grid.replaceChildren(...data.items.map(tile));
    shownAt = performance.now();
    setFocus(0);
    clearTimeout(pauseTimer);
    setAnswerable(false);
    pauseTimer = setTimeout(() => { if (task === data) setAnswerable(true); }, ANSWER_PAUSE_MS);
    const status = plural(data.items.length, "image") + " · lease ends " + new Date(data.expires_at).toLocaleTimeString();
    say(notice ? notice + " " + status : status);
    notice = "";
  }

  async function next() {
    busy = true;
    say("Loading…");
    const response = await api.request("POST", "/api/v1/campaigns/" + campaign + "/boxes/" + kind + "/next/");
    busy = false;
    if (response.status === 200) return render(response.data);
    task = null;
    clearTimeout(pauseTimer);
    setAnswerable(false);
    showZoom(false);
    grid.replaceChildren();
    const before = notice ? notice + " " : "";
    notice = "";
    if (response.status === 204) {
      // Box work arrives as images are accepted and boxes drawn: look again while the page is open.
      idle(true, "Nothing to check for you right now");
      setTimeout(next, LOOK_AGAIN_S * 1000);
      return say(before + "Nothing to check for you right now: new boxes come as others draw them. Looking again in " + LOOK_AGAIN_S + " s.");
    }
    if (response.status === 403 && response.data && /quiz/.test(response.data.detail)) { window.location.href = root.dataset.quizUrl; return; }
    idle(true, "No boxes to check for you here");
    say(before + (response.data ? response.data.detail : "The server did not answer; try again."));
  }

  async function submit() {
    if (!task || busy || !answerable) return;
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
      document.getElementById("done-unit").textContent = done === 1 ? "task" : "tasks";  // of a few images each
      return next();
    }
    if (response.status === 410) {
      // The lease ran out before the answers arrived: they were not recorded; say so with what comes next.
      notice = "The time for your last task ran out before you sent it, so its answers were not recorded.";
      return next();
    }
    say(response.data ? response.data.detail : "Could not save; press Enter to retry.");
  }

  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const k = event.key;
    // Enter and Space keep their own meaning on a link or a button that is not the page's own (the top bar's links,
    // "Sign out", "Back to your campaigns"): Enter there sent the task, or did nothing, and the link was not followed.
    const target = event.target instanceof Element ? event.target : document.body;
    const control = target.closest("a[href], button, summary");
    const own = control && (control.classList.contains("tile") || control === submitButton);
    if (control && !own && (k === "Enter" || k === " " || k === "Spacebar")) return;
    // While the larger view is open, Enter only closes it: a task is never sent from under it.
    if (!zoomView.hidden && (k === "Escape" || k === "z" || k === "Z" || k === "Enter")) {
      showZoom(false); event.preventDefault(); return;
    }
    const answerKey = k === "Enter" || k === " " || k === "Spacebar" || /^[1-9]$/.test(k);
    if (answerKey && (event.repeat || !answerable)) { event.preventDefault(); return; }
    if (k === "Enter") { submit(); event.preventDefault(); }
    else if (k === " " || k === "Spacebar") { toggle(focus); event.preventDefault(); }
    else if (k === "ArrowRight") { setFocus(focus + 1); event.preventDefault(); }
    else if (k === "ArrowLeft") { setFocus(focus - 1); event.preventDefault(); }
    else if (k === "ArrowDown") { setFocus(focus + columns()); event.preventDefault(); }
    else if (k === "ArrowUp") { setFocus(focus - columns()); event.preventDefault(); }
    else if (/^[1-9]$/.test(k)) { toggle(Number(k) - 1); setFocus(Number(k) - 1); event.preventDefault(); }
    else if ((k === "z" || k === "Z") && task) { showZoom(true); event.preventDefault(); }
  });
  zoomView.addEventListener("click", () => showZoom(false));
  grid.addEventListener("focusin", (event) => {
    const t = event.target.closest(".tile");
    if (t) focus = Number(t.dataset.index);
  });
  submitButton.addEventListener("click", submit);
  // Leaving the page gives its task back: a minute later its images go to others (api.js, giveBackOnLeave).
  const shownAgain = api.giveBackBoxTask({ nextUrl: "/api/v1/campaigns/" + campaign + "/boxes/" + kind + "/next/", current: () => (task && !busy ? task.id : null), render });
  next();
})();
