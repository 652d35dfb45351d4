// Evergreen UI: the few things a server-rendered page cannot do alone.
// Charts (Plotly, loaded only on pages that have one), copy buttons, confirmations, auto-refresh.
"use strict";

function drawCharts() {
  const figures = document.querySelectorAll("script.figure");
  if (!figures.length) return;
  const script = document.createElement("script");
  script.src = document.body.dataset.plotly;
  script.onload = () => {
    for (const node of figures) {
      const figure = JSON.parse(node.textContent);
      const holder = node.parentElement;
      const layout = Object.assign({ autosize: true, margin: { l: 50, r: 20, t: 30, b: 40 } }, figure.layout || {});
      window.Plotly.newPlot(holder, figure.data, layout, { responsive: true, displaylogo: false });
    }
  };
  document.head.appendChild(script);
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

document.addEventListener("DOMContentLoaded", () => {
  drawCharts();
  wireCopyButtons();
  wireConfirmations();
  wireBackLinks();
  scheduleRefresh();
});
