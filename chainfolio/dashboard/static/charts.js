// ECharts wrappers: one instance per element, no animation (the page is ready when drawn).
import { init } from "./vendor/echarts.min.js";

const instances = new Map();
const palette = ["#58a6ff", "#3fb950", "#d29922", "#f778ba", "#a371f7", "#39c5cf", "#f85149", "#8b98a5", "#e3b341", "#56d364"];
const axisStyle = { axisLine: { lineStyle: { color: "#3b4654" } }, axisLabel: { color: "#8b98a5" }, splitLine: { lineStyle: { color: "#222b35" } } };

function chartFor(element) {
  let chart = instances.get(element);
  if (!chart) {
    chart = init(element, null, { renderer: "canvas" });
    instances.set(element, chart);
  }
  return chart;
}

// Resolves once the chart has drawn the option just set.
function draw(element, option) {
  const chart = chartFor(element);
  return new Promise((resolve) => {
    const done = () => {
      chart.off("finished", done);
      resolve(chart);
    };
    chart.on("finished", done);
    chart.setOption({ animation: false, color: palette, ...option }, true);
  });
}

const usdAxis = (v) => (Math.abs(v) >= 1e6 ? `$${(v / 1e6).toFixed(1)}M` : Math.abs(v) >= 1e3 ? `$${(v / 1e3).toFixed(0)}k` : `$${v}`);

export function valueChart(element, timestamps, values) {
  return draw(element, {
    grid: { left: 60, right: 16, top: 16, bottom: 28 },
    tooltip: { trigger: "axis", valueFormatter: (v) => (v === null ? "gap" : `$${Number(v).toLocaleString("en-US", { maximumFractionDigits: 2 })}`) },
    xAxis: { type: "time", ...axisStyle },
    yAxis: { type: "value", scale: true, ...axisStyle, axisLabel: { color: "#8b98a5", formatter: usdAxis } },
    series: [{
      type: "line", name: "value", showSymbol: false, connectNulls: false,
      areaStyle: { opacity: 0.12 }, lineStyle: { width: 2 },
      data: timestamps.map((t, i) => [t, values[i] === null ? null : Number(values[i])]),
    }],
  });
}

export function donut(element, slices) {
  return draw(element, {
    tooltip: { trigger: "item", formatter: (p) => `${p.name}<br>$${Number(p.value).toLocaleString("en-US", { maximumFractionDigits: 0 })} (${p.percent}%)` },
    legend: { type: "scroll", bottom: 0, textStyle: { color: "#c9d1d9", fontSize: 11 }, pageTextStyle: { color: "#8b98a5" }, itemWidth: 10, itemHeight: 10 },
    series: [{
      type: "pie", radius: ["42%", "68%"], center: ["50%", "44%"],
      label: { show: true, position: "inside", formatter: (p) => (p.percent >= 8 ? `${Math.round(p.percent)}%` : ""), color: "#0f1419", fontSize: 11, fontWeight: 600 },
      data: slices.map((s) => ({ name: s.label, value: Number(s.value) })),
    }],
  });
}

export function compareChart(element, comparison) {
  const series = (name, values) => ({
    type: "line", name, showSymbol: false, connectNulls: false, lineStyle: { width: 2 },
    data: comparison.timestamps.map((t, i) => [t, values[i]]),
  });
  return draw(element, {
    grid: { left: 48, right: 16, top: 30, bottom: 28 },
    legend: { textStyle: { color: "#c9d1d9" }, top: 0 },
    tooltip: { trigger: "axis", valueFormatter: (v) => (v === null ? "gap" : Number(v).toFixed(2)) },
    xAxis: { type: "time", ...axisStyle },
    yAxis: { type: "value", scale: true, ...axisStyle },
    series: [series("portfolio", comparison.portfolio), series(comparison.benchmark, comparison.benchmarkValues)],
  });
}

export function clearChart(element) {
  const chart = instances.get(element);
  if (chart) chart.clear();
}

window.addEventListener("resize", () => instances.forEach((chart) => chart.resize()));
