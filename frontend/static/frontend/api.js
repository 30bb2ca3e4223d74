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
    // Seconds after which to ask again (a 204 of next-HIT says so when work may come soon), or null.
    const retryAfter = Number(response.headers.get("Retry-After")) || null;
    return { status: response.status, ok: response.ok, data, retryAfter };
  }
  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return Date.now().toString(36) + Math.random().toString(36).slice(2, 12);
  }
  function tile(url, label) {
    const cell = document.createElement("button");
    cell.type = "button";
    cell.className = "tile";
    cell.setAttribute("role", "gridcell");
    cell.setAttribute("aria-pressed", "false");
    const img = document.createElement("img");
    img.src = url;
    img.alt = label;
    img.decoding = "async";
    cell.appendChild(img);
    return cell;
  }
  return { request, newKey, tile };
})();
