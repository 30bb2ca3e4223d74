// The drawing page: one image at a time on a canvas; the worker draws one box (pointer events: mouse, pen
// and touch), adjusts it with corner handles or by dragging it, zooms for small objects, and answers with
// the keyboard or the buttons. Boxes are sent in whole pixels of the displayed image (x2, y2 exclusive).
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
  let task = null, index = 0, answers = [], key = null, done = 0, busy = false;
  let img = null, W = 0, H = 0, fit = 1, zoom = 1, ox = 0, oy = 0; // view: canvas = (image - o) * fit * zoom
  let box = null; // [x1, y1, x2, y2] in image pixels (floats while dragging)
  let drag = null, shownAt = 0;

  function say(text) { statusLine.textContent = text; }
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
    for (const b of task ? task.items[index].boxes : []) rect(b, "rgba(220,220,220,.95)", 2, [6, 4]);
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
      box = r[2] - r[0] >= 1 && r[3] - r[1] >= 1 ? r : null;
    }
    draw();
    if (box) say("Box " + box.join(", ") + " — press Enter to confirm.");
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

  function show() {
    const item = task.items[index];
    W = item.image.width;
    H = item.image.height;
    box = null; zoom = 1; ox = 0; oy = 0;
    document.getElementById("position").textContent = String(index + 1);
    img = new Image();
    img.onload = () => { layout(); canvas.dataset.ready = String(item.id); };
    canvas.dataset.ready = "";
    img.src = item.image.medium;
    shownAt = performance.now();
    layout();
    say(item.boxes.length ? item.boxes.length + " instance(s) already boxed." : "Nothing boxed yet.");
  }

  function answer(kind) {
    if (!task || busy) return;
    if (kind === "box" && !box) { say("Draw a box first (drag on the image)."); return; }
    const item = task.items[index];
    const entry = { item: item.id, answer: kind, ms: Math.min(3600000, Math.round(performance.now() - shownAt)) };
    if (kind === "box") entry.boxes = [box.slice()];
    answers.push(entry);
    index += 1;
    if (index < task.items.length) show();
    else submit();
  }

  // No task on screen (none right now, or none for this worker): no question, no canvas, no buttons; the status
  // line says why and when the page looks again.
  function idle(on) {
    root.querySelector("header.task h1").hidden = on;
    root.querySelector(".help").hidden = on;
    stage.style.display = on ? "none" : "";  // .stage sets display, which outweighs the hidden attribute
    root.querySelectorAll(".actions button").forEach((button) => { button.hidden = on; });
  }

  function render(data) {
    idle(false);
    task = data; index = 0; answers = []; key = api.newKey();
    document.getElementById("synset-name").textContent = data.synset.lemmas[0];
    document.getElementById("synset-gloss").textContent = data.synset.gloss;
    document.getElementById("count").textContent = String(data.items.length);
    show();
  }

  async function next() {
    busy = true;
    say("Loading the next images…");
    const response = await api.request("POST", "/api/v1/campaigns/" + campaign + "/boxes/draw/next/");
    busy = false;
    if (response.status === 200) return render(response.data);
    task = null; img = null; box = null;
    draw();
    idle(true);
    if (response.status === 204) {
      // Box work arrives as images are accepted and boxes drawn: look again while the page is open.
      setTimeout(next, LOOK_AGAIN_S * 1000);
      return say("No images to box for you right now: new ones come as images are accepted. Looking again in " + LOOK_AGAIN_S + " s.");
    }
    if (response.status === 403 && /quiz/.test(response.data.detail)) { window.location.href = root.dataset.quizUrl; return; }
    say(response.data ? response.data.detail : "The server did not answer; try again.");
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
      done += 1;
      document.getElementById("done-count").textContent = String(done);
      return next();
    }
    if (response.status === 410) return next();
    // Let the worker fix the last image and try again.
    answers.pop(); index -= 1;
    say(response.data ? response.data.detail : "Could not save; press Enter to retry.");
  }

  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const k = event.key;
    const handled = {
      Enter: () => answer("box"),
      Delete: () => { box = null; draw(); },
      Backspace: () => { box = null; draw(); },
      s: () => answer("skip"), S: () => answer("skip"),
      n: () => answer("no_more"), N: () => answer("no_more"),
      x: () => answer("not_present"), X: () => answer("not_present"),
      "+": () => setZoom(zoom * 1.5, ...focusPoint()), "=": () => setZoom(zoom * 1.5, ...focusPoint()),
      "-": () => setZoom(zoom / 1.5, ...focusPoint()),
      0: () => setZoom(1, 0, 0),
    }[k];
    if (handled) { handled(); event.preventDefault(); }
  });
  document.getElementById("confirm").addEventListener("click", () => answer("box"));
  document.getElementById("delete").addEventListener("click", () => { box = null; draw(); });
  document.getElementById("no-more").addEventListener("click", () => answer("no_more"));
  document.getElementById("absent").addEventListener("click", () => answer("not_present"));
  document.getElementById("skip").addEventListener("click", () => answer("skip"));
  window.addEventListener("resize", () => { if (task) layout(); });
  next();
})();
