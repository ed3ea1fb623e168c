"use strict";

(function () {
  const form = document.getElementById("login-form");
  HITL.init();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = document.getElementById("token").value.trim();
    if (!value) return;
    const response = await fetch("/api/me", { headers: { "Authorization": "Bearer " + value } });
    if (!response.ok) {
      HITL.status("That token was not accepted.", "error");
      return;
    }
    const me = await response.json();
    HITL.setToken(value);
    location.assign(me.role === "reviewer" ? "/ui/task" : "/ui/dashboard");
  });
})();
