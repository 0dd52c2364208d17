// Draws every <canvas data-chart> from the JSON in the element named by data-source, and redraws
// charts that htmx swapped in, so a polled fragment keeps its chart current.
(function () {
  "use strict";

  var COLORS = { sent: "#128c7e", delivered: "#2563eb", read: "#16a34a", failed: "#dc2626" };
  // Per day only messages have a time: "failed" here is what Meta reported failed after sending,
  // not the campaigns' failed contacts (the Failed figure above the chart).
  var LABELS = { sent: "Sent", delivered: "Delivered", read: "Read", failed: "Failed after sending" };

  function weekConfig(data) {
    return {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: ["sent", "delivered", "read", "failed"].map(function (name) {
          return { label: LABELS[name], data: data[name], backgroundColor: COLORS[name] };
        }),
      },
      options: { responsive: true, maintainAspectRatio: false, animation: false,
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    };
  }

  function rateConfig(data) {
    return {
      type: "bar",
      data: { labels: data.labels, datasets: [{ label: "Messages per minute", data: data.counts,
        backgroundColor: COLORS.sent }] },
      options: { responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    };
  }

  var BUILDERS = { week: weekConfig, rate: rateConfig };

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.source);
    var build = BUILDERS[canvas.dataset.chart];
    if (!source || !build || typeof Chart === "undefined") return;
    if (Chart.getChart(canvas)) return;
    new Chart(canvas, build(JSON.parse(source.textContent)));
  }

  // A swapped-in fragment brings a new canvas; canvases that already hold a chart are left alone.
  function drawAll() {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", drawAll);
  document.addEventListener("htmx:afterSettle", drawAll);
})();
