// Small fetch wrapper for Synsight's JSON API: session cookie auth with Django's CSRF header.
"use strict";
window.synsightApi = (function () {
  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }
  async function request(method, url, body) {
    const options = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    if (method !== "GET") options.headers["X-CSRFToken"] = csrfToken();
    const response = await fetch(url, options);
    const data = response.status === 204 ? null : await response.json().catch(() => null);
    return {
      status: response.status,
      ok: response.ok,
      data,
      retryAfter: retryAfterSeconds(response.headers.get("Retry-After")),
      // The server's clock when it answered (ms since the epoch, to the second; the Date header), or null: lets a
      // page compare a time the server sent (a lease's end) with the browser's own clock, which may be off.
      serverDate: Date.parse(response.headers.get("Date") || "") || null,
    };
  }
  // Seconds after which to ask again (a 204 of next-HIT when work may come soon, a 503 or 429), or null. The
  // header is a number of seconds or an HTTP date (RFC 9110 §10.2.3).
  function retryAfterSeconds(header) {
    if (!header) return null;
    const seconds = Number(header);
    if (Number.isFinite(seconds)) return seconds > 0 ? seconds : null;
    const when = Date.parse(header);
    return Number.isNaN(when) ? null : Math.max(1, Math.ceil((when - Date.now()) / 1000));
  }
  // A POST that outlives the page (sent from pagehide): no answer is read, none can be.
  function goodbye(url) {
    try {
      fetch(url, {
        method: "POST", keepalive: true, credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
      }).catch(() => {});
    } catch (error) { /* the page is going anyway */ }
  }
  // A page holding a lease (a HIT, a box task) gives it back when it closes or reloads: the server ends the lease a
  // minute later unless the worker asks for the work again meanwhile, as a reload does (annotation/services/
  // leases.py). Another tab of the worker showing the same work hears of it on a BroadcastChannel and asks again
  // (reclaim), once the goodbye has surely arrived. current(): the shown work's id, or null when nothing is held.
  const RECLAIM_AFTER_MS = 3000;
  const GAVE_BACK = "synsight-gave-back";
  function giveBackOnLeave({ channel, current, releaseUrl, reclaim }) {
    const tabs = window.BroadcastChannel ? new BroadcastChannel(channel) : null;
    if (tabs) tabs.onmessage = (event) => {
      if (event.data && event.data.released) setTimeout(() => reclaim(event.data.released), RECLAIM_AFTER_MS);
    };
    window.addEventListener("pagehide", () => {
      const id = current();
      if (id === null || id === undefined) return;
      goodbye(releaseUrl(id));
      try { sessionStorage.setItem(GAVE_BACK, channel + ":" + id); } catch (e) { /* private mode */ }
      if (tabs) tabs.postMessage({ released: id });
    });
    // This tab's own goodbye (a reload) can reach the server after the reloaded page has asked for the same work
    // again (CI saw it): the page calls shown(id) whenever work is on screen, and work this tab gave back is
    // asked for once more, after that goodbye has surely arrived.
    return function shown(id) {
      let marked = null;
      try { marked = sessionStorage.getItem(GAVE_BACK); sessionStorage.removeItem(GAVE_BACK); } catch (e) { /* private mode */ }
      if (marked === channel + ":" + id) setTimeout(() => reclaim(id), RECLAIM_AFTER_MS);
    };
  }
  // The box pages' use of it: a task another tab gave back is asked for again and stays as it is on screen,
  // unless it had gone meanwhile (then the new one is shown); a page back from the back/forward cache asks too.
  function giveBackBoxTask({ nextUrl, current, render }) {
    async function reclaim(id) {
      if (current() !== id) return;
      const response = await request("POST", nextUrl);
      if (response.status === 200 && current() === id && response.data.id !== id) render(response.data);
    }
    const shown = giveBackOnLeave({ channel: "synsight-boxes", current, releaseUrl: (id) => "/api/v1/box-tasks/" + id + "/release/", reclaim });
    window.addEventListener("pageshow", (event) => {
      const id = current();
      if (event.persisted && id !== null) reclaim(id);
    });
    return shown;
  }
  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
  }
  // An image of a grid as a toggle button: its name is the image's place ("Image 3 of 24"), its state
  // aria-pressed (marked or not), which screen readers say as such.
  function tile(url, label) {
    const cell = document.createElement("button");
    cell.type = "button";
    cell.className = "tile";
    cell.setAttribute("aria-pressed", "false");
    const img = document.createElement("img");
    img.src = url;
    img.alt = label;
    img.decoding = "async";
    cell.appendChild(img);
    return cell;
  }
  // The number key that toggles a tile, shown on it; not part of its name (the name already says its place).
  function keyBadge(n) {
    const badge = document.createElement("span");
    badge.className = "key";
    badge.setAttribute("aria-hidden", "true");
    badge.textContent = String(n);
    return badge;
  }
  // How many tiles a grid shows per row as laid out now (the arrow keys' up and down move by it).
  function gridColumns(grid) {
    const tiles = grid.querySelectorAll(".tile");
    if (tiles.length < 2) return 1;
    const top = tiles[0].offsetTop;
    let n = 0;
    while (n < tiles.length && tiles[n].offsetTop === top) n++;
    return Math.max(n, 1);
  }
  return { request, giveBackOnLeave, giveBackBoxTask, newKey, tile, keyBadge, gridColumns };
})();
