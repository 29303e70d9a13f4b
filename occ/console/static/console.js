// The OCC console's only script: forms cannot be sent twice, and the dashboard's figures refresh themselves.
// Every page works without it (the server refuses a repeated money movement by its idempotency key anyway).
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.dataset.sent) {
    event.preventDefault();
    return;
  }
  form.dataset.sent = "1";
  for (const button of form.querySelectorAll("button[type=submit]")) {
    button.disabled = true;
  }
});

function refreshLive() {
  const live = document.getElementById("live");
  if (!live) {
    return;
  }
  fetch(live.dataset.source, { credentials: "same-origin" })
    .then((response) => {
      if (response.redirected) {  // signed out meanwhile: show the sign-in page
        window.location.reload();
        return Promise.reject(response.status);
      }
      return response.ok ? response.text() : Promise.reject(response.status);
    })
    .then((html) => { live.innerHTML = html; })
    .catch(() => {})
    .finally(() => setTimeout(refreshLive, 5000));
}

document.addEventListener("DOMContentLoaded", () => setTimeout(refreshLive, 5000));
