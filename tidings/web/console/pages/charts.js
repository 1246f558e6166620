// Charts of GET /stats/messages/series (SPEC §11) with uPlot, loaded only here.
import { call, q } from "../api.js";
import { html, useEffect, useRef, useState } from "../lib.js";
import { Loading, Problem, useLoad, usePoll } from "../ui.js";

// What the chart draws: a count of the series, its label and the colour token.
export const LINES = [
  ["message_added", "Messages posted", "--info"],
  ["message_published_ok", "Deliveries acknowledged", "--good"],
  ["message_published_not_ok", "Attempts failed", "--bad"],
];
const HEALTH = [
  ["listener_failing", "turned failing"],
  ["listener_recovered", "recovered"],
  ["listener_disabled", "disabled"],
  ["listener_enabled", "enabled"],
];

let uplot = null;
function loadUplot() {
  if (!uplot) {
    // Its stylesheet, from this server like everything else (style-src 'self').
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = new URL("../vendor/uplot.css", import.meta.url).href;
    document.head.append(link);
    uplot = import("../vendor/uplot.mjs").then((module) => module.default);
  }
  return uplot;
}

/** A colour token (light-dark() included) as the rgb() the canvas needs. */
function colour(probe, token) {
  probe.style.color = `var(${token})`;
  return getComputedStyle(probe).color;
}

/** Changes of theme: the toggle's data-theme, or the system's preference. */
function useThemeChange() {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const bump = () => setTick((n) => n + 1);
    const observer = new MutationObserver(bump);
    observer.observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    const media = matchMedia("(prefers-color-scheme: dark)");
    media.addEventListener("change", bump);
    return () => {
      observer.disconnect();
      media.removeEventListener("change", bump);
    };
  }, []);
  return tick;
}

function Plot({ series, label }) {
  const box = useRef(null);
  const probe = useRef(null);
  const theme = useThemeChange();
  useEffect(() => {
    let chart = null;
    let gone = false;
    let observer = null;
    loadUplot().then((UPlot) => {
      // Gone, or its elements already detached (a page left while uPlot loaded).
      if (gone || !probe.current || !box.current) return;
      const at = (token) => colour(probe.current, token);
      const axis = { stroke: at("--muted"), grid: { stroke: at("--border"), width: 1 }, ticks: { stroke: at("--border"), width: 1 } };
      const { start, step_ms: step, counts } = series;
      const length = Math.max(0, ...LINES.map(([type]) => (counts[type] || []).length));
      const xs = Array.from({ length }, (_, i) => (start + i * step) / 1000);
      const data = [xs, ...LINES.map(([type]) => counts[type] || new Array(length).fill(0))];
      const width = Math.max(240, box.current.clientWidth);
      chart = new UPlot(
        {
          width,
          height: 220,
          scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(4, max)] } },
          axes: [axis, { ...axis, size: 44 }],
          series: [
            {},
            ...LINES.map(([, name, token]) => ({ label: name, stroke: at(token), width: 2, points: { show: false } })),
          ],
          legend: { live: false },
          cursor: { drag: { x: false, y: false } },
        },
        data,
        box.current,
      );
      observer = new ResizeObserver(() => {
        if (box.current) chart.setSize({ width: Math.max(240, box.current.clientWidth), height: 220 });
      });
      observer.observe(box.current);
    });
    return () => {
      gone = true;
      if (observer) observer.disconnect();
      if (chart) chart.destroy();
    };
  }, [series, theme]);
  return html`<div class="chart" role="img" aria-label=${label}>
    <span class="colour-probe" ref=${probe} aria-hidden="true"></span>
    <div ref=${box}></div>
  </div>`;
}

const sum = (list) => (list || []).reduce((n, x) => n + x, 0);

/** Posted, acknowledged and failed over the last hour or day, with health events. */
export function SeriesChart() {
  const [hours, setHours] = useState(1);
  const load = useLoad(() => call("GET", q("stats/messages/series", { hours })).then(({ data }) => data.series), [hours]);
  usePoll(load.reload, 60000);
  const picker = html`<div class="segmented" role="group" aria-label="Period">
    ${[
      [1, "Last hour"],
      [24, "Last 24 hours"],
    ].map(
      ([value, text]) => html`<button key=${value} type="button" class="button small" aria-pressed=${hours === value}
        onClick=${() => setHours(value)}>${text}</button>`,
    )}
  </div>`;
  if (load.error) return html`${picker}<${Problem} error=${load.error} what="read stats" />`;
  if (!load.data) return html`${picker}<${Loading} />`;
  const { counts } = load.data;
  const totals = LINES.map(([type, name]) => `${name}: ${sum(counts[type])}`).join(", ");
  const health = HEALTH.filter(([type]) => sum(counts[type]) > 0);
  const period = hours === 1 ? "the last hour, by minute" : "the last 24 hours, by hour";
  const quiet = LINES.every(([type]) => sum(counts[type]) === 0);
  return html`${picker}
    <${Plot} series=${load.data} label=${`Chart of ${period}. ${totals}.`} />
    <p class="muted small chart-totals">In ${period}: ${totals}.</p>
    ${quiet && html`<p class="small">Nothing in this period yet: post a message to a queue with a listener and its
      deliveries show up here within a minute.</p>`}
    <p class="small">${health.length === 0
      ? html`<span class="muted">No listener turned failing, recovered, or was disabled or enabled.</span>`
      : html`Listener health: ${health.map(([type, text]) => `${sum(counts[type])} ${text}`).join(", ")}.`}</p>`;
}
