/* wxbot console push report: pushes delivered per month, one bar series per kind, from the page's own
   JSON (#push-report-data). No network: the data is inline. */
(function () {
  "use strict";
  function start() {
    var el = document.getElementById("push-report-chart");
    if (!window.echarts || !el) { return; }
    var data = JSON.parse(document.getElementById("push-report-data").textContent);
    var series = Object.keys(data.kinds).map(function (kind) {
      return {
        name: data.kinds[kind], type: "bar", stack: "sent",
        data: data.months.map(function (m) { return data.sent[m + "|" + kind] || 0; })
      };
    });
    var chart = echarts.init(el, null, { renderer: "svg" });
    chart.setOption({
      animation: false, tooltip: { trigger: "axis" }, legend: { top: 0 },
      grid: { left: 36, right: 8, top: 28, bottom: 20 },
      xAxis: { type: "category", data: data.months }, yAxis: { type: "value", minInterval: 1 }, series: series
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
