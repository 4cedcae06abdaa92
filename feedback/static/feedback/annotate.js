// The annotation page: one item at a time, keyboard first, never waiting on the network.
//
// Two items are kept in hand (the one shown and one prefetched), so a decision shows the next
// item at once while the label is saved in the background. Every server call goes through one
// promise chain, so the server sees the annotator's actions in the order they were made.
// Prompts, completions and reasons are untrusted: they are only ever written with textContent.
(function () {
  "use strict";

  const root = document.getElementById("annotate");
  if (!root) return;

  const projectId = Number(root.dataset.projectId);
  const apiRoot = root.dataset.apiRoot;
  const csrfToken = root.dataset.csrf;
  const IN_HAND = 2; // the item shown plus one prefetched
  const HISTORY_SIZE = 8;
  const labelsPerItem = Number(root.dataset.labelsPerItem) || 1;

  const byId = (id) => document.getElementById(id);
  const ui = {
    item: byId("item"), itemId: byId("item-id"), itemRound: byId("item-round"),
    prompt: byId("prompt"), completion: byId("completion"),
    loading: byId("loading"), empty: byId("empty"), status: byId("status"),
    reason: byId("reason"), recent: byId("recent"), recentNone: byId("recent-none"),
    guidelines: byId("guidelines"),
    mine: byId("mine-progress"), round: byId("round-progress"), roundNumber: byId("round-number"),
  };

  const state = {
    upcoming: [], // items in hand; upcoming[0] is the one shown
    history: JSON.parse(byId("recent-data").textContent), // newest first
    fetching: false,
    exhausted: false, // the server had nothing beyond what is in hand
    stalled: false, // the server handed back an item already in hand; wait for the next decision
    actions: 0, // decisions so far: an answer computed before the latest one may be out of date
    // Items decided here whose label or skip the server has not received yet: it still leases
    // them to us, so the queue would hand them out again unless they are excluded.
    unsent: new Set(),
    progress: null, // the latest figures from the server…
    sinceProgress: 0, // …plus my labels saved (minus undone) since they were computed
  };

  // ---- talking to the API -------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, data) {
      super(describeError(status, data));
      this.status = status;
    }
  }

  function describeError(status, data) {
    if (data && typeof data.detail === "string") return data.detail;
    if (data && typeof data === "object") {
      const [field, value] = Object.entries(data)[0] || [];
      if (field !== undefined) return `${field}: ${Array.isArray(value) ? value.join(" ") : value}`;
    }
    return `The server answered ${status}.`;
  }

  async function request(method, path, body) {
    const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") init.headers["X-CSRFToken"] = csrfToken;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(apiRoot + path, init);
    let data = null;
    if (response.status !== 204) {
      try { data = await response.json(); } catch (_) { data = null; }
    }
    if (!response.ok) throw new ApiError(response.status, data);
    return { status: response.status, data };
  }

  // data-busy counts server calls not yet finished (tests wait for it to reach 0).
  let chain = Promise.resolve();
  let busy = 0;
  function enqueue(work) {
    root.dataset.busy = String(++busy);
    chain = chain.then(work).catch(showError).finally(() => { root.dataset.busy = String(--busy); });
    return chain;
  }

  // ---- the items in hand --------------------------------------------------------------------

  function refill() {
    if (state.fetching || state.exhausted || state.stalled || state.upcoming.length >= IN_HAND) return;
    state.fetching = true;
    render();
    enqueue(async () => {
      const actionsBefore = state.actions;
      try {
        const held = [...state.upcoming.map((item) => item.generation), ...state.unsent];
        const query = held.length ? `?exclude=${held.join(",")}` : "";
        const { status, data } = await request("GET", `projects/${projectId}/queue/next/${query}`);
        const outdated = state.actions !== actionsBefore; // then refill() below simply asks again
        if (status === 204 || !data) {
          state.exhausted = !outdated;
          if (!outdated) refreshStats();
        } else if (held.includes(data.generation)) {
          // Still leased to us: it comes back as a new item after the current decision.
          state.stalled = !outdated;
        } else {
          state.upcoming.push(data);
          showProgress(data);
        }
      } finally {
        state.fetching = false;
        render();
      }
      refill();
    });
  }

  // Any decision may free something on the server (a skip requeues, an undo gives an item back).
  function afterAction() {
    state.actions += 1;
    state.exhausted = false;
    state.stalled = false;
    render();
    refill();
  }

  function decide(desirable) {
    const item = state.upcoming.shift();
    if (!item) return;
    const reason = ui.reason.value.trim();
    ui.reason.value = "";
    const entry = { label: null, generation: item.generation, desirable, reason, item, pending: true };
    remember(entry);
    saveLabel(entry);
    afterAction();
  }

  function saveLabel(entry) {
    entry.pending = true;
    entry.failed = false;
    state.unsent.add(entry.generation);
    enqueue(async () => {
      try {
        const { status, data } = await request("POST", "labels/", {
          generation: entry.generation, desirable: entry.desirable, reason: entry.reason,
        });
        entry.label = data.id;
        if (status === 201) countMine(+1);
      } catch (error) {
        entry.failed = true;
        throw error;
      } finally {
        entry.pending = false;
        state.unsent.delete(entry.generation);
        renderHistory();
      }
    });
  }

  function skip() {
    const item = state.upcoming.shift();
    if (!item) return;
    ui.reason.value = "";
    state.unsent.add(item.generation);
    enqueue(async () => {
      try {
        await request("POST", `projects/${projectId}/queue/skip/`, { generation: item.generation });
      } finally {
        state.unsent.delete(item.generation);
      }
    });
    afterAction();
  }

  function undo() {
    const entry = state.history[0];
    if (!entry) {
      flash("Nothing to undo.");
      return;
    }
    // Shown at once; the server is told in order, and the page follows it if it disagrees.
    state.history.shift();
    giveBack(entry);
    if (entry.failed) {
      afterAction(); // never saved, so there is nothing to undo on the server
      return;
    }
    enqueue(async () => {
      if (entry.failed) return; // its save failed after all: there is nothing to undo on the server
      let data;
      try {
        ({ data } = await request("POST", "labels/undo/", { project: projectId }));
      } catch (error) {
        takeBack(entry);
        state.history.unshift(entry);
        render();
        throw error;
      }
      const undone = (data && data.undone) || { generation: entry.generation, reason: entry.reason };
      if (Number(undone.generation) !== entry.generation) {
        // The server's latest label was another one (e.g. made in a second tab): show that one.
        takeBack(entry);
        state.history.unshift(entry);
        state.history = state.history.filter((h) => h.generation !== Number(undone.generation));
        if (data.item) giveBack({ generation: data.item.generation, item: data.item, reason: undone.reason });
        flash(`Undid your latest label in this project (item ${undone.generation}).`);
      }
      if (data && data.item) showProgress(data.item);
      else countMine(-1);
      render();
    });
    afterAction();
  }

  function giveBack(entry) {
    state.upcoming = state.upcoming.filter((item) => item.generation !== entry.generation);
    state.upcoming.unshift(entry.item);
    ui.reason.value = entry.reason || "";
  }

  function takeBack(entry) {
    state.upcoming = state.upcoming.filter((item) => item.generation !== entry.generation);
    if (ui.reason.value === (entry.reason || "")) ui.reason.value = "";
  }

  function flip(entry) {
    if (entry.failed) {
      saveLabel(entry); // retry the save that failed
      renderHistory();
      return;
    }
    const desirable = !entry.desirable;
    entry.desirable = desirable;
    renderHistory();
    enqueue(async () => {
      try {
        if (!entry.label) throw new Error("That label was not saved, so it cannot be changed.");
        await request("PATCH", `labels/${entry.label}/`, { desirable });
      } catch (error) {
        entry.desirable = !desirable;
        renderHistory();
        throw error;
      }
    });
  }

  function remember(entry) {
    state.history.unshift(entry);
    state.history.length = Math.min(state.history.length, HISTORY_SIZE);
  }

  // ---- progress -----------------------------------------------------------------------------

  function fraction(done, total) {
    if (done === undefined || done === null) return "–";
    return total === undefined || total === null ? String(done) : `${done} / ${total}`;
  }

  function setProgress(progress, roundNumber) {
    state.progress = progress;
    state.sinceProgress = 0;
    if (roundNumber !== undefined && roundNumber !== null) ui.roundNumber.textContent = String(roundNumber);
    drawProgress();
  }

  function countMine(change) {
    state.sinceProgress += change;
    drawProgress();
  }

  function drawProgress() {
    const progress = state.progress;
    if (!progress) return;
    const plus = (value, change) => (typeof value === "number" ? value + change : value);
    const mine = plus(progress.mine_done, state.sinceProgress);
    // With one label per item, each of my labels completes an item of the round.
    const round = plus(progress.round_done, labelsPerItem === 1 ? state.sinceProgress : 0);
    ui.mine.textContent = fraction(mine, progress.mine_total);
    ui.round.textContent = fraction(round, progress.round_total);
  }

  function showProgress(item) {
    if (item && item.progress) setProgress(item.progress, item.round);
  }

  // When the queue is empty there is no item to carry progress: ask the stats endpoint.
  function refreshStats() {
    enqueue(async () => {
      const { data } = await request("GET", `projects/${projectId}/stats/`);
      const me = (data && data.me) || {};
      const rounds = (data && data.rounds) || [];
      const shownRound = Number(ui.roundNumber.textContent);
      const round = rounds.find((r) => r.number === shownRound) || rounds[rounds.length - 1] || {};
      setProgress(
        { mine_done: me.labelled, mine_total: me.total, round_done: round.complete, round_total: round.generations },
        round.number,
      );
    });
  }

  // ---- drawing ------------------------------------------------------------------------------

  function textBlock(tag, className, text) {
    const node = document.createElement(tag);
    node.className = className;
    node.textContent = text === undefined || text === null ? "" : String(text);
    return node;
  }

  function renderPrompt(prompt) {
    ui.prompt.replaceChildren();
    if (Array.isArray(prompt)) {
      for (const message of prompt) {
        const role = String((message && message.role) || "message");
        const turn = document.createElement("div");
        turn.className = "turn turn-" + role.toLowerCase().replace(/[^a-z]/g, "");
        turn.append(textBlock("div", "role", role), textBlock("div", "content text", message && message.content));
        ui.prompt.append(turn);
      }
    } else {
      ui.prompt.append(textBlock("div", "content text", prompt));
    }
  }

  let shownGeneration = null;
  function render() {
    const item = state.upcoming[0];
    ui.item.hidden = !item;
    ui.loading.hidden = Boolean(item) || !state.fetching;
    ui.empty.hidden = Boolean(item) || state.fetching || !state.exhausted;
    if (item && item.generation !== shownGeneration) {
      ui.itemId.textContent = String(item.generation);
      ui.itemRound.textContent = String(item.round ?? "");
      renderPrompt(item.prompt);
      ui.completion.textContent = item.completion === undefined ? "" : String(item.completion);
      ui.item.classList.remove("fresh");
      void ui.item.offsetWidth; // restart the highlight so the change of item is noticed
      ui.item.classList.add("fresh");
      if (ui.item.getBoundingClientRect().top < 0) ui.item.scrollIntoView({ block: "start" });
    }
    for (const id of ["btn-good", "btn-bad", "btn-skip"]) byId(id).disabled = !item;
    shownGeneration = item ? item.generation : null;
    root.dataset.shown = item ? String(item.generation) : "";
    renderHistory();
  }

  function renderHistory() {
    ui.recent.replaceChildren();
    ui.recentNone.hidden = state.history.length > 0;
    for (const entry of state.history) {
      const row = document.createElement("li");
      row.className = "decision " + (entry.desirable ? "good" : "bad");
      row.dataset.generation = String(entry.generation);
      const thumb = document.createElement("button");
      thumb.className = "flip";
      thumb.type = "button";
      thumb.append(byId(entry.desirable ? "icon-up" : "icon-down").content.cloneNode(true));
      thumb.setAttribute("aria-label", entry.desirable ? "Good: click to flip" : "Bad: click to flip");
      thumb.title = entry.failed ? "Not saved: click to try again" : "Click to flip this label";
      thumb.addEventListener("click", (event) => {
        event.currentTarget.blur();
        flip(entry);
      });
      row.append(thumb, textBlock("span", "excerpt", excerpt(entry.item && entry.item.completion)));
      if (entry.reason) row.append(textBlock("span", "reason muted", entry.reason));
      if (entry.pending) row.append(textBlock("span", "state muted", "saving…"));
      if (entry.failed) row.append(textBlock("span", "state error", "not saved: click the thumb to retry"));
      ui.recent.append(row);
    }
  }

  function excerpt(text) {
    const flat = String(text || "").replace(/\s+/g, " ").trim();
    return flat.length > 90 ? flat.slice(0, 89) + "…" : flat;
  }

  let flashTimer = null;
  function flash(message, isError) {
    ui.status.replaceChildren(textBlock("span", "", message));
    ui.status.classList.toggle("error", Boolean(isError));
    ui.status.hidden = false;
    clearTimeout(flashTimer);
    if (!isError) flashTimer = setTimeout(() => { ui.status.hidden = true; }, 4000);
  }

  function showError(error) {
    if (error && (error.status === 401 || error.status === 403)) {
      flash("You are logged out or lost access to this project. ", true);
      const link = textBlock("a", "", "Log in again");
      link.href = root.dataset.loginUrl;
      ui.status.append(link);
      return;
    }
    flash((error && error.message) || "Something went wrong talking to the server.", true);
  }

  // ---- guidelines and keys ------------------------------------------------------------------

  function toggleGuidelines(open) {
    ui.guidelines.hidden = open === undefined ? !ui.guidelines.hidden : !open;
  }

  function isTyping(target) {
    return target instanceof Element && Boolean(target.closest("input, textarea, select, [contenteditable]"));
  }

  document.addEventListener("keydown", (event) => {
    if (isTyping(event.target)) {
      // While writing a reason every key types text; Escape hands the keys back to the page.
      if (event.key === "Escape") {
        event.target.blur();
        event.preventDefault();
      }
      return;
    }
    if (event.altKey) return;
    if (event.ctrlKey || event.metaKey) {
      if (event.key.toLowerCase() === "z" && !event.shiftKey) {
        event.preventDefault();
        undo();
      }
      return;
    }
    if (event.repeat) return; // a held key must not label a run of items
    switch (event.key) {
      case "1": decide(true); break;
      case "2": decide(false); break;
      case "s": case "S": skip(); break;
      case "Backspace": undo(); break;
      case "r": case "R": ui.reason.focus(); break;
      case "g": case "G": case "?": toggleGuidelines(); break;
      case "Escape": toggleGuidelines(false); break;
      default: return;
    }
    event.preventDefault();
  });

  function onClick(id, action) {
    byId(id).addEventListener("click", (event) => {
      event.currentTarget.blur(); // so Space/Enter do not press the button again
      action();
    });
  }
  onClick("btn-good", () => decide(true));
  onClick("btn-bad", () => decide(false));
  onClick("btn-skip", skip);
  onClick("btn-undo", undo);
  onClick("btn-guidelines", () => toggleGuidelines());
  onClick("btn-guidelines-close", () => toggleGuidelines(false));
  onClick("btn-check-again", afterAction);

  render();
  refill();
})();
