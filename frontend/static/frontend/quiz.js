// The qualification quiz: a grid of gold images, each with its category; pass to start labelling.
"use strict";
(function () {
  const root = document.getElementById("quiz");
  const grid = document.getElementById("quiz-grid");
  const statusLine = document.getElementById("quiz-status");
  const api = window.synsightApi;
  const submitButton = document.getElementById("quiz-submit");
  const retryButton = document.getElementById("quiz-retry");
  let attempt = null;
  let busy = false;
  let marks = {};

  function inWords(seconds) {
    if (seconds < 90) return seconds + (seconds === 1 ? " second" : " seconds");
    const minutes = Math.ceil(seconds / 60);
    return minutes + " minutes";
  }

  // After a failed quiz: say when a new one may start, and offer it then (the server refuses it before).
  function offerRetry(seconds, before) {
    retryButton.hidden = false;
    retryButton.disabled = true;
    const until = Date.now() + seconds * 1000;
    const tick = () => {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left <= 0) {
        statusLine.textContent = before + "You can try again now.";
        retryButton.disabled = false;
        retryButton.focus();
        return;
      }
      statusLine.textContent = before + "You can try again in " + inWords(left) + ".";
      setTimeout(tick, Math.min(1000, left * 1000));
    };
    tick();
  }

  retryButton.addEventListener("click", () => {
    retryButton.hidden = true;
    statusLine.textContent = "";
    start();
  });

  async function start() {
    const response = await api.request("POST", "/api/v1/campaigns/" + root.dataset.campaign + "/quiz/");
    if (response.status !== 201) {
      statusLine.textContent = response.data ? response.data.detail : "Could not start the quiz.";
      const wait = response.status === 403 && /try the quiz again in (\d+) seconds/.exec(statusLine.textContent);
      if (wait) { offerRetry(Number(wait[1]), ""); return; }
      if (response.status === 409 && /already qualified/.test(statusLine.textContent)) {
        window.location.href = root.dataset.labelUrl;
      }
      return;
    }
    attempt = response.data;
    marks = {};
    if (attempt.synset) {
      // A campaign with a quiz per synset: say which synset this quiz opens.
      const name = attempt.synset.lemmas[0];
      document.getElementById("quiz-title").textContent = "Qualification quiz: " + name;
      document.title = "Quiz · " + name;
      document.getElementById("quiz-scope").textContent = "Passing it lets you label images of “" + name +
        "” in " + root.dataset.campaignName + "; each category of this campaign has its own quiz. ";
    }
    grid.replaceChildren(...attempt.items.map((item, i) => {
      marks[item.id] = false;
      const cell = api.tile(item.thumbnail, "Image " + (i + 1) + " of " + attempt.items.length);
      const caption = document.createElement("span");
      caption.className = "caption";
      caption.textContent = item.synset.lemmas[0] + "?";
      cell.appendChild(caption);
      cell.addEventListener("click", () => {
        marks[item.id] = !marks[item.id];
        cell.classList.toggle("marked", marks[item.id]);
        cell.setAttribute("aria-pressed", String(marks[item.id]));
      });
      if (i < 9) cell.appendChild(api.keyBadge(i + 1));
      return cell;
    }));
    grid.querySelector(".tile").focus();
    submitButton.disabled = false;  // disabled in the page until the quiz is shown
  }

  async function submit() {
    // One answer per attempt: a second Enter while the first is on its way would only earn a 409.
    if (!attempt || busy) return;
    busy = true;
    submitButton.disabled = true;
    const response = await api.request("POST", "/api/v1/quizzes/" + attempt.id + "/submit/", { answers: marks })
      .catch(() => ({ status: 0, data: null }));  // the server did not answer: the same attempt may be sent again
    busy = false;
    if (response.status !== 200) {
      submitButton.disabled = false;
      statusLine.textContent = response.data ? response.data.detail : "Could not submit the quiz.";
      return;
    }
    const score = Math.round(response.data.score * 100);
    if (response.data.passed) {
      statusLine.textContent = "Passed with " + score + "%. Starting work…";
      window.location.href = root.dataset.labelUrl;
    } else {
      attempt = null;
      offerRetry(response.data.retry_in || 0, "Score " + score + "%: not enough this time. ");
    }
  }

  submitButton.addEventListener("click", submit);
  // The labelling page's keys, so that the quiz teaches them: arrows move among the images, 1-9 toggle one,
  // Space toggles the focused one (a button's own Space), Enter sends the quiz.
  const ARROWS = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: "down", ArrowUp: "up" };
  document.addEventListener("keydown", (event) => {
    if (!attempt || event.altKey || event.ctrlKey || event.metaKey) return;
    // Keys keep their own meaning on a link or a button that is not the quiz's own (the top bar's links, "Sign
    // out"): Enter sent the quiz instead, and the link was not followed. On an image, Submit or the page they act.
    const target = event.target instanceof Element ? event.target : document.body;
    const control = target.closest("a[href], button, summary");
    if (control && !control.classList.contains("tile") && control !== submitButton) return;
    const tiles = Array.from(grid.querySelectorAll(".tile"));
    const k = event.key;
    if (k === "Enter") {
      event.preventDefault();
      if (!event.repeat) submit();
    } else if (/^[1-9]$/.test(k) && Number(k) <= tiles.length) {
      event.preventDefault();
      if (event.repeat) return;
      tiles[Number(k) - 1].click();
      tiles[Number(k) - 1].focus();
    } else if (k in ARROWS) {
      event.preventDefault();
      const at = Math.max(tiles.indexOf(target.closest(".tile")), 0);
      const step = ARROWS[k] === "down" ? api.gridColumns(grid) : ARROWS[k] === "up" ? -api.gridColumns(grid) : ARROWS[k];
      tiles[Math.max(0, Math.min(tiles.length - 1, at + step))].focus();
    }
  });
  start();
})();
