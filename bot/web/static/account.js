// The personal center's one script: the "Get pages on this device" button subscribes this browser to Web Push
// through app.js's vigilEnableNotifications(). Without JavaScript the button stays hidden; everything else on
// the page is a plain form.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("enable-push");
  const status = document.getElementById("push-status");
  if (!button || !status) return;
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) {
    status.textContent = "This browser cannot get push notifications. On an iPhone, add Vigil to the Home Screen first.";
    return;
  }
  button.hidden = false;
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = "Asking the browser…";
    try {
      await vigilEnableNotifications();
      status.textContent = "This device now gets pages.";
      window.location.assign("/account#devices");
      window.location.reload();
    } catch (err) {
      status.textContent = err.message;
      button.disabled = false;
    }
  });
});
