/* wxbot console dashboard: one small ECharts line per figure from the page's own JSON (#kpi-data),
   with the seed's target (and the industry average) drawn as dashed lines. No network: the data is inline. */
(function () {
  "use strict";
  function start() {
    if (!window.echarts) { return; }
    var data = JSON.parse(document.getElementById("kpi-data").textContent);
    var charts = [];
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var name = el.getAttribute("data-chart");
      var percent = el.getAttribute("data-unit") === "percent";
      var scale = function (v) { return v === null || v === undefined ? null : (percent ? Math.round(v * 10000) / 100 : v); };
      var lines = [];
      var target = data.targets[name];
      if (target) {
        target.forEach(function (v) { if (v !== null) { lines.push({ yAxis: scale(v), name: "target" }); } });
      }
      if (data.averages[name] !== undefined) {
        lines.push({ yAxis: scale(data.averages[name]), name: "average", lineStyle: { color: "#9a6700" } });
      }
      var chart = echarts.init(el, null, { renderer: "svg" });
      chart.setOption({
        animation: false,
        grid: { left: 36, right: 8, top: 8, bottom: 18 },
        tooltip: { trigger: "axis", valueFormatter: function (v) { return v === null ? "—" : v + (percent ? "%" : ""); } },
        xAxis: { type: "category", data: data.days, axisLabel: { fontSize: 9 } },
        yAxis: { type: "value", scale: true, axisLabel: { fontSize: 9, formatter: percent ? "{value}%" : "{value}" } },
        series: [{
          type: "line", data: data.series[name].map(scale), showSymbol: false, lineStyle: { width: 1.5, color: "#07c160" },
          markLine: lines.length ? { symbol: "none", silent: true, label: { show: false },
                                     lineStyle: { type: "dashed", color: "#cf222e" }, data: lines } : undefined
        }]
      });
      charts.push(chart);
    });
    window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
    document.body.setAttribute("data-charts", String(charts.length));
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
