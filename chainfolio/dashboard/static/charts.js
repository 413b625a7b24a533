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

// Time axis labels: as many as fit the chart's width (about one per 90 px, and ECharts hides
// any that would still overlap), in a format for the span shown — hours within two days, days
// within a year, months beyond — never the mixed bold "29Oct"/"29Dec" boundary labels.
const DAY_MS = 86_400_000;
function timeAxis(element, timestamps) {
  const first = timestamps.length ? new Date(timestamps[0]).getTime() : 0;
  const last = timestamps.length ? new Date(timestamps[timestamps.length - 1]).getTime() : 0;
  const span = last - first;
  const day = span > 365 * DAY_MS ? "{MMM} {yyyy}" : "{d} {MMM}";
  const formats = {
    year: "{yyyy}", month: span > 365 * DAY_MS ? "{MMM} {yyyy}" : "{MMM}", day,
    hour: span > 2 * DAY_MS ? day : "{HH}:{mm}", minute: "{HH}:{mm}", second: "{HH}:{mm}:{ss}", millisecond: "{HH}:{mm}:{ss}",
  };
  return {
    type: "time", ...axisStyle,
    splitNumber: Math.max(2, Math.floor((element.clientWidth || 360) / 90)),
    axisLabel: { color: "#8b98a5", hideOverlap: true, formatter: formats, rich: {} },
  };
}

const usdAxis = (v) => (Math.abs(v) >= 1e6 ? `$${(v / 1e6).toFixed(1)}M` : Math.abs(v) >= 1e3 ? `$${(v / 1e3).toFixed(0)}k` : `$${v}`);

export function valueChart(element, timestamps, values) {
  return draw(element, {
    grid: { left: 60, right: 16, top: 16, bottom: 28 },
    tooltip: { trigger: "axis", valueFormatter: (v) => (v === null ? "gap" : `$${Number(v).toLocaleString("en-US", { maximumFractionDigits: 2 })}`) },
    xAxis: timeAxis(element, timestamps),
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
    // Names longer than the legend has room for end in "…" (the tooltip has them whole).
    legend: {
      type: "scroll", bottom: 0, left: 8, right: 8, itemWidth: 10, itemHeight: 10, itemGap: 8,
      textStyle: { color: "#c9d1d9", fontSize: 11, width: 72, overflow: "truncate" }, pageTextStyle: { color: "#8b98a5" },
    },
    series: [{
      type: "pie", radius: ["40%", "64%"], center: ["50%", "44%"],
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
    legend: { type: "scroll", textStyle: { color: "#c9d1d9" }, pageTextStyle: { color: "#8b98a5" }, top: 0 },
    tooltip: { trigger: "axis", valueFormatter: (v) => (v === null ? "gap" : Number(v).toFixed(2)) },
    xAxis: timeAxis(element, comparison.timestamps),
    yAxis: { type: "value", scale: true, ...axisStyle },
    series: [series("portfolio", comparison.portfolio), series(comparison.benchmark, comparison.benchmarkValues)],
  });
}

// The chart drawn in `element`, if any (the layout tests measure what it drew).
export function chartOf(element) {
  return instances.get(element) || null;
}

export function clearChart(element) {
  const chart = instances.get(element);
  if (chart) chart.clear();
}

window.addEventListener("resize", () => instances.forEach((chart) => chart.resize()));
