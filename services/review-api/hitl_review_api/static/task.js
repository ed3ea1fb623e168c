// Task view: claim, read, edit, label and decide, all from the keyboard.
"use strict";

(function () {
  const LABELS = [
    ["factual_error", "Factual error"], ["reasoning_flaw", "Reasoning flaw"], ["style", "Style"],
    ["alignment_safety", "Alignment / safety"], ["pii", "PII"],
    ["policy_violation", "Policy violation"], ["other", "Other"],
  ];
  const $ = (id) => document.getElementById(id);
  let claim = null;      // the current claim, as the API returned it
  let claimedAt = 0;     // for time spent
  let heartbeat = null;
  let pending = null;    // "reject" | "escalate" waiting for a reason
  let busy = false;

  function buildLabels() {
    const box = $("labels");
    LABELS.forEach(([value, text], index) => {
      const label = HITL.el("label", null, "label-pick");
      const input = document.createElement("input");
      input.type = "checkbox";
      input.value = value;
      input.id = "label-" + value;
      label.appendChild(input);
      label.appendChild(HITL.el("span", " " + text + " "));
      label.appendChild(HITL.el("kbd", String(index + 1)));
      box.appendChild(label);
    });
  }

  function chosenLabels() {
    return Array.from(document.querySelectorAll("#labels input:checked")).map((i) => i.value);
  }

  function renderOutput(task, segments) {
    const out = $("output");
    HITL.clear(out);
    const flags = task.screened.flags;
    for (const segment of segments) {
      if (!segment.flags.length) { out.appendChild(document.createTextNode(segment.text)); continue; }
      const mark = HITL.el("mark", segment.text, "flag sev-" + flags[segment.flags[0]].severity);
      mark.dataset.flags = segment.flags.join(" ");
      mark.title = segment.flags.map((i) => {
        const f = flags[i];
        return f.category + " (" + f.detector + ", " + f.severity + ", score " + f.score.toFixed(2) + "): " + f.explanation;
      }).join("\n");
      mark.tabIndex = 0;
      out.appendChild(mark);
    }
    const list = $("flags");
    HITL.clear(list);
    flags.forEach((f, i) => {
      const item = HITL.el("li", null, "sev-" + f.severity);
      item.appendChild(HITL.el("b", "#" + (i + 1) + " " + f.category));
      item.appendChild(HITL.el("span", " · " + f.detector + " · " + f.severity + " · " + f.score.toFixed(2) + " — "));
      item.appendChild(HITL.el("span", f.explanation));
      list.appendChild(item);
    });
    $("flag-count").textContent = flags.length + (flags.length === 1 ? " flag" : " flags");
  }

  function renderContext(output) {
    $("prompt").textContent = output.prompt;
    const list = $("context");
    HITL.clear(list);
    if (!output.context.length) list.appendChild(HITL.el("li", "No retrieved context.", "hint"));
    for (const doc of output.context) {
      const item = HITL.el("li");
      item.appendChild(HITL.el("b", doc.doc_id + (doc.source ? " · " + doc.source : "")));
      item.appendChild(HITL.el("p", doc.text, "text"));
      list.appendChild(item);
    }
  }

  function renderPrevious(previous) {
    $("previous").hidden = previous.length === 0;
    const list = $("previous-list");
    HITL.clear(list);
    for (const d of previous) {
      const item = HITL.el("li");
      item.appendChild(HITL.el("b", d.reviewer_id + " (" + d.reviewer_level + ") " + d.verdict));
      if (d.reason) item.appendChild(HITL.el("span", " — " + d.reason));
      if (d.labels.length) item.appendChild(HITL.el("span", " · labels: " + d.labels.join(", ")));
      if (d.notes) item.appendChild(HITL.el("p", "Notes: " + d.notes, "hint"));
      if (d.edited_text) {
        const view = HITL.el("div", null, "text diff");
        HITLDiff.render(view, d.original_text, d.edited_text);
        item.appendChild(view);
      }
      list.appendChild(item);
    }
  }

  function renderSimilar(cases) {
    const list = $("similar");
    HITL.clear(list);
    if (!cases.length) list.appendChild(HITL.el("li", "No similar decided cases yet.", "hint"));
    for (const c of cases) {
      const item = HITL.el("li");
      const link = HITL.el("a", c.item_id);
      link.href = "/ui/history?item=" + encodeURIComponent(c.item_id);
      item.appendChild(link);
      item.appendChild(HITL.el("span", " " + c.verdict + (c.labels.length ? " · " + c.labels.join(", ") : "")));
      if (c.reason) item.appendChild(HITL.el("span", " — " + c.reason));
      item.appendChild(HITL.el("p", c.excerpt, "text hint"));
      list.appendChild(item);
    }
  }

  function show(data, since) {
    claim = data;
    claimedAt = since || Date.now();
    // a reload keeps the claim (and its lease) instead of stranding it until expiry
    sessionStorage.setItem("hitl.claim", JSON.stringify({ data, since: claimedAt }));
    const task = data.task;
    const output = task.screened.output;
    $("empty").hidden = true;
    $("work").hidden = false;
    $("item-id").textContent = task.item_id;
    $("item-link").href = "/ui/history?item=" + encodeURIComponent(task.item_id);
    $("tier").textContent = task.tier;
    $("tier").className = "tier tier-" + task.tier;
    $("app").textContent = output.app + " / " + output.use_case;
    $("model").textContent = output.model;
    const confidence = output.confidence;
    $("confidence").value = confidence === null ? 0 : confidence;
    $("confidence-text").textContent = confidence === null ? "n/a" : confidence.toFixed(2);
    $("sla").textContent = new Date(task.sla_deadline).toLocaleTimeString();
    $("approvals").textContent = (data.previous_decisions.filter((d) => d.verdict === "approve" || d.verdict === "edit").length) + " / " + data.approvals_needed;
    renderOutput(task, data.segments);
    renderContext(output);
    renderPrevious(data.previous_decisions);
    renderSimilar(data.similar_cases);
    $("editor").value = data.current_text;
    $("edit-card").hidden = data.current_text === output.output_text;
    HITLDiff.render($("diff"), output.output_text, data.current_text);
    for (const input of document.querySelectorAll("#labels input")) input.checked = false;
    $("severity").value = "";
    $("reason").value = "";
    $("notes").value = "";
    setPending(null);
    updateLease();
    clearInterval(heartbeat);
    heartbeat = setInterval(beat, Math.max(5, data.lease_seconds / 3) * 1000);
  }

  function updateLease() {
    if (!claim) return;
    $("lease").textContent = new Date(claim.lease_expires_ms).toLocaleTimeString();
  }

  async function beat() {
    if (!claim) return;
    try {
      const r = await HITL.api("POST", "/api/tasks/" + encodeURIComponent(claim.task_id) + "/heartbeat", { fence: claim.fence });
      claim.lease_expires_ms = r.data.lease_expires_ms;
      sessionStorage.setItem("hitl.claim", JSON.stringify({ data: claim, since: claimedAt }));
      updateLease();
    } catch (e) {
      HITL.status("Lease lost: " + e.message, "error");
      reset("Your lease expired; the task went back to the queue. Press n for the next one.");
    }
  }

  function reset(message) {
    claim = null;
    sessionStorage.removeItem("hitl.claim");
    clearInterval(heartbeat);
    $("work").hidden = true;
    $("empty").hidden = false;
    $("empty-text").textContent = message;
  }

  async function next() {
    if (busy) return;
    busy = true;
    try {
      if (claim) {
        await HITL.api("POST", "/api/tasks/" + encodeURIComponent(claim.task_id) + "/release", { fence: claim.fence }).catch(() => null);
        claim = null;
      }
      const r = await HITL.api("POST", "/api/tasks/claim");
      if (r.status === 204) { reset("Nothing to review for you right now. Press n to try again."); HITL.status("Queue empty."); return; }
      show(r.data);
      HITL.status("Claimed " + r.data.task_id + ".", "ok");
    } catch (e) {
      HITL.status(e.message, "error");
    } finally {
      busy = false;
    }
  }

  function setPending(verdict) {
    pending = verdict;
    $("pending").textContent = verdict ? "Type a reason, then Enter to " + verdict + " (Esc cancels)." : "";
  }

  function openEditor() {
    $("edit-card").hidden = false;
    $("editor").focus();
  }

  async function submit(verdict) {
    if (!claim || busy) return;
    const original = claim.task.screened.output.output_text;
    const text = $("editor").value;
    const edited = text !== original;
    if (verdict === "approve" && edited) verdict = "edit";
    const reason = $("reason").value.trim();
    if ((verdict === "reject" || verdict === "escalate") && !reason) {
      setPending(verdict);
      $("reason").focus();
      return;
    }
    const body = {
      fence: claim.fence,
      verdict,
      edited_text: verdict === "edit" ? text : null,
      reason: reason || null,
      labels: chosenLabels(),
      severity: $("severity").value || null,
      notes: $("notes").value.trim() || null,
      time_spent_s: Math.round((Date.now() - claimedAt) / 100) / 10,
    };
    busy = true;
    try {
      const r = await HITL.api("POST", "/api/tasks/" + encodeURIComponent(claim.task_id) + "/decision", body);
      const step = { done: "Decision recorded.", second_approval: "Recorded; a second reviewer must approve.", senior_review: "Recorded; an L2+ reviewer must confirm.", escalated: "Escalated." }[r.data.next_step] || "Recorded.";
      reset(step + " Press n for the next task.");
      HITL.status(step + " (" + r.data.verdict + ")", "ok");
    } catch (e) {
      HITL.status(e.message, "error");
      if (e.status === 409) reset("This task is no longer yours. Press n for the next one.");
    } finally {
      busy = false;
    }
  }

  function typing(target) {
    return target instanceof HTMLElement && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (event.key === "Escape") {
      if (typing(target)) target.blur();
      setPending(null);
      return;
    }
    if (target.id === "reason" && event.key === "Enter" && pending) {
      event.preventDefault();
      submit(pending);
      return;
    }
    if (typing(target)) return;
    const key = event.key.toLowerCase();
    if (key === "n") { event.preventDefault(); next(); return; }
    if (!claim) return;
    if (key === "a") { event.preventDefault(); submit("approve"); }
    else if (key === "e") { event.preventDefault(); openEditor(); }
    else if (key === "r") { event.preventDefault(); submit("reject"); }
    else if (key === "x") { event.preventDefault(); submit("escalate"); }
    else if (/^[1-7]$/.test(key)) {
      const input = document.querySelectorAll("#labels input")[Number(key) - 1];
      input.checked = !input.checked;
    }
  }

  async function start() {
    const me = await HITL.init();
    if (!me) return;
    buildLabels();
    if (me.role !== "reviewer") {
      $("empty-text").textContent = "Only reviewers work tasks; your role is " + me.role + ".";
      $("claim").hidden = true;
      return;
    }
    document.addEventListener("keydown", onKey);
    $("claim").addEventListener("click", next);
    $("next").addEventListener("click", next);
    $("approve").addEventListener("click", () => submit("approve"));
    $("edit").addEventListener("click", openEditor);
    $("reject").addEventListener("click", () => submit("reject"));
    $("escalate").addEventListener("click", () => submit("escalate"));
    $("editor").addEventListener("input", () => {
      if (claim) HITLDiff.render($("diff"), claim.task.screened.output.output_text, $("editor").value);
    });
    const kept = JSON.parse(sessionStorage.getItem("hitl.claim") || "null");
    if (kept && kept.data.lease_expires_ms > Date.now()) {
      show(kept.data, kept.since);
      beat();
    }
    document.body.dataset.ready = "1";
  }

  start();
})();
