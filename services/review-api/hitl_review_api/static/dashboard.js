// Queue dashboard: live overview over server-sent events, re-connecting on errors.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  function cell(row, text) { row.appendChild(HITL.el("td", text)); }

  function render(data) {
    $("total-depth").textContent = data.total_depth;
    $("leased").textContent = data.leased;
    $("breached").textContent = data.total_breached;
    $("updated").textContent = new Date(data.generated_ms).toLocaleTimeString();
    const body = document.querySelector("#buckets tbody");
    HITL.clear(body);
    for (const b of data.buckets) {
      const row = HITL.el("tr", null, b.breached ? "breach" : "");
      cell(row, b.bucket);
      cell(row, b.depth);
      cell(row, Object.entries(b.tiers).map(([t, v]) => t + ": " + v.depth).join(", ") || "—");
      cell(row, b.breached);
      cell(row, b.oldest_age_s === null ? "—" : b.oldest_age_s);
      body.appendChild(row);
    }
    const people = document.querySelector("#reviewers tbody");
    HITL.clear(people);
    for (const r of data.reviewers) {
      const row = HITL.el("tr");
      cell(row, r.reviewer_id);
      cell(row, r.level);
      cell(row, r.skills.join(", ") || "general");
      cell(row, r.active_claims);
      cell(row, r.decisions);
      cell(row, [r.verdicts.approve, r.verdicts.edit, r.verdicts.reject, r.verdicts.escalate].join(" / "));
      cell(row, r.avg_time_s === null ? "—" : r.avg_time_s);
      people.appendChild(row);
    }
  }

  async function live() {
    for (;;) {
      try {
        $("live").textContent = "live";
        $("live").className = "live on";
        await HITL.stream("/api/overview/stream?interval=2", (event, data) => {
          if (event === "overview") render(data);
        });
      } catch (e) {
        HITL.status(e.message, "error");
      }
      $("live").textContent = "reconnecting…";
      $("live").className = "live";
      await new Promise((resolve) => setTimeout(resolve, 3000));
    }
  }

  HITL.init().then((me) => {
    if (!me) return;
    if (me.role === "reviewer") {
      HITL.status("The queue overview is for admins and auditors.", "error");
      return;
    }
    document.body.dataset.ready = "1";
    live();
  });
})();
