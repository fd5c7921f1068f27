// Vigil's service worker: shows a page pushed by the `app` medium (bot/media/web_push.py) and answers its
// buttons. Acknowledge posts the push's signed action token to /push/ack without opening a window; Open (or a
// tap on the notification) focuses the incident's page, or opens it.
"use strict";

const SEVERITY_ICON = { Critical: "\u{1F534}", Warning: "\u{1F7E0}", Info: "\u{1F535}" };

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

function incidentPath(page) {
  return "/incidents/" + encodeURIComponent(page.incident_id);
}

function notificationOf(page) {
  const severity = page.severity || "Info";
  return {
    title: `${SEVERITY_ICON[severity] || ""} ${severity}: ${page.title}`.trim(),
    options: {
      body: page.channel ? `Channel: ${page.channel}` : "",
      tag: "incident-" + page.incident_id, // a later page of the same incident replaces this one
      renotify: true,
      requireInteraction: severity === "Critical",
      icon: "/icons/vigil-192.png",
      badge: "/icons/vigil-192.png",
      data: { incident_id: page.incident_id, token: page.ack_token, path: incidentPath(page) },
      actions: [
        { action: "ack", title: "Acknowledge" },
        { action: "open", title: "Open" },
      ],
    },
  };
}

async function onPush(event) {
  let page;
  try {
    page = event.data ? event.data.json() : null;
  } catch (_err) {
    page = null;
  }
  if (!page || !page.incident_id) {
    // A push must show something (browsers require it); this one could not be read.
    await self.registration.showNotification("Vigil", { body: "New notification" });
    return;
  }
  const { title, options } = notificationOf(page);
  await self.registration.showNotification(title, options);
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  for (const client of windows) client.postMessage({ type: "vigil-page", page });
}

async function acknowledge(notification) {
  const data = notification.data || {};
  let text;
  try {
    const resp = await fetch("/push/ack", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ token: data.token }),
      credentials: "omit", // the token is the credential
    });
    const body = await resp.json();
    text = resp.ok ? body.data.text : (body.error && body.error.message) || `HTTP ${resp.status}`;
    if (resp.ok && body.data.ok) {
      // Same tag: this replaces the page's notification. No close() first: Chromium names a tagged
      // notification by origin and tag, so the old one's close (not awaitable) can land after this show and
      // close the replacement instead.
      await self.registration.showNotification("Acknowledged", { body: text, tag: notification.tag,
                                                                 data: data });
      return { ok: true, text };
    }
  } catch (err) {
    text = "Vigil could not be reached: " + err;
  }
  // Not acknowledged: say why and keep the buttons, so the responder can try again or open the incident.
  await self.registration.showNotification(notification.title, {
    body: text, tag: notification.tag, data, requireInteraction: true,
    actions: [{ action: "ack", title: "Acknowledge" }, { action: "open", title: "Open" }],
  });
  return { ok: false, text };
}

async function openIncident(notification) {
  notification.close();
  const path = (notification.data && notification.data.path) || "/";
  const url = new URL(path, self.location.origin).href;
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  for (const client of windows) {
    if (client.url === url && "focus" in client) return client.focus();
  }
  for (const client of windows) {
    if ("navigate" in client) {
      await client.focus();
      return client.navigate(url);
    }
  }
  return self.clients.openWindow(url);
}

// Exposed on the worker's global scope so a browser test can drive it with the real notification.
self.vigilNotificationClick = function (action, notification) {
  return action === "ack" ? acknowledge(notification) : openIncident(notification);
};

self.addEventListener("push", (event) => event.waitUntil(onPush(event)));
self.addEventListener("notificationclick", (event) => {
  event.waitUntil(self.vigilNotificationClick(event.action, event.notification));
});
