// Live updates of the incident list (bot/web/live_list.py). The list works without this file; with it, the
// page follows its stream of server-sent events: on "changed" it fetches its rows again (with this browser's
// session) and swaps them for their new versions; on "new" it offers "N new incidents: show",
// a link to the list's first page (rows are not inserted under the reader's eyes).
"use strict";

(function () {
  const list = document.querySelector("[data-live-list]");
  const news = document.getElementById("live-news");
  if (!list || !("EventSource" in window) || !("DOMParser" in window)) return;
  let source = null;
  let running = false;
  let again = false;

  async function refresh() {
    if (running) { again = true; return; }
    running = true;
    try {
      // The page's rows as they are now (the list's first page may have moved on to newer incidents).
      const resp = await fetch(list.dataset.liveRows || location.href,
                               { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!resp.ok || resp.redirected) { stop(); location.reload(); return; } // signed out meanwhile
      const fresh = new DOMParser().parseFromString(await resp.text(), "text/html");
      for (const row of list.querySelectorAll("[data-incident]")) {
        const now = fresh.getElementById(row.id);
        if (now) row.replaceWith(document.importNode(now, true));
      }
    } catch (err) {
      console.warn("Vigil live update:", err);
    } finally {
      running = false;
      if (again) { again = false; refresh(); }
    }
  }

  function announce(event) {
    const n = parseInt(event.data, 10) || 0;
    if (!news) return;
    const link = news.querySelector("a");
    const count = n > 99 ? "99+" : String(n);
    link.textContent = `${count} new incident${n === 1 ? "" : "s"} \u2014 show`;
    news.hidden = n === 0;
  }

  function stop() {
    if (source) source.close();
    source = null;
  }

  source = new EventSource(list.dataset.liveList);
  source.addEventListener("changed", refresh);
  source.addEventListener("new", announce);
  source.addEventListener("signed-out", () => { stop(); location.reload(); });
  for (const form of document.querySelectorAll("form[action='/logout']")) form.addEventListener("submit", stop);
  window.addEventListener("pagehide", stop);
})();
