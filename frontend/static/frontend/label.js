// The labelling page: one HIT at a time, marked with mouse or keyboard, submitted straight into the next.
//
// The page is in one phase at a time (root's data-state):
//   loading  asking for a HIT (the grid just sent stays in view, dimmed, and takes no marks)
//   shown    a HIT on screen; keys and Submit act once its images are shown and SETTLE_MS have passed
//   sending  its answers are on their way (no marks change what is being sent)
//   waiting  no work right now, the server said when to look again (204 with Retry-After)
//   failed   the next HIT could not be loaded; the page tries again by itself, or at once with "Try again"
//   expired  the lease on the HIT on screen ran out: its marks cannot be sent; "Get a new HIT"
//   signedout the session ended before a HIT was shown: a sign-in link back to this page (a submit refused
//            for that keeps its HIT shown, its marks saved for the page after signing in)
//   finished nothing more for this worker here (the server said so)
"use strict";
(function () {
  const root = document.getElementById("labeller");
  const campaign = root.dataset.campaign;
  const grid = document.getElementById("grid");
  const heading = root.querySelector("header.task h1");
  const question = [...heading.childNodes];  // "Is there a <synset> in the image?", put back with each HIT
  const synsetName = document.getElementById("synset-name");
  const article = heading.querySelector(".article");
  const gloss = document.getElementById("synset-gloss");
  const statusLine = document.getElementById("status");
  const submitButton = document.getElementById("submit");
  const retryButton = document.getElementById("retry");
  const zoom = document.getElementById("zoom");
  const api = window.synsightApi;

  // A new grid takes no key and no Submit until its images are shown and this long has passed: a second Enter
  // (a double press, a held key) must not send a HIT nobody looked at. Longer than a double press (~300 ms),
  // shorter than a person needs to judge even a few images.
  const SETTLE_MS = 600;
  const IMAGE_WAIT_MS = 15000;  // images still not loaded after this: the grid counts as shown anyway
  const SUBMIT_RETRY_MS = [500, 1000, 2000];  // a failed submit is sent again after these pauses, same key
  const NEXT_RETRY_MS = [2000, 5000, 10000, 20000, 30000];  // a failed next-HIT: then every 30 s
  const MAX_RETRY_AFTER_S = 120;  // a server's Retry-After longer than this is not waited out in full
  const LEASE_WARNING_MS = 60000;

  let phase = "loading";
  let hit = null;
  let marks = [];
  let focus = 0;
  let ready = false;
  let key = null;
  let lastSynset = null;
  let done = 0;
  let failures = 0;  // next-HIT failures in a row, for the backoff
  let asking = false;  // a next-HIT request is on its way
  let generation = 0;  // bumped whenever the page moves on: late callbacks of an older HIT do nothing
  let leaseEnd = 0;  // the lease's end by this browser's clock (ms since the epoch)
  let retryTimer = null;
  let leaseTimers = [];
  // Said once ahead of the next HIT's status: what happened to the last one.
  let notice = "";
  // How long the images of the HIT on screen have been in view: the page visible, from the moment they were
  // shown. See answersOf() for how that becomes the time per image.
  let viewedMs = 0;
  let viewSince = null;
  let viewing = false;

  function say(...parts) { statusLine.replaceChildren(...parts); }
  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }
  // The marks of the HIT on screen survive a reload (the server gives the same open HIT back).
  function saved(id) { try { return JSON.parse(sessionStorage.getItem("synsight-hit-" + id)); } catch (e) { return null; } }
  function save() {
    if (!hit) return;
    try { sessionStorage.setItem("synsight-hit-" + hit.id, JSON.stringify({ marks, key })); } catch (e) { /* private mode */ }
  }
  function forget(id) { try { sessionStorage.removeItem("synsight-hit-" + id); } catch (e) { /* private mode */ } }

  function setPhase(next) {
    phase = next;
    root.dataset.state = next;
  }

  function viewStart() {
    viewing = true;
    viewedMs = 0;
    viewSince = document.visibilityState === "visible" ? performance.now() : null;
  }
  function viewStop() {
    if (viewSince !== null) viewedMs += performance.now() - viewSince;
    viewSince = null;
    viewing = false;
  }
  function viewed() { return viewedMs + (viewSince === null ? 0 : performance.now() - viewSince); }
  document.addEventListener("visibilitychange", () => {
    if (!viewing) return;
    if (viewSince !== null) viewedMs += performance.now() - viewSince;
    viewSince = document.visibilityState === "visible" ? performance.now() : null;
  });

  function stopTimers() {
    clearTimeout(retryTimer);
    leaseTimers.forEach(clearTimeout);
    leaseTimers = [];
  }

  // The HIT just sent stays in view until the next replaces it, dimmed and out of reach of mouse and keys.
  function lockGrid(locked) {
    grid.inert = locked;
    grid.classList.toggle("sent", locked);
  }

  // No HIT on screen: the heading says what the page is doing instead, and the question, its help, the examples
  // and the Submit button are hidden (they belong to a HIT).
  function noHit(title, ...explanation) {
    generation += 1;
    stopTimers();
    viewStop();
    hit = null;
    ready = false;
    showZoom(false);
    grid.replaceChildren();
    grid.removeAttribute("data-hit");
    grid.removeAttribute("data-shown");
    lockGrid(false);
    submitButton.disabled = true;
    root.classList.add("no-hit");
    heading.textContent = title;
    gloss.replaceChildren(...explanation);
    retryButton.hidden = true;
  }

  function offer(label) {
    retryButton.textContent = label;
    retryButton.hidden = false;
  }

  // Nothing more for this worker here, as the server said (nothing left, blocked, campaign not running): the
  // heading and status line say so, and point back to the other campaigns.
  function finished(title, text) {
    const back = document.createElement("a");
    back.href = root.dataset.homeUrl;
    back.textContent = "Back to your campaigns";
    noHit(title, text + " ", back);
    setPhase("finished");
    say(title + ".");
  }

  function signInLink() {
    const link = document.createElement("a");
    link.href = root.dataset.loginUrl + "?next=" + encodeURIComponent(window.location.pathname);
    link.textContent = "Sign in again";
    return link;
  }

  function columns() { return api.gridColumns(grid); }

  function setFocus(i) {
    const tiles = grid.querySelectorAll(".tile");
    if (!tiles.length) return;
    focus = Math.max(0, Math.min(tiles.length - 1, i));
    tiles[focus].focus({ preventScroll: false });
  }

  function toggle(i) {
    const tiles = grid.querySelectorAll(".tile");
    if (phase !== "shown" || i < 0 || i >= tiles.length) return;
    marks[i] = !marks[i];
    tiles[i].classList.toggle("marked", marks[i]);
    tiles[i].setAttribute("aria-pressed", String(marks[i]));
    save();
  }

  // Resolves when every image has loaded (or failed to: a broken image is shown as such), or after IMAGE_WAIT_MS.
  function imagesShown(images) {
    const each = images.map((img) => img.decode().catch(() => null));
    return Promise.race([Promise.all(each), new Promise((resolve) => setTimeout(resolve, IMAGE_WAIT_MS))]);
  }

  function render(data, response) {
    generation += 1;
    const shown = generation;
    stopTimers();
    setPhase("shown");
    ready = false;
    hit = data;
    failures = 0;
    showZoom(false);
    retryButton.hidden = true;
    root.classList.remove("no-hit");
    heading.replaceChildren(...question);
    const kept = saved(data.id);
    const restored = kept && Array.isArray(kept.marks) && kept.marks.length === data.items.length;
    marks = restored ? kept.marks.map(Boolean) : data.items.map(() => false);
    key = restored && kept.key ? kept.key : api.newKey();
    const s = data.synset;
    // A new category is marked for a moment: consecutive HITs often ask about different synsets, and a worker going
    // fast would otherwise carry the last question over to images of the next.
    heading.classList.toggle("new-synset", lastSynset !== null && lastSynset !== s.wnid);
    lastSynset = s.wnid;
    synsetName.textContent = s.lemmas[0];
    article.textContent = /^[aeiou]/i.test(s.lemmas[0]) ? "an" : "a";
    gloss.textContent = s.gloss;
    document.getElementById("synset-lemmas").textContent = s.lemmas.join(", ");
    document.getElementById("synset-more").href = s.read_more;
    const examples = document.getElementById("examples");
    examples.replaceChildren(...data.examples.map((url, i) => {
      const img = document.createElement("img");
      img.src = url; img.alt = "Accepted example " + (i + 1); return img;
    }));
    grid.replaceChildren(...data.items.map((item, i) => {
      const cell = api.tile(item.thumbnail, "Image " + (i + 1) + " of " + data.items.length);
      cell.dataset.index = String(i);
      cell.dataset.medium = item.medium;
      cell.addEventListener("click", () => { toggle(i); setFocus(i); });
      // A long press (touch) or right click opens the larger view of this image.
      cell.addEventListener("contextmenu", (event) => { event.preventDefault(); setFocus(i); showZoom(true); });
      if (i < 9) cell.appendChild(api.keyBadge(i + 1));
      return cell;
    }));
    grid.dataset.hit = String(data.id);
    grid.removeAttribute("data-shown");
    lockGrid(false);
    marks.forEach((on, i) => {
      const tile = grid.children[i];
      tile.classList.toggle("marked", on);
      tile.setAttribute("aria-pressed", String(on));
    });
    submitButton.disabled = true;  // until the images are shown and SETTLE_MS have passed
    setFocus(0);
    imagesShown([...grid.querySelectorAll(".tile img")]).then(() => {
      if (generation !== shown) return;
      viewStart();
      grid.dataset.shown = "";  // its images are on screen: SETTLE_MS from now it takes keys and Submit
      retryTimer = setTimeout(() => {
        if (generation !== shown) return;
        ready = true;
        submitButton.disabled = false;
      }, SETTLE_MS);
    });

    const status = leaseTold(data, response) + (restored ? " · your marks were kept" : "");
    say(notice ? notice + " " + status : status);
    notice = "";
    shownAgain(data.id);
  }

  // The lease's end by this browser's clock, its warning and its end set for the HIT on screen; the status line's
  // words for it. The server's Date header says how far apart the two clocks are; it is rounded down to the second
  // and sent before the answer travels, so this errs late, never early.
  function leaseTold(data, response) {
    const shown = generation;
    leaseTimers.forEach(clearTimeout);
    const skew = response.serverDate ? response.serverDate - Date.now() : 0;
    leaseEnd = new Date(data.expires_at).getTime() - skew;
    leaseTimers = [
      setTimeout(() => {
        if (generation === shown && phase === "shown") {
          say("Less than a minute left on this HIT: press Enter to send it, or its answers are lost.");
        }
      }, Math.max(0, leaseEnd - Date.now() - LEASE_WARNING_MS)),
      setTimeout(() => { if (generation === shown) leaseEnded(); }, Math.max(0, leaseEnd - Date.now())),
    ];
    return plural(data.items.length, "image") + " · lease ends " + new Date(leaseEnd).toLocaleTimeString();
  }

  // This worker's other tab closed on the HIT shown here too, and gave it back (its pagehide): ask for it again,
  // once that goodbye has surely arrived, and keep this page as it is, marks and all, with the whole lease back.
  async function reclaim(id) {
    if (!hit || hit.id !== id || phase !== "shown" || asking) return;
    asking = true;
    const response = await ask("POST", "/api/v1/campaigns/" + campaign + "/hits/next/");
    asking = false;
    if (!hit || hit.id !== id || phase !== "shown") return;
    if (response.status === 200 && response.data.id === id) return say(leaseTold(response.data, response));
    if (response.status === 200) render(response.data, response);  // it had gone after all: the new HIT
  }

  // The lease ran out with the HIT on screen: its images went back to the queue and the server would refuse its
  // answers (410), so the marks are not kept looking sendable. A new HIT is offered rather than leased at once:
  // a worker who walked away would otherwise hold one lease after another.
  function leaseEnded() {
    if (phase !== "shown" || !hit) return;
    forget(hit.id);
    noHit("The lease on this HIT ran out",
      "Its images went back to the queue for other workers, so your marks on them could not be sent.");
    setPhase("expired");
    say("The lease on this HIT ran out: its marks can no longer be sent. Press Enter for a new HIT.");
    offer("Get a new HIT");
  }

  // Why a request failed, in plain words, from its status (0: no answer at all) and the server's sentence.
  function why(response) {
    if (response.status === 0) return "Synsight could not be reached (no network, or the server is down).";
    if (response.status === 429) return "Too many requests at once.";
    if (response.data && response.data.detail) return response.data.detail;
    return "The server had a problem (error " + response.status + ").";
  }

  function signedOut(response) {
    return response.status === 401 || (response.data && response.data.code === "not_authenticated");
  }

  async function ask(method, url, body) {
    try {
      return await api.request(method, url, body);
    } catch (error) {  // the request never got an answer (network down, connection reset)
      return { status: 0, ok: false, data: null, retryAfter: null, serverDate: null };
    }
  }

  async function next() {
    if (asking) return;  // one request at a time (a retry timer and "Try again" together)
    stopTimers();
    retryButton.hidden = true;
    if (hit) lockGrid(true);
    setPhase("loading");
    say("Loading the next HIT…");
    asking = true;
    const response = await ask("POST", "/api/v1/campaigns/" + campaign + "/hits/next/");
    asking = false;
    if (response.status === 200) return render(response.data, response);
    if (response.status === 204 && response.retryAfter) {
      // Nothing right now, but the server says some may come (images leased to others, or awaiting votes):
      // look again as often as it says, for as long as the page is open.
      const seconds = Math.min(response.retryAfter, MAX_RETRY_AFTER_S);
      noHit("No images for you right now",
        "The images left in this campaign are with other workers or awaiting their votes; more may come.");
      setPhase("waiting");
      say("No images for you right now; this page checks again every " + plural(seconds, "second") + ".");
      offer("Check now");
      retryTimer = setTimeout(next, seconds * 1000);
      return;
    }
    if (response.status === 204) {
      return finished("No more images for you in this campaign", "Thank you! Other campaigns may have work for you.");
    }
    if (signedOut(response)) {
      noHit("You are signed out");
      setPhase("signedout");
      return say("You are signed out (your session may have ended). ", signInLink(), " to go on labelling.");
    }
    if (response.status === 403 && response.data && /quiz/.test(response.data.detail)) {
      window.location.href = root.dataset.quizUrl;
      return;
    }
    if ((response.status === 403 || response.status === 404 || response.status === 409) && response.data) {
      return finished("No work for you in this campaign", response.data.detail);
    }
    failed(response);
  }

  // next-HIT failed (no answer, 429, 5xx): say so, try again by itself with a growing pause (or the server's
  // Retry-After, capped), and offer "Try again" meanwhile. The grid just sent is cleared: nothing looks active.
  function failed(response) {
    failures += 1;
    const backoff = NEXT_RETRY_MS[Math.min(failures, NEXT_RETRY_MS.length) - 1];
    const wait = response.retryAfter ? Math.min(response.retryAfter, MAX_RETRY_AFTER_S) * 1000 : backoff;
    noHit("Could not load the next HIT", done ? "Your answers so far are saved." : "");
    setPhase("failed");
    say(why(response) + " Trying again in " + plural(Math.round(wait / 1000), "second") + "…");
    offer("Try again");
    retryTimer = setTimeout(next, wait);
  }

  // The answers of the HIT on screen. The time per image is the time its images were in view (page visible)
  // divided evenly among them: a worker looks over the whole grid, marks what shows the synset and leaves the
  // rest, so no one image's time can be told apart. (The time from the grid appearing to an image's click,
  // sent before, was not a per-image time: a worker who marked the obvious ones first recorded a few hundred
  // ms for each and was blocked by the speed screen, annotation/services/screening.py, while spending ~350 ms
  // per image.) This does not help a spammer: the total is what it took, SETTLE_MS at least, so answering
  // without looking still shows as well under INHUMAN_MEDIAN_MS per image.
  function answersOf(current) {
    const each = Math.min(3600000, Math.max(0, Math.round(viewed() / current.items.length)));
    return current.items.map((item, i) => ({ item: item.id, answer: marks[i] ? "present" : "absent", ms: each }));
  }

  async function submit() {
    if (phase !== "shown" || !ready || !hit) return;
    const current = hit;
    const shown = generation;
    setPhase("sending");
    submitButton.disabled = true;
    lockGrid(true);
    const answers = answersOf(current);
    say("Saving…");
    let response;
    for (let attempt = 0; ; attempt++) {
      // The same key on every retry: the server stores the answers once however often this is sent.
      response = await ask("POST", "/api/v1/hits/" + current.id + "/submit/", { idempotency_key: key, answers });
      const transient = response.status === 0 || response.status === 429 || response.status >= 500;
      if (!transient || attempt >= SUBMIT_RETRY_MS.length) break;
      say(why(response) + " Trying again (" + (attempt + 2) + " of " + (SUBMIT_RETRY_MS.length + 1) + ")…");
      const pause = Math.max(SUBMIT_RETRY_MS[attempt], Math.min(response.retryAfter || 0, 5) * 1000);
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
    if (generation !== shown) return;  // the lease ran out meanwhile: the page has moved on
    if (response.status === 201 || response.status === 200) {
      forget(current.id);
      viewStop();
      done += 1;
      document.getElementById("done-count").textContent = String(done);
      document.getElementById("done-unit").textContent = done === 1 ? "HIT" : "HITs";
      return next();
    }
    if (response.status === 410) {
      // The lease ran out before the answers arrived: they were not recorded (nor paid); say so with the next HIT.
      forget(current.id);
      notice = "The lease on your last HIT ran out before you sent it, so its answers were not recorded.";
      return next();
    }
    if (response.status === 409 && response.data && response.data.code === "conflict") {
      // Already submitted — from another tab or window of this worker, or earlier from this one with answers
      // since changed: what was recorded stands. Move on rather than send it again and again.
      forget(current.id);
      notice = response.data.detail + " This page moved on to the next HIT.";
      return next();
    }
    setPhase("shown");
    lockGrid(false);
    submitButton.disabled = false;
    if (signedOut(response)) {
      // The marks and key are kept for this page after signing in (the server gives the same HIT back), and
      // Enter sends them from here once signed in again in another tab.
      save();
      return say("You are signed out (your session may have ended), so this HIT was not sent. ", signInLink(),
        " to send it: your marks are kept.");
    }
    const transient = response.status === 0 || response.status === 429 || response.status >= 500;
    say(why(response) + (transient ? " Your marks are kept; press Enter to try again." : ""));
  }

  function showZoom(open) {
    if (open && !hit) return;
    if (open) {
      const tile = grid.querySelectorAll(".tile")[focus];
      zoom.querySelector("img").src = tile.dataset.medium;
      zoom.querySelector("img").alt = tile.querySelector("img").alt + ", enlarged";
    }
    zoom.hidden = !open;
  }

  const MARKING = /^([1-9]| |Spacebar)$/;
  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target instanceof Element ? event.target : document.body;
    if (target.closest("input, textarea, select, [contenteditable]:not([contenteditable='false'])")) return;
    const k = event.key;
    // Enter and Space keep their own meaning on a link or a button that is not the page's own (the top bar's
    // links, "Sign out", "read more", "Try again"): only on a tile, the Submit button or the page do they act here.
    const control = target.closest("a[href], button, summary");
    if (control && !control.classList.contains("tile") && control !== submitButton && (k === "Enter" || MARKING.test(k))) {
      return;
    }
    // While the larger view is open, Enter only closes it: a HIT is never sent from under it.
    if (!zoom.hidden && (k === "Escape" || k === "z" || k === "Z" || k === "Enter")) { showZoom(false); event.preventDefault(); return; }
    if (k === "Enter" || MARKING.test(k)) {
      event.preventDefault();  // also keeps a focused tile from toggling itself, as a button does on Enter/Space
      // A held key repeats: never a second submit or a run of toggles; nor keys before the grid is settled.
      if (event.repeat) return;
      if (k === "Enter") {
        if (phase === "shown") submit();
        else if (!retryButton.hidden) next();
        return;
      }
      if (!ready) return;
      if (k === " " || k === "Spacebar") toggle(focus);
      else { toggle(Number(k) - 1); setFocus(Number(k) - 1); }
    }
    else if (k === "ArrowRight") { setFocus(focus + 1); event.preventDefault(); }
    else if (k === "ArrowLeft") { setFocus(focus - 1); event.preventDefault(); }
    else if (k === "ArrowDown") { setFocus(focus + columns()); event.preventDefault(); }
    else if (k === "ArrowUp") { setFocus(focus - columns()); event.preventDefault(); }
    else if (k === "z" || k === "Z") { showZoom(true); event.preventDefault(); }
  });
  grid.addEventListener("focusin", (event) => {
    const tile = event.target.closest(".tile");
    if (tile) focus = Number(tile.dataset.index);
  });
  zoom.addEventListener("click", () => showZoom(false));
  submitButton.addEventListener("click", submit);
  retryButton.addEventListener("click", next);
  // Closing or reloading the page gives its HIT back: the images return to the queue a minute later unless this
  // worker asks for the HIT again meanwhile — a reload does, and gets the whole lease and its kept marks back. A page
  // restored from the back/forward cache asks again too.
  const shownAgain = api.giveBackOnLeave({
    channel: "synsight-labelling",
    current: () => (hit && phase === "shown" ? hit.id : null),
    releaseUrl: (id) => "/api/v1/hits/" + id + "/release/",
    reclaim,
  });
  window.addEventListener("pageshow", (event) => { if (event.persisted && hit && phase === "shown") next(); });
  noHit("Finding images for you…");
  next();
})();
