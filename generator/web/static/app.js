// pattern ui: live preview. Without this script every form still works by posting.
"use strict";

function live(form) {
  let timer = null;
  let serial = 0;
  const update = async () => {
    const mine = ++serial;
    let answer;
    try {
      const response = await fetch(form.dataset.live, { method: "POST", body: new FormData(form) });
      answer = await response.json();
    } catch (error) {
      answer = { ok: false, errors: {}, problems: ["the preview failed: " + error] };
    }
    if (mine !== serial) return; // a newer change is on its way
    show(answer);
  };
  const later = () => { clearTimeout(timer); timer = setTimeout(update, 250); };
  form.addEventListener("input", later);
  form.addEventListener("change", later);
  form.dataset.ready = "true";
}

function list(id, items) {
  const node = document.getElementById(id);
  if (!node) return;
  node.replaceChildren(...(items || []).map((text) => {
    const item = document.createElement("li");
    item.textContent = text;
    return item;
  }));
}

function show(answer) {
  for (const node of document.querySelectorAll("p.error")) {
    const id = node.id.replace(/^err-/, "");
    const message = (answer.errors || {})[id] || "";
    node.textContent = message;
    node.closest(".field")?.classList.toggle("invalid", message !== "");
  }
  list("problems", answer.problems);
  list("notes", answer.notes);
  for (const id of ["command", "flags", "stack"]) {
    const node = document.getElementById(id);
    if (node && answer[id] !== undefined) node.textContent = answer[id];
  }
  if (answer.ok || answer.output !== undefined) {
    const output = document.getElementById("output");
    if (output) output.textContent = answer.ok ? answer.output : "";
  }
  const diagram = document.getElementById("diagram");
  if (diagram) { // no stale pod beside a form that no longer makes one
    if (answer.ok && answer.svg) diagram.src = answer.svg;
    diagram.hidden = !(answer.ok && answer.svg);
  }
  const diff = document.getElementById("diff");
  if (diff) {
    diff.replaceChildren(...(answer.diff_lines || []).flatMap(([cls, line]) => {
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = line;
      return [span, document.createTextNode("\n")];
    }));
  }
  document.body.dataset.updated = String(Date.now());
}

function text(id) {
  return document.getElementById(id)?.textContent || "";
}

document.addEventListener("click", async (event) => {
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    try {
      await navigator.clipboard.writeText(text(copy.dataset.copy));
      copy.textContent = "copied";
    } catch (error) {
      copy.textContent = "copy failed";
    }
    setTimeout(() => { copy.textContent = "copy"; }, 1500);
    return;
  }
  const download = event.target.closest("[data-download]");
  if (download) {
    const blob = new Blob([text(download.dataset.download)], { type: "application/yaml" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = download.dataset.filename || "pattern.yaml";
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }
});

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-live]")) live(form);
  document.documentElement.classList.add("js");
});
