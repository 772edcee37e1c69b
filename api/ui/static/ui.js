// fedsync pages: the conflict list refreshes itself; the merge editor gets a button per conflict region.
"use strict";

function refreshList(box) {
  const url = box.dataset.refresh;
  setInterval(async () => {
    try {
      const answer = await fetch(url, {credentials: "same-origin"});
      if (answer.ok) box.innerHTML = await answer.text();  // a page fragment the node rendered and escaped
    } catch (error) { /* the next round tries again */ }
  }, 10000);
}

// A region: "<<<<<<< label" ... "=======" ... ">>>>>>> label", each marker a whole line.
function regions(text) {
  const lines = text.split("\n"), found = [];
  let start = -1, middle = -1;
  lines.forEach((line, i) => {
    if (line.startsWith("<<<<<<< ")) { start = i; middle = -1; }
    else if (line === "=======" && start >= 0) middle = i;
    else if (line.startsWith(">>>>>>> ") && start >= 0 && middle > start) {
      found.push({start, middle, end: i, a: lines.slice(start + 1, middle), b: lines.slice(middle + 1, i)});
      start = -1;
    }
  });
  return {lines, found};
}

function take(editor, index, which) {
  const {lines, found} = regions(editor.value);
  const region = found[index];
  if (!region) return;
  const chosen = which === "a" ? region.a : which === "b" ? region.b : region.a.concat(region.b);
  lines.splice(region.start, region.end - region.start + 1, ...chosen);
  editor.value = lines.join("\n");
  editor.dispatchEvent(new Event("input"));
}

function regionButtons(editor, panel) {
  const render = () => {
    const {found} = regions(editor.value);
    panel.replaceChildren();
    panel.hidden = found.length === 0;
    found.forEach((region, index) => {
      const group = document.createElement("div");
      group.setAttribute("role", "group");
      const label = document.createElement("span");
      label.textContent = panel.dataset.label.replace("{n}", index + 1) + " (" + (region.start + 1) + ")";
      group.id = "region-" + index;
      group.setAttribute("aria-labelledby", group.id + "-label");
      label.id = group.id + "-label";
      group.append(label);
      for (const [which, text] of [["a", panel.dataset.takeA], ["b", panel.dataset.takeB], ["both", panel.dataset.takeBoth]]) {
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.region = index;
        button.dataset.take = which;
        button.textContent = text;
        button.addEventListener("click", () => take(editor, index, which));
        group.append(button);
      }
      panel.append(group);
    });
  };
  editor.addEventListener("input", render);
  render();
}

function lineLinks(editor) {
  for (const link of document.querySelectorAll("a[data-line]")) {
    link.addEventListener("click", event => {
      event.preventDefault();
      const lines = editor.value.split("\n"), line = Number(link.dataset.line) - 1;
      const start = lines.slice(0, line).reduce((n, l) => n + l.length + 1, 0);
      editor.focus();
      editor.setSelectionRange(start, start + (lines[line] || "").length);
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("conflicts");
  if (list) refreshList(list);
  const editor = document.getElementById("markdown"), panel = document.getElementById("regions");
  if (editor && panel) { regionButtons(editor, panel); lineLinks(editor); }
});

// The preview button: the node renders the draft (as the item page would) and the page shows it.
function previewButton(button, editor) {
  const target = document.getElementById(button.dataset.target), form = button.form;
  button.hidden = false;
  button.addEventListener("click", async () => {
    const body = new URLSearchParams({csrf: form.elements.csrf.value, markdown: editor.value});
    try {
      const answer = await fetch("/ui/preview", {method: "POST", body, credentials: "same-origin"});
      target.innerHTML = await answer.text();  // HTML the node rendered and escaped
    } catch (error) { target.textContent = String(error); }
    target.hidden = false;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("preview-button"), editor = document.getElementById("markdown");
  if (button && editor) previewButton(button, editor);
});

// The federation page's peers refresh like the conflict list, but not while the keyboard is inside the table
// (on a peer's button: replacing it would drop the focus), and only when something changed.
function refreshUnlessFocused(box) {
  let last = null;
  setInterval(async () => {
    if (box.contains(document.activeElement)) return;
    try {
      const answer = await fetch(box.dataset.refresh, {credentials: "same-origin"});
      if (!answer.ok) return;
      const html = await answer.text();  // a page fragment the node rendered and escaped
      if (html !== last) { box.innerHTML = html; last = html; }
    } catch (error) { /* the next round tries again */ }
  }, 10000);
}

document.addEventListener("DOMContentLoaded", () => {
  const peers = document.getElementById("peers");
  if (peers && peers.dataset.refresh) refreshUnlessFocused(peers);
});
