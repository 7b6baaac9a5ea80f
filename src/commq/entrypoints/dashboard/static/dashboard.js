// commq dashboard: per-job and bulk actions through the REST API, live counts,
// the 24-hour chart and the alert banner. Served by commq itself; the page's
// Content-Security-Policy allows no inline script, so everything is wired here.
// Text from the server only ever reaches the page through textContent.
(function () {
  "use strict";

  const API = "/communication-queue";
  const STATUSES = ["pending", "processing", "failed", "completed", "cancelled"];
  const POLL_MS = 5000;
  const ALERTS_MS = 15000;

  // ---- talking to the API -------------------------------------------------

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json", "X-CSRF-Token": csrfToken() };
    const init = { method: method, headers: headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      return { ok: false, status: 0, data: null, message: "The server could not be reached." };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      data = null;
    }
    if (response.status === 401) {
      // The session ended (expired, signed out elsewhere, key removed): sign in again.
      const back = location.pathname + location.search;
      location.assign("/dashboard/login?then=" + encodeURIComponent(back));
    }
    const message = (data && (data.message || data.detail)) || response.status + " " + response.statusText;
    return { ok: response.ok, status: response.status, data: data, message: String(message) };
  }

  function businessQuery(business) {
    return business ? "?businessId=" + encodeURIComponent(business) : "";
  }

  // ---- announcements and confirmation -------------------------------------

  let announceTimer = null;

  function announce(text, kind) {
    const region = document.getElementById("announcer");
    if (!region) return;
    region.textContent = "";
    region.className = "announcer " + (kind === "error" ? "is-error" : "is-ok");
    // A fresh text node after a tick, so screen readers announce a repeated message too.
    window.setTimeout(function () { region.textContent = text; }, 20);
    window.clearTimeout(announceTimer);
    announceTimer = window.setTimeout(function () {
      region.className = "announcer";
      region.textContent = "";
    }, 15000);
  }

  // Resolves true when the person confirms. Destructive questions start on "no".
  function confirmDialog(title, detail, yes, no, destructive) {
    const dialog = document.getElementById("confirm");
    if (!dialog || typeof dialog.showModal !== "function") {
      return Promise.resolve(window.confirm(title));
    }
    dialog.querySelector("#confirm-title").textContent = title;
    dialog.querySelector("#confirm-detail").textContent = detail;
    dialog.querySelector("#confirm-yes").textContent = yes;
    dialog.querySelector("#confirm-no").textContent = no;
    dialog.returnValue = "";
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function () {
        resolve(dialog.returnValue === "confirm");
      }, { once: true });
      dialog.showModal();
      dialog.querySelector(destructive ? "#confirm-no" : "#confirm-yes").focus();
    });
  }

  function dialogOpen() {
    const dialog = document.getElementById("confirm");
    return Boolean(dialog && dialog.open);
  }

  // ---- refreshing what the server rendered --------------------------------

  function refresh() {
    const region = document.querySelector("[data-refreshable]");
    if (!region || !region.id) return Promise.resolve();
    if (!window.htmx) {
      location.reload();
      return Promise.resolve();
    }
    const target = "#" + region.id;
    return window.htmx.ajax("GET", location.pathname + location.search,
      { target: target, select: target, swap: "outerHTML" });
  }

  // htmx leaves the page as it was when a tab, filter or page link (or a refresh
  // after an action) cannot be fetched: say so, or the click just looks ignored.
  function announceFailedSwap(event) {
    const xhr = event.detail && event.detail.xhr;
    if (event.type === "htmx:sendError" || !xhr || !xhr.status) {
      announce("The server could not be reached, so the page was not updated. Try again in a moment.", "error");
      return;
    }
    const status = xhr.status + (xhr.statusText ? " " + xhr.statusText : "");
    announce("The page could not be updated (" + status + "). Try again, or reload the page.", "error");
  }

  document.addEventListener("htmx:sendError", announceFailedSwap);
  document.addEventListener("htmx:responseError", announceFailedSwap);

  // ---- per-job actions ----------------------------------------------------

  const ACTIONS = {
    retry: { method: "POST", path: function (id) { return API + "/" + encodeURIComponent(id) + "/retry"; } },
    cancel: { method: "POST", path: function (id) { return API + "/" + encodeURIComponent(id) + "/cancel"; } },
    delete: {
      method: "DELETE",
      path: function (id) { return API + "/" + encodeURIComponent(id); },
      confirm: function (id) {
        return ["Delete this job?", "Job " + id + " and its attempt history will be removed for good.",
          "Delete job", "Keep it"];
      },
    },
    "process-now": {
      method: "POST",
      path: function (id, button) { return API + "/process-now" + businessQuery(button.dataset.business); },
    },
    unsuppress: {
      method: "DELETE",
      path: function (id, button) {
        return API + "/suppressions/" + encodeURIComponent(button.dataset.recipient) +
          businessQuery(button.dataset.business);
      },
      confirm: function (id, button) {
        return ["Remove " + button.dataset.recipient + " from the suppression list?",
          "Messages to this recipient will be sent again.", "Remove", "Keep it"];
      },
    },
  };

  // Busy buttons are marked, not disabled: disabling the focused button drops
  // keyboard focus to the top of the page.
  function busy(button) {
    return button.getAttribute("aria-busy") === "true";
  }

  function setBusy(button, on) {
    if (on) {
      button.setAttribute("aria-busy", "true");
      button.setAttribute("aria-disabled", "true");
    } else {
      button.removeAttribute("aria-busy");
      button.removeAttribute("aria-disabled");
    }
  }

  function rowIndex(button) {
    const row = button.closest("[data-job-row]");
    return row ? Array.from(document.querySelectorAll("[data-job-row]")).indexOf(row) : -1;
  }

  // A refresh may remove the focused button (a retried job leaves the Failed tab).
  // Focus then goes to the same action in the row that took its place (or that
  // row's link, the page's first action, the page itself), so a keyboard user
  // carries on from there instead of from the top of the page.
  function keepFocusNear(button, index) {
    const active = document.activeElement;
    if (active && active !== document.body && active.isConnected) return;
    const rows = document.querySelectorAll("[data-job-row]");
    const row = index >= 0 && rows.length ? rows[Math.min(index, rows.length - 1)] : null;
    const same = 'button[data-action="' + button.dataset.action + '"]';
    const near = row ? row.querySelector(same) || row.querySelector("a") :
      document.querySelector("[data-refreshable] button[data-action]");
    const target = (button.id && document.getElementById(button.id)) || near || document.getElementById("main");
    if (target) target.focus();
  }

  async function runAction(button) {
    const action = ACTIONS[button.dataset.action];
    if (!action || busy(button)) return;
    const id = button.dataset.job || "";
    if (action.confirm) {
      const words = action.confirm(id, button);
      if (!(await confirmDialog(words[0], words[1], words[2], words[3], true))) return;
    }
    const index = rowIndex(button);
    setBusy(button, true);
    const result = await api(action.method, action.path(id, button));
    setBusy(button, false);
    announce(result.message, result.ok ? "ok" : "error");
    if (result.ok && button.dataset.then) {
      location.assign(button.dataset.then);
    } else if (result.ok || result.status === 409 || result.status === 404) {
      await refresh();
      keepFocusNear(button, index);
    }
  }

  // ---- bulk actions with a dry run first ----------------------------------

  const BULK = {
    retry: {
      path: API + "/failed/retry",
      none: "No failed jobs match: nothing to retry.",
      ask: function (n) { return ["Retry " + n + " failed " + plural(n) + "?", "Retry " + n + " " + plural(n), "Not now"]; },
      detail: "They become pending with their attempts reset and are sent again straight away.",
    },
    cancel: {
      path: API + "/pending/cancel",
      none: "No pending jobs match: nothing to cancel.",
      ask: function (n) { return ["Cancel " + n + " pending " + plural(n) + "?", "Cancel " + n + " " + plural(n), "Keep them"]; },
      detail: "They will not be sent. Cancelled jobs can be retried later.",
      destructive: true,
    },
  };

  function plural(n) { return n === 1 ? "job" : "jobs"; }

  async function runBulk(button) {
    const bulk = BULK[button.dataset.bulk];
    if (!bulk || busy(button)) return;
    let filter = {};
    try { filter = JSON.parse(button.dataset.filter || "{}"); } catch (error) { filter = {}; }
    setBusy(button, true);
    try {
      const dry = await api("POST", bulk.path, Object.assign({}, filter, { dryRun: true }));
      if (!dry.ok) {
        const missing = dry.status === 404 || dry.status === 405;
        announce(missing ? "Bulk actions are not available on this server." : dry.message, "error");
        return;
      }
      const count = Number(dry.data && dry.data.count) || 0;
      if (count === 0) {
        announce(bulk.none, "ok");
        return;
      }
      const words = bulk.ask(count);
      if (!(await confirmDialog(words[0], bulk.detail, words[1], words[2], bulk.destructive))) {
        announce("Nothing was changed.", "ok");
        return;
      }
      const done = await api("POST", bulk.path, filter);
      announce(done.message, done.ok ? "ok" : "error");
      await refresh();
    } finally {
      setBusy(button, false);
    }
  }

  document.addEventListener("click", function (event) {
    const target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    const button = target.closest("button[data-action]");
    if (button) {
      event.preventDefault();
      runAction(button);
      return;
    }
    const bulk = target.closest("button[data-bulk]");
    if (bulk) {
      event.preventDefault();
      runBulk(bulk);
    }
  });

  // ---- the "Job id" box ---------------------------------------------------

  // A pasted id often brings a space or a line break with it; the server trims too,
  // but "required" lets a box of only spaces through, which should ask again instead.
  document.addEventListener("submit", function (event) {
    const form = event.target instanceof HTMLFormElement ? event.target : null;
    if (!form || !form.matches("[data-open-job]")) return;
    const input = form.querySelector("input[name=id]");
    if (!input) return;
    input.value = input.value.trim();
    if (!input.value) {
      event.preventDefault();
      input.reportValidity();
      input.focus();
    }
  });

  // ---- live counts --------------------------------------------------------

  function age(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    const s = Math.floor(seconds);
    if (s < 60) return seconds > 0 && seconds < 10 ? seconds.toFixed(1) + " s" : s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }

  function figure(value, kind) {
    if (value === null || value === undefined) return "—";
    if (kind === "age") return age(Number(value));
    if (kind === "rate") return (100 * Number(value)).toFixed(1) + "%";
    const n = Number(value);
    return Number.isInteger(n) ? n.toLocaleString("en-US") :
      n.toLocaleString("en-US", { maximumFractionDigits: 1 });
  }

  function setLiveState(text) {
    for (const el of document.querySelectorAll("[data-live-state]")) el.textContent = text;
  }

  function applyStats(stats) {
    for (const el of document.querySelectorAll("[data-stat]")) {
      const value = stats[el.dataset.stat];
      if (value !== undefined && value !== null) el.textContent = String(value);
    }
    const total = STATUSES.reduce(function (sum, key) { return sum + (Number(stats[key]) || 0); }, 0);
    for (const el of document.querySelectorAll("[data-share]")) {
      el.textContent = share(stats, el.dataset.share, total) + "%";
    }
    for (const el of document.querySelectorAll("[data-share-bar]")) {
      el.setAttribute("width", String(share(stats, el.dataset.shareBar, total)));
    }
    for (const el of document.querySelectorAll("[data-jobs-word]")) {
      el.textContent = Number(stats[el.dataset.jobsWord]) === 1 ? "job" : "jobs";
    }
    for (const el of document.querySelectorAll("[data-figure]")) {
      const value = el.dataset.figure.split(".").reduce(function (v, k) { return v && typeof v === "object" ? v[k] : undefined; }, stats);
      if (value !== undefined) el.textContent = figure(value, el.dataset.format);
    }
    showTopErrors(stats.topErrorsLastHour);
    refreshJobsWhenTheyChange(stats);
    if (lastFailed !== null && lastFailed !== stats.failed) {
      // Alerts are evaluated server-side on their own clock; look again shortly.
      window.setTimeout(checkAlerts, 1500);
    }
    lastFailed = stats.failed;
  }

  let lastFailed = null;

  function showTopErrors(entries) {
    const list = document.querySelector("[data-top-errors]");
    if (!list || !Array.isArray(entries)) return;
    const items = entries.map(function (entry) {
      const item = document.createElement("li");
      const count = document.createElement("span");
      count.className = "top-error-count";
      count.textContent = String(entry.count);
      const text = document.createElement("span");
      text.className = "wrap";
      text.textContent = String(entry.error);
      item.append(count, " ", text);
      return item;
    });
    list.replaceChildren(...items);
    const empty = document.querySelector("[data-top-errors-empty]");
    if (empty) empty.hidden = items.length > 0;
  }

  function share(stats, key, total) {
    return total ? Math.round((100 * (Number(stats[key]) || 0)) / total) : 0;
  }

  // The first page of the jobs table follows the queue: the table carries the
  // counts it was drawn with, and when the tab's count moves away from them the
  // rows are fetched again (once per new count; focus stays where it was).
  let redrawnFor = null;

  function refreshJobsWhenTheyChange(stats) {
    const view = document.querySelector("[data-jobs-view]");
    const results = document.getElementById("jobs-results");
    if (!view || !results || view.dataset.firstPage !== "true" || dialogOpen()) return;
    const status = view.dataset.status;
    const counts = status ? String(stats[status]) : STATUSES.map(function (k) { return stats[k]; }).join(",");
    const seen = status + ":" + counts;
    if (seen === results.dataset.seen || seen === redrawnFor) return;
    redrawnFor = seen;
    refresh();
  }

  let live = null;

  function startLiveStats() {
    const region = document.querySelector("[data-live-stats]");
    if (!region) return;
    const business = region.dataset.business || "";
    if (live && live.business === business) return;
    if (live) live.stop();
    live = connect(business);
  }

  function connect(business) {
    const query = businessQuery(business);
    let source = null;
    let timer = null;
    const poll = async function () {
      const result = await api("GET", API + "/stats" + query);
      if (result.ok) {
        applyStats(result.data);
        setLiveState("Live: refreshed every " + POLL_MS / 1000 + " s");
      }
    };
    const startPolling = function () {
      if (timer) return;
      poll();
      timer = window.setInterval(poll, POLL_MS);
    };
    if (window.EventSource) {
      source = new EventSource(API + "/stats/stream" + query);
      source.addEventListener("stats", function (event) {
        try {
          applyStats(JSON.parse(event.data));
          setLiveState("Live");
        } catch (error) {
          // A malformed event is skipped; the next one will do.
        }
      });
      source.addEventListener("error", function () {
        if (source.readyState === EventSource.CLOSED) {
          startPolling();
        } else {
          setLiveState("Live: reconnecting…");
        }
      });
    } else {
      startPolling();
    }
    return {
      business: business,
      stop: function () {
        if (source) source.close();
        if (timer) window.clearInterval(timer);
      },
    };
  }

  // ---- the alert banner ---------------------------------------------------

  let alertsTimer = null;

  async function checkAlerts() {
    const banner = document.querySelector("[data-alerts]");
    if (!banner) return;
    const result = await api("GET", API + "/alerts" + businessQuery(banner.dataset.business));
    if (!result.ok) {
      if (result.status === 404 || result.status === 403) window.clearInterval(alertsTimer);
      return;
    }
    const items = (result.data && result.data.items) || [];
    const firing = items.filter(function (alert) { return alert.status === "firing"; });
    const list = document.createElement("ul");
    for (const alert of firing) {
      const item = document.createElement("li");
      const split = String(alert.message).indexOf(": ");
      if (split > 0) {
        const title = document.createElement("strong");
        title.textContent = alert.message.slice(0, split + 1);
        item.append(title, " " + alert.message.slice(split + 2));
      } else {
        item.textContent = alert.message;
      }
      list.appendChild(item);
    }
    const shown = banner.dataset.shown || "";
    const now = firing.map(function (alert) { return alert.message; }).join("\n");
    if (shown !== now) {
      banner.replaceChildren(list);
      banner.dataset.shown = now;
    }
    banner.hidden = firing.length === 0;
  }

  function startAlerts() {
    if (!document.querySelector("[data-alerts]")) return;
    checkAlerts();
    alertsTimer = window.setInterval(checkAlerts, ALERTS_MS);
  }

  // ---- the 24-hour chart --------------------------------------------------

  const SVG = "http://www.w3.org/2000/svg";
  const HOUR_MS = 3600 * 1000;

  function svg(name, attributes, parent) {
    const el = document.createElementNS(SVG, name);
    for (const key of Object.keys(attributes)) el.setAttribute(key, String(attributes[key]));
    if (parent) parent.appendChild(el);
    return el;
  }

  function hourLabel(date) {
    return String(date.getUTCHours()).padStart(2, "0") + ":00";
  }

  // Sums the /stats/history series (one per group; one when ungrouped) into 24 hourly
  // buckets: "sent" is jobs completed in the hour, "failed" jobs that failed in it.
  function hourlyPoints(data, from) {
    const points = [];
    for (let i = 0; i < 24; i += 1) points.push({ at: new Date(from.getTime() + i * HOUR_MS), sent: 0, failed: 0 });
    for (const series of (data && data.series) || []) {
      for (const point of series.points || []) {
        const index = Math.floor((Date.parse(point.at) - from.getTime()) / HOUR_MS);
        if (!(index >= 0 && index < 24)) continue;
        points[index].sent += Number(point.completed) || 0;
        points[index].failed += Number(point.failed) || 0;
      }
    }
    return points;
  }

  function barChart(points, available) {
    // Drawn at the width it is shown at, so its labels stay readable on a phone.
    const width = Math.max(300, Math.min(1400, Math.round(available || 960)));
    const height = 220;
    const left = 40;
    const bottom = 26;
    const top = 10;
    const plot = height - bottom - top;
    // An even top of at least 2, so the middle gridline is a whole number (a top
    // of 1 labelled it 1 as well: a quiet day's scale read 0, 1, 1).
    const highest = Math.max(...points.map(function (p) { return Math.max(p.sent, p.failed); }));
    const most = Math.max(2, Math.ceil(highest / 2) * 2);
    const sent = points.reduce(function (n, p) { return n + p.sent; }, 0);
    const failed = points.reduce(function (n, p) { return n + p.failed; }, 0);
    const root = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img",
      "aria-label": "Sent and failed jobs per hour over the last 24 hours: " + sent + " sent, " + failed + " failed." });
    for (const fraction of [0, 0.5, 1]) {
      const y = top + plot - fraction * plot;
      svg("line", { x1: left, x2: width, y1: y, y2: y, class: "axis" }, root);
      const label = svg("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, root);
      label.textContent = String(Math.round(fraction * most));
    }
    const step = (width - left) / points.length;
    const bar = Math.max(2, step * 0.36);
    points.forEach(function (point, i) {
      const x = left + i * step + step * 0.12;
      const group = svg("g", {}, root);
      const title = svg("title", {}, group);
      title.textContent = hourLabel(point.at) + " UTC: " + point.sent + " sent, " + point.failed + " failed";
      const hs = (point.sent / most) * plot;
      const hf = (point.failed / most) * plot;
      svg("rect", { x: x, y: top + plot - hs, width: bar, height: hs, class: "bar-sent" }, group);
      svg("rect", { x: x + bar, y: top + plot - hf, width: bar, height: hf, class: "bar-failed" }, group);
      if (i % (step < 32 ? 6 : 3) === 0) {
        const label = svg("text", { x: x + bar, y: height - 8, "text-anchor": "middle" }, root);
        label.textContent = hourLabel(point.at);
      }
    });
    return root;
  }

  function numbersTable(points) {
    const details = document.createElement("details");
    const summary = document.createElement("summary");
    summary.textContent = "Show the numbers";
    details.appendChild(summary);
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    for (const name of ["Hour (UTC)", "Sent", "Failed"]) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = name;
      head.appendChild(th);
    }
    const body = table.createTBody();
    for (const point of points) {
      const row = body.insertRow();
      for (const value of [hourLabel(point.at), point.sent, point.failed]) row.insertCell().textContent = String(value);
    }
    details.appendChild(table);
    return details;
  }

  function legend() {
    const list = document.createElement("ul");
    list.className = "legend";
    for (const [name, label] of [["sent", "Sent"], ["failed", "Failed"]]) {
      const item = document.createElement("li");
      item.className = name;
      item.textContent = label;
      list.appendChild(item);
    }
    return list;
  }

  async function drawHistory() {
    const panel = document.querySelector("[data-history]");
    if (!panel) return;
    const chart = panel.querySelector("[data-chart]");
    const to = new Date(Math.ceil(Date.now() / HOUR_MS) * HOUR_MS);
    const from = new Date(to.getTime() - 24 * HOUR_MS);
    const query = "?bucket=hour&from=" + encodeURIComponent(from.toISOString()) +
      "&to=" + encodeURIComponent(to.toISOString()) +
      (panel.dataset.business ? "&businessId=" + encodeURIComponent(panel.dataset.business) : "");
    const result = await api("GET", API + "/stats/history" + query);
    if (!result.ok) {
      const note = document.createElement("p");
      note.className = "muted";
      note.textContent = result.status === 404 ? "History is not available on this server." : result.message;
      chart.replaceChildren(note);
      return;
    }
    const points = hourlyPoints(result.data, from);
    chart.replaceChildren(legend(), barChart(points, chart.clientWidth), numbersTable(points));
  }

  // ---- start --------------------------------------------------------------

  function start() {
    startLiveStats();
    startAlerts();
    if (document.querySelector("[data-history]")) {
      drawHistory();
      window.setInterval(drawHistory, 60000);
      let resized = null;
      window.addEventListener("resize", function () {
        window.clearTimeout(resized);
        resized = window.setTimeout(drawHistory, 300);
      });
    }
  }

  document.addEventListener("DOMContentLoaded", start);
  // A boosted swap (tab, filter, page) may change the business the counts follow.
  document.addEventListener("htmx:load", startLiveStats);
  window.addEventListener("pagehide", function () { if (live) live.stop(); });
  window.commq = { api: api, announce: announce, refresh: refresh, figure: figure };
}());
