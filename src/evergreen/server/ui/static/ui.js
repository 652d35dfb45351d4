// Evergreen UI: the few things a server-rendered page cannot do alone.
// Charts (Plotly, loaded only on pages that have one), copy buttons, confirmations, auto-refresh, live parts.
"use strict";

let plotly = null;  // the promise of Plotly's script, loaded once, on the first page part with a chart

function drawCharts(root = document) {
  const figures = root.querySelectorAll("script.figure");
  if (!figures.length) return;
  plotly = plotly || new Promise((resolve) => {
    const script = document.createElement("script");
    script.src = document.body.dataset.plotly;
    script.onload = resolve;
    document.head.appendChild(script);
  });
  plotly.then(() => {
    for (const node of figures) {
      const figure = JSON.parse(node.textContent);
      const holder = node.parentElement;
      const layout = Object.assign({ autosize: true, margin: { l: 50, r: 20, t: 30, b: 40 } }, figure.layout || {});
      window.Plotly.newPlot(holder, figure.data, layout, { responsive: true, displaylogo: false });
    }
  });
}

function wireCopyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(button.dataset.copy);
        button.textContent = "Copied";
      } catch {
        button.textContent = "Select and copy";
      }
      setTimeout(() => { button.textContent = "Copy"; }, 1500);
    });
  }
}

function wireConfirmations() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

function wireBackLinks() {
  for (const link of document.querySelectorAll("a.back")) {
    link.addEventListener("click", (event) => {
      if (window.history.length > 1) { event.preventDefault(); window.history.back(); }
    });
  }
}

// Pages that watch something live (data-refresh="seconds") reload while nobody is typing in them.
function scheduleRefresh() {
  const seconds = Number(document.body.dataset.refresh || 0);
  if (!seconds) return;
  setInterval(() => {
    const typing = document.activeElement && ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName);
    if (!document.hidden && !typing) window.location.reload();
  }, seconds * 1000);
}

// A part that follows something live (data-live="URL", data-every="seconds", e.g. a running run's steps) is
// brought up to date without reloading the page: each element of URL's answer that has an id replaces the
// page's element of that id (a step the reader opened or closed stays so). It stops once the answer has no
// data-live part any more (the run ended), and drops the page's [data-while-live] parts (the cancel form).
function followLive() {
  const first = document.querySelector("[data-live]");
  if (!first) return;
  const every = Number(first.dataset.every || 2) * 1000;
  const tick = async () => {
    const part = document.querySelector("[data-live]");
    if (!part) return;
    if (document.hidden) { setTimeout(tick, every); return; }
    let html;
    try {
      const response = await fetch(part.dataset.live, { headers: { Accept: "text/html" } });
      if (response.redirected || (!response.ok && response.status < 500)) {
        window.location.reload();  // logged out, or the run is gone: the page says so
        return;
      }
      html = response.ok ? await response.text() : null;
    } catch {
      html = null;  // the server is restarting: try again at the next tick
    }
    if (html === null) { setTimeout(tick, every); return; }
    const fresh = new DOMParser().parseFromString(html, "text/html");
    for (const node of fresh.body.querySelectorAll(":scope > [id]")) {
      const old = document.getElementById(node.id);
      if (!old) continue;
      for (const details of old.querySelectorAll("details[id]")) {
        const twin = node.querySelector(`details[id="${CSS.escape(details.id)}"]`);
        if (twin) twin.open = details.open;
      }
      const adopted = document.importNode(node, true);
      old.replaceWith(adopted);
      drawCharts(adopted);
    }
    if (document.querySelector("[data-live]")) setTimeout(tick, every);
    else for (const gone of document.querySelectorAll("[data-while-live]")) gone.remove();
  };
  setTimeout(tick, every);
}

document.addEventListener("DOMContentLoaded", () => {
  drawCharts();
  wireCopyButtons();
  wireConfirmations();
  wireBackLinks();
  scheduleRefresh();
  followLive();
});
