// The drawing page: one image at a time on a canvas; the worker draws one box (pointer events: mouse, pen
// and touch), adjusts it with corner handles or by dragging it, zooms for small objects, and answers with
// the keyboard or the buttons. Boxes are sent in whole pixels of the displayed image (x2, y2 exclusive).
// Keyboard drawing: B puts a box in the middle of the view, arrows move it, Shift+arrows resize it (from its
// lower right corner), Alt makes the step larger.
"use strict";
(function () {
  const root = document.getElementById("drawer");
  const campaign = root.dataset.campaign;
  const canvas = document.getElementById("canvas");
  const stage = document.getElementById("stage");
  const ctx = canvas.getContext("2d");
  const statusLine = document.getElementById("status");
  const api = window.synsightApi;
  const LOOK_AGAIN_S = Number(root.dataset.lookAgain) || 20;  // after "no work right now"
  const HANDLE = 8; // CSS px around a corner that grabs it
  // An answer key held down, or pressed again as the next image appears, must not answer that image: key
  // repeats are ignored, and S, N and X wait until the image has loaded and has been on screen this long.
  const ANSWER_PAUSE_MS = 400;
  const MIN_BOX_CSS = 4; // a drag smaller than this many screen px (either side) draws no box
  const STEP = 2, BIG_STEP = 20; // image px per arrow press (with Alt: BIG_STEP)
  let task = null, index = 0, answers = [], key = null, done = 0, busy = false;
  let answerable = false, pauseTimer = null;
  let notice = ""; // said once ahead of the next task's status: what happened to the last one
  let img = null, W = 0, H = 0, fit = 1, zoom = 1, ox = 0, oy = 0; // view: canvas = (image - o) * fit * zoom
  let box = null; // [x1, y1, x2, y2] in image pixels (floats while dragging)
  let drag = null, shownAt = 0;

  function say(text) { statusLine.textContent = text; }
  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
  // The answers given so far survive a reload (the server gives the same open task back); cleared on submit.
  function storeKey(id) { return "synsight-box-task-" + id; }
  function saved(id) { try { return JSON.parse(sessionStorage.getItem(storeKey(id))); } catch (e) { return null; } }
  function save() {
    if (!task) return;
    try { sessionStorage.setItem(storeKey(task.id), JSON.stringify({ answers, key })); } catch (e) { /* private mode */ }
  }
  function forget(id) { try { sessionStorage.removeItem(storeKey(id)); } catch (e) { /* private mode */ } }
  function setAnswerable(on) {
    answerable = on;
    root.dataset.answerable = String(on);  // for tests: when an answer key is taken
  }
  function boxStatus() {
    const item = task.items[index];
    const others = item.boxes.length ? " (" + item.boxes.length + " already boxed)" : "";
    return "Your box: " + (box[2] - box[0]) + " × " + (box[3] - box[1]) + " px of " + W + " × " + H + others +
      " — press Enter to confirm.";
  }
  function scale() { return fit * zoom; }
  function toImage(event) {
    const rect = canvas.getBoundingClientRect();
    return [(event.clientX - rect.left) / scale() + ox, (event.clientY - rect.top) / scale() + oy];
  }
  function clampX(x) { return Math.max(0, Math.min(W, x)); }
  function clampY(y) { return Math.max(0, Math.min(H, y)); }

  function layout() {
    // The canvas keeps the image's aspect ratio and fits the stage: CSS px map to image px by `fit`.
    const maxW = Math.max(200, stage.clientWidth - 12);
    const maxH = Math.max(200, window.innerHeight - stage.getBoundingClientRect().top - 110);
    fit = Math.min(maxW / W, maxH / H, 4);
    const cssW = Math.round(W * fit), cssH = Math.round(H * fit);
    fit = cssW / W;
    const dpr = window.devicePixelRatio || 1;
    canvas.style.width = cssW + "px";
    canvas.style.height = cssH + "px";
    canvas.width = Math.round(cssW * dpr);
    canvas.height = Math.round(cssH * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    canvas.dataset.scale = String(fit);
    draw();
  }

  function rect(b, color, width, dash) {
    const s = scale();
    ctx.setLineDash(dash || []);
    ctx.lineWidth = width;
    ctx.strokeStyle = color;
    ctx.strokeRect((b[0] - ox) * s, (b[1] - oy) * s, (b[2] - b[0]) * s, (b[3] - b[1]) * s);
  }

  function draw() {
    const s = scale();
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (img) ctx.drawImage(img, -ox * s, -oy * s, W * s, H * s);
    const item = task && task.items[index];
    for (const b of item ? item.boxes : []) rect(b, "rgba(220,220,220,.95)", 2, [6, 4]);
    if (box) {
      rect(box, "#000", 4);
      rect(box, "#ffeb3b", 2);
      ctx.setLineDash([]);
      ctx.fillStyle = "#ffeb3b";
      for (const [x, y] of corners(box)) ctx.fillRect((x - ox) * s - 4, (y - oy) * s - 4, 8, 8);
    }
  }

  function corners(b) { return [[b[0], b[1]], [b[2], b[1]], [b[0], b[3]], [b[2], b[3]]]; }
  function normalised(b) {
    return [Math.min(b[0], b[2]), Math.min(b[1], b[3]), Math.max(b[0], b[2]), Math.max(b[1], b[3])];
  }
  function rounded(b) {
    const n = normalised(b).map(Math.round);
    return [clampX(n[0]), clampY(n[1]), clampX(n[2]), clampY(n[3])];
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (!task || busy) return;
    canvas.focus();
    canvas.setPointerCapture(event.pointerId);
    const [x, y] = toImage(event);
    const tolerance = HANDLE / scale();
    if (box) {
      const hit = corners(box).findIndex(([cx, cy]) => Math.abs(cx - x) <= tolerance && Math.abs(cy - y) <= tolerance);
      if (hit >= 0) {
        // Resize: the opposite corner stays put.
        const c = corners(box)[3 - hit];
        drag = { mode: "draw", ax: c[0], ay: c[1] };
        return;
      }
      const n = normalised(box);
      if (x > n[0] && x < n[2] && y > n[1] && y < n[3]) { drag = { mode: "move", x, y, start: n }; return; }
    }
    drag = { mode: "draw", ax: clampX(x), ay: clampY(y) };
    box = [drag.ax, drag.ay, drag.ax, drag.ay];
    draw();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const [x, y] = toImage(event);
    if (drag.mode === "draw") {
      box = [drag.ax, drag.ay, clampX(x), clampY(y)];
    } else {
      const s = drag.start;
      const dx = Math.max(-s[0], Math.min(W - s[2], x - drag.x));
      const dy = Math.max(-s[1], Math.min(H - s[3], y - drag.y));
      box = [s[0] + dx, s[1] + dy, s[2] + dx, s[3] + dy];
    }
    draw();
  });
  function endDrag() {
    if (!drag) return;
    drag = null;
    if (box) {
      const r = rounded(box);
      const s = scale();
      box = (r[2] - r[0]) * s >= MIN_BOX_CSS && (r[3] - r[1]) * s >= MIN_BOX_CSS ? r : null;
      say(box ? boxStatus() : "Too small — drag across the object to draw a box.");
    }
    draw();
  }
  canvas.addEventListener("pointerup", endDrag);
  canvas.addEventListener("pointercancel", endDrag);

  function setZoom(z, cx, cy) {
    // Zoom around (cx, cy) in image pixels, keeping the view inside the image.
    const before = scale();
    zoom = Math.max(1, Math.min(8, z));
    const s = scale();
    ox = cx - (cx - ox) * before / s;
    oy = cy - (cy - oy) * before / s;
    const viewW = (W * fit) / s, viewH = (H * fit) / s;
    ox = Math.max(0, Math.min(W - viewW, ox));
    oy = Math.max(0, Math.min(H - viewH, oy));
    draw();
  }
  canvas.addEventListener("wheel", (event) => {
    event.preventDefault();
    const [x, y] = toImage(event);
    setZoom(zoom * (event.deltaY < 0 ? 1.25 : 0.8), x, y);
  }, { passive: false });

  function focusPoint() {
    if (box) return [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2];
    return [ox + (W * fit) / scale() / 2, oy + (H * fit) / scale() / 2];
  }

  function removeBox() {
    if (!task || !box) return;
    box = null;
    draw();
    say("Box removed — drag on the image (or press B) to draw one.");
  }

  function keyboardBox() {
    // A box of a third of the visible part of the image, in its middle.
    const viewW = (W * fit) / scale(), viewH = (H * fit) / scale();
    const cx = ox + viewW / 2, cy = oy + viewH / 2;
    box = rounded([cx - viewW / 6, cy - viewH / 6, cx + viewW / 6, cy + viewH / 6]);
    draw();
    say(boxStatus());
  }

  function nudge(dx, dy, resize) {
    if (!box) return;
    if (resize) {
      box = [box[0], box[1], Math.max(box[0] + 1, Math.min(W, box[2] + dx)), Math.max(box[1] + 1, Math.min(H, box[3] + dy))];
    } else {
      dx = Math.max(-box[0], Math.min(W - box[2], dx));
      dy = Math.max(-box[1], Math.min(H - box[3], dy));
      box = [box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy];
    }
    draw();
    say(boxStatus());
  }

  function show() {
    const item = task.items[index];
    W = item.image.width;
    H = item.image.height;
    box = null; zoom = 1; ox = 0; oy = 0;
    document.getElementById("position").textContent = String(index + 1);
    document.getElementById("back").disabled = index === 0;
    clearTimeout(pauseTimer);
    setAnswerable(false);
    const loading = new Image();
    img = loading;
    const status = item.boxes.length ? plural(item.boxes.length, "instance") + " already boxed." : "Nothing boxed yet.";
    function shown(text) {
      // An image of an earlier item (answered meanwhile) or of an earlier task changes nothing.
      if (img !== loading) return;
      layout();
      canvas.dataset.ready = String(item.id);
      shownAt = performance.now();
      pauseTimer = setTimeout(() => { if (img === loading) setAnswerable(true); }, ANSWER_PAUSE_MS);
      if (text) say(text);
    }
    loading.onload = () => shown(null);
    loading.onerror = () => shown("This image did not load: press S to skip it.");
    canvas.dataset.ready = "";
    loading.src = item.image.medium;
    shownAt = performance.now();
    layout();
    say(notice ? notice + " " + status : status);
    notice = "";
  }

  function answer(kind) {
    // A box drawn on this image is answer enough that the worker has seen it: Enter confirms it at once.
    if (!task || busy || (kind !== "box" && !answerable)) return;
    if (kind === "box" && !box) { say("Draw a box first (drag on the image, or press B)."); return; }
    const item = task.items[index];
    const entry = { item: item.id, answer: kind, ms: Math.min(3600000, Math.round(performance.now() - shownAt)) };
    if (kind === "box") entry.boxes = [box.slice()];
    answers.push(entry);
    index += 1;
    save();
    if (index < task.items.length) show();
    else submit();
  }

  // Back to the previous image of this task, its answer taken back (a slip of X, N or S), its box on it again
  // to adjust or confirm. Nothing has been sent: a task's answers go together after its last image.
  function back() {
    if (!task || busy || index === 0) return;
    const last = answers.pop();
    index -= 1;
    save();
    show();
    if (last.boxes) { box = last.boxes[0]; draw(); }
    say(`Back to image ${index + 1}: its answer was taken back; answer it again.`);
  }

  // No task on screen (none right now, or none for this worker): no question, no canvas, no buttons; the status
  // line says why and when the page looks again.
  function idle(on, heading) {
    root.querySelector("header.task h1").hidden = on;
    document.getElementById("synset-gloss").hidden = on;
    document.getElementById("progress").hidden = on;
    root.querySelector(".help").hidden = on;
    const away = document.getElementById("idle");
    away.hidden = !on;
    if (on) away.querySelector("h1").textContent = heading;
    stage.style.display = on ? "none" : "";  // .stage sets display, which outweighs the hidden attribute
    root.querySelectorAll(".actions button").forEach((button) => { button.hidden = on; });
  }

  function render(data) {
    idle(false);
    shownAgain(data.id);
    task = data; index = 0; answers = []; key = api.newKey();
    const kept = saved(data.id);
    const ids = data.items.map((item) => item.id);
    if (kept && Array.isArray(kept.answers) && kept.key && kept.answers.length <= ids.length &&
        kept.answers.every((entry, i) => entry && entry.item === ids[i])) {
      answers = kept.answers; index = answers.length; key = kept.key;
      if (answers.length) notice = notice ? notice : "Your work on this task was kept.";
    }
    document.getElementById("synset-name").textContent = data.synset.lemmas[0];
    document.getElementById("synset-gloss").textContent = data.synset.gloss;
    document.getElementById("count").textContent = String(data.items.length);
    // Every image answered before the reload, but not sent (or its answer lost): send it again, same key.
    if (index === ids.length) return submit();
    show();
  }

  async function next() {
    busy = true;
    say("Loading the next images…");
    const response = await api.request("POST", "/api/v1/campaigns/" + campaign + "/boxes/draw/next/");
    busy = false;
    if (response.status === 200) return render(response.data);
    task = null; img = null; box = null;
    clearTimeout(pauseTimer);
    setAnswerable(false);
    draw();
    const before = notice ? notice + " " : "";
    notice = "";
    if (response.status === 204) {
      // Box work arrives as images are accepted and boxes drawn: look again while the page is open.
      idle(true, "No images to box for you right now");
      setTimeout(next, LOOK_AGAIN_S * 1000);
      return say(before + "No images to box for you right now: new ones come as images are accepted. Looking again in " + LOOK_AGAIN_S + " s.");
    }
    if (response.status === 403 && response.data && /quiz/.test(response.data.detail)) { window.location.href = root.dataset.quizUrl; return; }
    idle(true, "No boxes to draw for you here");
    say(before + (response.data ? response.data.detail : "The server did not answer; try again."));
  }

  async function submit() {
    busy = true;
    say("Saving…");
    let response;
    for (let attempt = 0; attempt < 3; attempt++) {
      response = await api.request("POST", "/api/v1/box-tasks/" + task.id + "/submit/", { idempotency_key: key, answers })
        .catch(() => ({ status: 0, data: null }));
      if (response.status !== 0 && response.status < 500) break;
    }
    busy = false;
    if (response.status === 201 || response.status === 200) {
      forget(task.id);
      done += 1;
      document.getElementById("done-count").textContent = String(done);
      document.getElementById("done-unit").textContent = done === 1 ? "task" : "tasks";  // of a few images each
      return next();
    }
    if (response.status === 410) {
      // The lease ran out before the answers arrived: they were not recorded; say so with what comes next.
      forget(task.id);
      notice = "The time for your last task ran out before you sent it, so its answers were not recorded.";
      return next();
    }
    // Let the worker fix the last image and try again (it is put back on screen if a reload took it away).
    const last = answers.pop(); index -= 1;
    save();
    if (canvas.dataset.ready !== String(task.items[index].id)) show();
    if (last.boxes) { box = last.boxes[0]; draw(); }
    say(response.data ? response.data.detail : "Could not save; press Enter to retry.");
  }

  const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || !task) return;
    const k = event.key;
    // Enter on a focused button or link does what it says (Skip, Not present, a top bar link): it confirmed a box
    // instead, or said "Draw a box first", and the button was never pressed. Held down, it presses once.
    const target = event.target instanceof Element ? event.target : document.body;
    if (k === "Enter" && target.closest("a[href], button, summary")) {
      if (event.repeat) event.preventDefault();
      return;
    }
    if (ARROWS[k] && box) {
      // Arrows repeat while held: that is how a box travels. Alt makes the step larger.
      const step = event.altKey ? BIG_STEP : STEP;
      nudge(ARROWS[k][0] * step, ARROWS[k][1] * step, event.shiftKey);
      event.preventDefault();
      return;
    }
    if (event.altKey) return;
    const answerKeys = {
      Enter: () => answer("box"),
      s: () => answer("skip"), S: () => answer("skip"),
      n: () => answer("no_more"), N: () => answer("no_more"),
      x: () => answer("not_present"), X: () => answer("not_present"),
      u: back, U: back,
    };
    if (answerKeys[k]) {
      event.preventDefault();
      if (!event.repeat) answerKeys[k]();
      return;
    }
    const handled = {
      Delete: removeBox,
      Backspace: removeBox,
      b: keyboardBox, B: keyboardBox,
      "+": () => setZoom(zoom * 1.5, ...focusPoint()), "=": () => setZoom(zoom * 1.5, ...focusPoint()),
      "-": () => setZoom(zoom / 1.5, ...focusPoint()),
      0: () => setZoom(1, 0, 0),
    }[k];
    if (handled) { handled(); event.preventDefault(); }
  });
  // After a button, the focus goes back to the image: the next Enter confirms the next box, as the page says, rather
  // than pressing that button again (a skip where a box was drawn).
  const then = (action) => () => { action(); if (task) canvas.focus(); };
  document.getElementById("confirm").addEventListener("click", then(() => answer("box")));
  document.getElementById("delete").addEventListener("click", then(removeBox));
  document.getElementById("no-more").addEventListener("click", then(() => answer("no_more")));
  document.getElementById("absent").addEventListener("click", then(() => answer("not_present")));
  document.getElementById("skip").addEventListener("click", then(() => answer("skip")));
  document.getElementById("back").addEventListener("click", then(back));
  window.addEventListener("resize", () => { if (task) layout(); });
  // Leaving the page gives its task back: a minute later its images go to others (api.js, giveBackOnLeave).
  const shownAgain = api.giveBackBoxTask({ nextUrl: "/api/v1/campaigns/" + campaign + "/boxes/draw/next/", current: () => (task && !busy ? task.id : null), render });
  next();
})();
