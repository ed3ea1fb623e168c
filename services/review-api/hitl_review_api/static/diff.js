// Word-level diff (longest common subsequence) for the edit view and the history page.
"use strict";

const HITLDiff = (() => {
  const LIMIT = 4000000; // cells; beyond it show a whole replacement instead of hanging

  function tokens(text) { return text.match(/\s+|[^\s]+/g) || []; }

  function diff(before, after) {
    const a = tokens(before), b = tokens(after);
    if (a.length * b.length > LIMIT) {
      return [{ op: "del", text: before }, { op: "ins", text: after }];
    }
    const n = a.length, m = b.length;
    const width = m + 1;
    const table = new Uint32Array((n + 1) * width);
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        table[i * width + j] = a[i] === b[j]
          ? table[(i + 1) * width + j + 1] + 1
          : Math.max(table[(i + 1) * width + j], table[i * width + j + 1]);
      }
    }
    const out = [];
    const push = (op, text) => {
      const last = out[out.length - 1];
      if (last && last.op === op) last.text += text; else out.push({ op, text });
    };
    let i = 0, j = 0;
    while (i < n && j < m) {
      if (a[i] === b[j]) { push("same", a[i]); i++; j++; }
      else if (table[(i + 1) * width + j] >= table[i * width + j + 1]) push("del", a[i++]);
      else push("ins", b[j++]);
    }
    while (i < n) push("del", a[i++]);
    while (j < m) push("ins", b[j++]);
    return group(out);
  }

  // Readable hunks: a change run (with the spaces inside it) becomes one deletion
  // followed by one insertion, instead of word-by-word interleaving.
  function group(parts) {
    const result = [];
    let del = "", ins = "", changed = false;
    const flush = () => {
      if (del) result.push({ op: "del", text: del });
      if (ins) result.push({ op: "ins", text: ins });
      del = ""; ins = ""; changed = false;
    };
    parts.forEach((part, index) => {
      const next = parts[index + 1];
      if (part.op === "del") { del += part.text; changed = true; }
      else if (part.op === "ins") { ins += part.text; changed = true; }
      else if (changed && /^\s+$/.test(part.text) && next && next.op !== "same") {
        del += part.text; ins += part.text;
      } else { flush(); result.push(part); }
    });
    flush();
    return result;
  }

  function render(node, before, after) {
    while (node.firstChild) node.removeChild(node.firstChild);
    for (const part of diff(before, after)) {
      const tag = part.op === "ins" ? "ins" : part.op === "del" ? "del" : "span";
      const span = document.createElement(tag);
      span.textContent = part.text;
      node.appendChild(span);
    }
  }

  return { diff, render };
})();
