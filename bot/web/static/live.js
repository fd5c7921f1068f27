// Live updates of the incident page (bot/web/live.py). The page works without this file; with it, the page
// follows its stream of server-sent events, and on "changed" fetches itself again (with this browser's
// session) and swaps in each part marked data-live-part. A part holding a form the member is filling in is
// left as it is, so a comment being typed is never lost.
"use strict";

(function () {
  const article = document.querySelector("[data-live-stream]");
  if (!article || !("EventSource" in window) || !("DOMParser" in window)) return;
  const status = document.getElementById("live-status");
  let source = null;
  let running = false;
  let again = false;

  function busy(part) {
    const active = document.activeElement;
    if (active && active !== document.body && part.contains(active)) return true;
    for (const field of part.querySelectorAll("textarea, input[type=text], input:not([type])")) {
      if (field.value.trim() !== "") return true;
    }
    return false;
  }

  async function refresh() {
    if (running) { again = true; return; }
    running = true;
    try {
      const resp = await fetch(location.pathname, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!resp.ok || resp.redirected) { // signed out meanwhile, or the incident is gone: show what the server says
        stop();
        location.reload();
        return;
      }
      const fresh = new DOMParser().parseFromString(await resp.text(), "text/html");
      let swapped = 0;
      for (const part of fresh.querySelectorAll("[data-live-part]")) {
        const old = document.getElementById(part.id);
        if (!old || busy(old)) continue;
        old.replaceWith(document.importNode(part, true));
        swapped += 1;
      }
      document.title = fresh.title || document.title;
      if (status && swapped) status.textContent = "Incident updated " + new Date().toLocaleTimeString();
    } catch (err) {
      console.warn("Vigil live update:", err);
    } finally {
      running = false;
      if (again) { again = false; refresh(); }
    }
  }

  function stop() {
    if (source) source.close();
    source = null;
  }

  source = new EventSource(article.dataset.liveStream);
  source.addEventListener("changed", refresh);
  source.addEventListener("signed-out", () => { stop(); location.reload(); });
  source.addEventListener("shutdown", () => { /* the browser reconnects to another process on its own */ });
  // Leaving the page or signing out closes the stream at once rather than when the connection drops.
  for (const form of document.querySelectorAll("form[action='/logout']")) form.addEventListener("submit", stop);
  window.addEventListener("pagehide", stop);
})();
