// Shared helpers. Untrusted text only ever reaches the page through textContent.
"use strict";

const HITL = (() => {
  const KEY = "hitl.token";

  function token() { return sessionStorage.getItem(KEY); }

  function setToken(value) { sessionStorage.setItem(KEY, value); }

  function signOut() {
    sessionStorage.clear();
    location.assign("/ui/login");
  }

  async function api(method, path, body) {
    const headers = { "Authorization": "Bearer " + (token() || "") };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
    if (response.status === 401) { signOut(); throw new Error("signed out"); }
    let data = null;
    if (response.status !== 204) {
      const text = await response.text();
      try { data = text ? JSON.parse(text) : null; } catch (e) { data = { detail: text }; }
    }
    if (!response.ok) {
      const detail = data && data.detail;
      const message = typeof detail === "string" ? detail : JSON.stringify(detail);
      const error = new Error(response.status + ": " + message);
      error.status = response.status;
      throw error;
    }
    return { status: response.status, data };
  }

  // Create an element with text content; never parses markup.
  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function status(message, kind) {
    const node = document.getElementById("status");
    node.textContent = message || "";
    node.className = "status " + (kind || "");
  }

  // Server-sent events over fetch, so the bearer header can be sent (EventSource cannot).
  async function stream(path, onEvent, signal) {
    const response = await fetch(path, {
      headers: { "Authorization": "Bearer " + (token() || ""), "Accept": "text/event-stream" },
      signal,
    });
    if (!response.ok || !response.body) throw new Error("stream " + response.status);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length) onEvent(event, JSON.parse(data.join("\n")));
      }
    }
  }

  async function init() {
    document.getElementById("signout").addEventListener("click", signOut);
    const page = document.body.dataset.page;
    const nav = document.getElementById("nav-" + page);
    if (nav) nav.classList.add("active");
    if (page === "login") return null;
    if (!token()) { location.assign("/ui/login"); return null; }
    try {
      const me = (await api("GET", "/api/me")).data;
      const label = me.role === "reviewer" ? me.reviewer_id + " · " + me.level : me.reviewer_id + " · " + me.role;
      document.getElementById("who").textContent = label;
      return me;
    } catch (e) {
      status(e.message, "error");
      return null;
    }
  }

  return { token, setToken, signOut, api, el, clear, status, stream, init };
})();
