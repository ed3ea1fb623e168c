// Item history: the audit record, its verification, and every human action.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  function term(list, name, value) {
    list.appendChild(HITL.el("dt", name));
    list.appendChild(HITL.el("dd", value === null || value === undefined ? "—" : value));
  }

  function render(record) {
    $("record").hidden = false;
    const v = record.verification;
    $("verified").textContent = v.ok ? "chain verified" : "CHAIN BROKEN";
    $("verified").className = "badge " + (v.ok ? "ok" : "bad");
    $("chain").textContent = v.entries + " entries · head " + v.head + (v.ok ? "" : " · broken at #" + v.broken_at + " (" + v.problem + ")");
    $("original").textContent = record.original ? record.original.output_text : "(not known to the router)";
    const flags = $("flags");
    HITL.clear(flags);
    for (const f of record.flags) {
      flags.appendChild(HITL.el("li", f.category + " [" + f.start + ":" + f.end + "] " + f.severity + " — " + f.explanation, "sev-" + f.severity));
    }
    const routing = $("routing");
    HITL.clear(routing);
    const r = record.routing;
    if (r) {
      term(routing, "Tier", r.tier);
      term(routing, "Risk score", r.risk_score);
      term(routing, "Mode", r.mode);
      term(routing, "Action", r.action);
      term(routing, "Rules fired", r.rules_fired.join(", "));
      term(routing, "Policy", r.policy_version);
      term(routing, "Required level", r.required_level + " × " + r.approvals_required);
    }
    const release = record.release;
    $("final").textContent = release ? release.text : "(not released yet)";
    $("final-meta").textContent = release ? release.outcome + " · by " + (release.decided_by.join(", ") || "policy") : "";
    if (record.retraction) $("final-meta").textContent += " · retracted: " + record.retraction.reason;
    const list = $("actions");
    HITL.clear(list);
    for (const a of record.actions) {
      const item = HITL.el("li");
      item.appendChild(HITL.el("b", a.at + " · " + a.actor + " (" + a.role + (a.level ? " " + a.level : "") + ") · " + a.action + (a.verdict ? " " + a.verdict : "")));
      const details = [];
      if (a.final !== undefined) details.push(a.final ? "final" : "not final: " + a.next_step);
      if (a.labels && a.labels.length) details.push("labels: " + a.labels.join(", "));
      if (a.severity) details.push("severity: " + a.severity);
      if (a.reason) details.push("reason: " + a.reason);
      if (a.notes) details.push("notes: " + a.notes);
      if (a.time_spent_s) details.push(a.time_spent_s + " s");
      if (details.length) item.appendChild(HITL.el("p", details.join(" · ")));
      if (a.before !== undefined && a.after !== undefined && a.after !== null && a.before !== a.after) {
        const view = HITL.el("div", null, "text diff");
        HITLDiff.render(view, a.before, a.after);
        item.appendChild(view);
      }
      item.appendChild(HITL.el("code", "hash " + a.hash.slice(0, 16) + "…", "hint"));
      list.appendChild(item);
    }
  }

  async function load(itemId) {
    try {
      const r = await HITL.api("GET", "/api/items/" + encodeURIComponent(itemId));
      render(r.data);
      HITL.status("");
    } catch (e) {
      $("record").hidden = true;
      HITL.status(e.message, "error");
    }
  }

  HITL.init().then((me) => {
    if (!me) return;
    const form = $("lookup");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const itemId = $("item").value.trim();
      history.replaceState(null, "", "/ui/history?item=" + encodeURIComponent(itemId));
      load(itemId);
    });
    const wanted = new URLSearchParams(location.search).get("item");
    if (wanted) { $("item").value = wanted; load(wanted); }
    document.body.dataset.ready = "1";
  });
})();
