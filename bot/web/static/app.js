// The Vigil app in the page: registers the service worker (sw.js, scope "/") so the pages install as an app,
// and lets a signed-in member turn on notifications (the `app` medium): the browser subscribes with Vigil's
// VAPID key and the subscription goes to /push/subscriptions. Call vigilEnableNotifications() from a button:
// browsers only ask for permission after a user gesture.
"use strict";

function vigilKeyBytes(base64url) {
  const text = atob(base64url.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((base64url.length + 3) % 4));
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

async function vigilEnableNotifications() {
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
    throw new Error("This browser cannot receive push notifications (on iOS: add Vigil to the Home Screen first).");
  }
  if ((await Notification.requestPermission()) !== "granted") {
    throw new Error("Notifications are blocked for this site.");
  }
  const registration = await navigator.serviceWorker.register("/sw.js");
  await navigator.serviceWorker.ready;
  const keyResp = await fetch("/push/vapid-public-key");
  const key = (await keyResp.json()).data.public_key;
  const subscription = await registration.pushManager.subscribe({
    userVisibleOnly: true, applicationServerKey: vigilKeyBytes(key) });
  const resp = await fetch("/push/subscriptions", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(subscription) });
  if (!resp.ok) throw new Error((await resp.json()).error.message);
  return subscription;
}

async function vigilDisableNotifications() {
  const registration = await navigator.serviceWorker.getRegistration("/");
  const subscription = registration && (await registration.pushManager.getSubscription());
  if (!subscription) return;
  await fetch("/push/subscriptions", {
    method: "DELETE", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ endpoint: subscription.endpoint }) });
  await subscription.unsubscribe();
}

if ("serviceWorker" in navigator) {
  window.addEventListener("load", () => {
    navigator.serviceWorker.register("/sw.js").catch((err) => console.warn("Vigil service worker:", err));
  });
}
