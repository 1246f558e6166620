// The overview: how much there is, what happened lately, and which listeners need a look.
import { call, listAll, listPage } from "../api.js";
import { html } from "../lib.js";
import { Badge, Empty, Loading, Page, Problem, Section, href, useLoad } from "../ui.js";
import { SeriesChart } from "./charts.js";
import { ListenerTable } from "./queues.js";

function Count({ label, to, load }) {
  const count = useLoad(load, []);
  let value = html`<span class="muted">…</span>`;
  if (count.data !== undefined) value = count.data;
  if (count.error) value = html`<span class="muted small">${count.error.forbidden ? "not readable with this key" : count.error.detail}</span>`;
  return html`<a class="stat" href=${to}>
    <span class="stat-value">${value}</span>
    <span class="stat-label">${label}</span>
  </a>`;
}

const total = (path, field) => () => listPage(path, field, 1, 1).then(({ total: n }) => n);

// The counts of /stats/messages worth a row of their own, in reading order.
const ACTIVITY = [
  ["message_added", "Messages posted"],
  ["message_published_ok", "Deliveries acknowledged"],
  ["message_published_not_ok", "Delivery attempts failed"],
  ["queue_added", "Queues created"],
  ["listener_added", "Listeners added"],
  ["api_key_added", "API keys created"],
];

function Activity() {
  const stats = useLoad(() => call("GET", "stats/messages").then(({ data }) => data.aggregated_api_usage_events), []);
  if (stats.error) return html`<${Problem} error=${stats.error} what="read stats" />`;
  if (!stats.data) return html`<${Loading} />`;
  const { last_1_hours: hour, last_24_hours: day, today_so_far: today } = stats.data;
  return html`<div class="table-wrap"><table class="table">
    <thead><tr><th scope="col">Event</th><th scope="col" class="num">Last hour</th><th scope="col" class="num">Last 24 hours</th><th scope="col" class="num">Today (UTC)</th></tr></thead>
    <tbody>
      ${ACTIVITY.map(
        ([type, label]) => html`<tr key=${type}>
          <th scope="row">${label}</th>
          <td class="num">${hour[type]}</td><td class="num">${day[type]}</td><td class="num">${today[type]}</td>
        </tr>`,
      )}
    </tbody>
  </table></div>`;
}

const ATTENTION_LIMIT = 1000;

function Attention() {
  const listeners = useLoad(async () => {
    const [all, queues] = await Promise.all([
      listAll("listeners", "listeners", ATTENTION_LIMIT),
      listAll("queues", "queues").catch(() => []),
    ]);
    return {
      all,
      needy: all.filter(
        (l) =>
          (l.health && l.health.state !== "healthy") ||
          l.liveness.state === "down" ||
          l.liveness.state === "unstable" ||
          l.messages.missed_count > 0,
      ),
      names: new Map(queues.map((q) => [q.id, q.name])),
    };
  }, []);
  if (listeners.error) return html`<${Problem} error=${listeners.error} what="read listeners" />`;
  if (!listeners.data) return html`<${Loading} />`;
  const { all, needy, names } = listeners.data;
  if (all.length === 0) {
    return html`<${Empty} title="No listeners yet"><p><a href=${href("queues")}>Open a queue</a> and add a listener to start delivering.</p><//>`;
  }
  const count = (pick) => {
    const found = {};
    for (const l of all) if (pick(l)) found[pick(l)] = (found[pick(l)] || 0) + 1;
    return found;
  };
  const health = count((l) => l.health && l.health.state);
  const liveness = count((l) => l.liveness.state);
  const badges = (found, order) =>
    order.filter((s) => found[s]).map((s) => html`<${Badge} key=${s} value=${s} label=${`${found[s]} ${s}`} />`);
  return html`
    <dl class="facts by-state">
      ${Object.keys(health).length > 0 && html`<dt>Health</dt><dd class="badges health-counts">${badges(health, ["healthy", "failing", "disabled"])}</dd>`}
      <dt>Liveness</dt><dd class="badges">${badges(liveness, ["stable", "unstable", "down", "unknown"])}</dd>
    </dl>
    ${needy.length === 0
      ? html`<p class="muted">Every listener is healthy, answers its probes and has missed nothing.</p>`
      : html`<${ListenerTable} listeners=${needy} queueNames=${names} />`}
    ${all.length >= ATTENTION_LIMIT && html`<p class="muted small">Looked at the first ${ATTENTION_LIMIT} listeners.</p>`}`;
}

export function Overview() {
  return html`<${Page} title="Overview">
    <div class="stats">
      <${Count} label="Queues" to=${href("queues")} load=${total("queues", "queues")} />
      <${Count} label="Listeners" to=${href("listeners")} load=${total("listeners", "listeners")} />
      <${Count} label="Messages" to=${href("messages")} load=${total("messages", "messages")} />
    </div>
    <${Section} title="Listeners needing a look"><${Attention} /><//>
    <${Section} title="Deliveries over time"><${SeriesChart} /><//>
    <${Section} title="Activity"><${Activity} /><//>
  <//>`;
}
