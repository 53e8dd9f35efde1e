/* wxbot console campaign report: the joins per day as one small ECharts bar chart from the page's own
   JSON (#joins-data). No network: the data is inline; the table under it carries the same numbers. */
(function () {
  "use strict";
  function start() {
    var el = document.getElementById("joins-chart");
    if (!window.echarts || !el) { return; }
    var data = JSON.parse(document.getElementById("joins-data").textContent);
    var chart = echarts.init(el, null, { renderer: "svg" });
    chart.setOption({
      animation: false,
      grid: { left: 36, right: 8, top: 8, bottom: 18 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: data.days, axisLabel: { fontSize: 9 } },
      yAxis: { type: "value", minInterval: 1, axisLabel: { fontSize: 9 } },
      series: [{ type: "bar", data: data.joins, barMaxWidth: 32, itemStyle: { color: "#07c160" } }]
    });
    window.addEventListener("resize", function () { chart.resize(); });
    document.body.setAttribute("data-charts", "1");
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
