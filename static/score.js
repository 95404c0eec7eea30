// The page's file upload: score the CSV, show a short summary and offer the scored file.
// Without this script the form still works: the browser downloads the scored CSV.
"use strict";
(function () {
  const form = document.getElementById("score-form");
  const out = document.getElementById("score-summary");
  if (!form || !out || !window.fetch) return;

  function line(tag, text) {
    const node = document.createElement(tag);
    node.textContent = text;  // server text is shown as text, never as markup
    return node;
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    out.hidden = false;
    out.className = "result";
    out.replaceChildren(line("p", "Scoring…"));
    let response;
    try {
      response = await fetch(form.action, {method: "POST", body: new FormData(form)});
    } catch (error) {
      out.className = "result error";
      out.replaceChildren(line("p", "Could not reach the frontend: " + error));
      return;
    }
    if (!response.ok) {
      let message = response.status + " " + response.statusText;
      try { message = (await response.json()).error; } catch (error) { /* not JSON */ }
      out.className = "result error";
      out.replaceChildren(line("strong", "Could not score the file. "), line("span", message));
      return;
    }
    const blob = await response.blob();
    const rows = response.headers.get("X-Rows"), errors = response.headers.get("X-Row-Errors");
    const name = (/filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "") || [])[1]
      || "scored.csv";
    const summary = line("p", rows + " rows, " + errors + " with errors, answered by version "
      + response.headers.get("X-Model-Version") + ".");
    summary.id = "score-counts";
    const link = line("a", "Download " + name);
    link.href = URL.createObjectURL(blob);
    link.download = name;
    link.id = "score-download";
    const list = document.createElement("ul");
    list.id = "score-errors";
    let first = [];
    try { first = JSON.parse(response.headers.get("X-First-Errors") || "[]"); } catch (error) { /* none */ }
    first.forEach(function (text) { list.appendChild(line("li", text)); });
    out.replaceChildren(summary, ...(first.length ? [list] : []), link);
  });
})();
