/* The drift report page: one uPlot bar chart per distribution, from the JSON the page carries.
   Marks: drift-report:charts-start/-end (performance.measure "drift-report:charts"); when done,
   <html> gets data-charts-ready (charts drawn), data-charts-ms and data-ready-ms. */
(function () {
  "use strict";
  performance.mark("drift-report:charts-start");
  var REF = "#c2cad3", REF_EDGE = "#7f8c99", CUR = "#1f3a93", GRID = "#e3e7eb", AXIS = "#2b3138";
  var FONT = '12px system-ui, "DejaVu Sans", sans-serif';
  var data = JSON.parse(document.getElementById("drift-report-charts").textContent);

  function pct(v) {
    if (v == null || isNaN(v)) return "–";
    if (v === 0) return "0%";
    var p = v * 100;
    return (p >= 10 ? p.toFixed(0) : p >= 1 ? p.toFixed(1) : p >= 0.01 ? p.toFixed(2) : p.toExponential(0)) + "%";
  }

  function short(text, most) {
    return text.length > most ? text.slice(0, most - 1) + "…" : text;
  }

  function barLabel(c, i) {
    var role = c.roles[i];
    if (role === "unseen") return "(new) " + c.labels[i];
    return c.labels[i];
  }

  // Keep the tails' labels (first and last bar) and as many boundary labels as fit:
  // none closer than MIN_GAP pixels to a kept one.
  var MIN_GAP = 46;
  function thin(ticks, n, px) {
    var ends = ticks.filter(function (t) { return t[0] === 0 || t[0] === n - 1; });
    var kept = ends.slice();
    ticks.forEach(function (t) {
      if (t[0] === 0 || t[0] === n - 1) return;
      for (var j = 0; j < kept.length; j++) if (Math.abs(kept[j][0] - t[0]) * px < MIN_GAP) return;
      kept.push(t);
    });
    return kept.sort(function (a, b) { return a[0] - b[0]; });
  }

  function draw(node, c, width) {
    var n = c.labels.length;
    var xs = new Array(n), i;
    for (i = 0; i < n; i++) xs[i] = i;
    var numeric = !!c.ticks;
    var ticks = numeric ? thin(c.ticks, n, (width - 70) / n) : null;
    var top = 0;
    for (i = 0; i < n; i++) top = Math.max(top, c.reference[i], c.current[i]);
    var longest = 0;
    if (!numeric) for (i = 0; i < n; i++) longest = Math.max(longest, Math.min(barLabel(c, i).length, 18));
    var rotate = !numeric && (n > 8 || longest > 10);
    var opts = {
      width: width,
      height: rotate ? 290 : 250,
      legend: { show: true, live: true },
      cursor: { points: { show: false }, drag: { x: false, y: false, setScale: false } },
      select: { show: false },
      scales: {
        x: { time: false, range: [-0.5, n - 0.5] },
        y: { range: [0, Math.max(top, 0.01) * 1.12] }
      },
      axes: [
        {
          stroke: AXIS, font: FONT, grid: { show: false }, ticks: { show: true, stroke: GRID },
          rotate: rotate ? -40 : 0,
          size: rotate ? 30 + Math.round(longest * 5.2) : 36,
          splits: numeric
            ? function () { return ticks.map(function (t) { return t[0]; }); }
            : function () {
                // Rotated names need about 20 px each: label every k-th bar where they would collide.
                var k = Math.max(1, Math.ceil(20 / ((width - 70) / n)));
                return xs.filter(function (x) { return x % k === 0; });
              },
          values: numeric
            ? function () { return ticks.map(function (t) { return t[1]; }); }
            : function (u, splits) { return splits.map(function (s) { return short(barLabel(c, s), 18); }); }
        },
        {
          stroke: AXIS, font: FONT, size: 56, grid: { stroke: GRID, width: 1 }, ticks: { show: false },
          label: "share of values", labelFont: FONT, labelSize: 18,
          values: function (u, splits) { return splits.map(pct); }
        }
      ],
      series: [
        { label: numeric ? "bin" : "value", value: function (u, v) { return v == null ? "(hover a bar)" : barLabel(c, v); } },
        {
          label: "reference", fill: REF, stroke: REF_EDGE, width: 1,
          paths: uPlot.paths.bars({ size: [0.9, Infinity], align: 0 }), points: { show: false },
          value: function (u, v) { return pct(v); }
        },
        {
          label: "current", fill: CUR, stroke: CUR, width: 1,
          paths: uPlot.paths.bars({ size: [0.45, Infinity], align: 0 }), points: { show: false },
          value: function (u, v) { return pct(v); }
        }
      ]
    };
    return new uPlot(opts, [xs, c.reference, c.current], node);
  }

  var nodes = document.querySelectorAll("[data-chart]");
  // Every width read first, in one layout: reading one after each chart is added would
  // force a layout per chart.
  var widths = [], k;
  for (k = 0; k < nodes.length; k++) widths.push(Math.max(nodes[k].clientWidth, 320));
  var drawn = 0;
  for (k = 0; k < nodes.length; k++) {
    var chart = data[+nodes[k].getAttribute("data-chart")];
    if (chart && chart.labels.length) {
      draw(nodes[k], chart, widths[k]);
      drawn++;
    }
  }
  // A link to one feature (the model dashboard's): #feature=<its name, percent-encoded>.
  // Names are compared as text, never put into a selector.
  function showLinkedFeature() {
    if (location.hash.indexOf("#feature=") !== 0) return;
    var name;
    try { name = decodeURIComponent(location.hash.slice(9)); } catch (e) { return; }
    var sections = document.querySelectorAll("article.feature[data-name]");
    for (var i = 0; i < sections.length; i++) {
      sections[i].classList.remove("linked");
      if (sections[i].getAttribute("data-name") === name) {
        sections[i].classList.add("linked");
        sections[i].scrollIntoView();
      }
    }
  }
  showLinkedFeature();
  window.addEventListener("hashchange", showLinkedFeature);

  performance.mark("drift-report:charts-end");
  var measure = performance.measure("drift-report:charts", "drift-report:charts-start", "drift-report:charts-end");
  var root = document.documentElement;
  root.setAttribute("data-charts-ms", (measure && measure.duration != null ? measure.duration : 0).toFixed(1));
  root.setAttribute("data-ready-ms", performance.now().toFixed(1));
  root.setAttribute("data-charts-ready", String(drawn));
})();
