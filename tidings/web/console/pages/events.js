// Events: a live tail of the organization's usage events, following the API's cursor
// (startAfter + startAfterId: the stored_at and id of the last event seen).
import { call, q, serverNow } from "../api.js";
import { html, useEffect, useRef, useState } from "../lib.js";
import { Empty, Page, Problem, formatTime, go, href } from "../ui.js";

const POLL_MS = 2000;
const BATCH = 1000; // the API's largest page
const KEEP = 500; // events kept on screen; older ones drop off the end
const KINDS = ["all", "queues", "listeners", "messages", "api_keys"];
const WINDOWS = { "15m": 15 * 60e3, "1h": 3600e3, "24h": 24 * 3600e3 };
// An id after every real one (ids are [0-9a-z_-]): with startAfter = T it starts
// the tail at T + 1 ms, i.e. with the events of the chosen window.
const AFTER_ALL_IDS = "~";

// Health events (SPEC §11) stand out: a listener turning failing or disabled is what
// someone watching the tail wants to see.
const HEALTH = {
  listener_failing: "bad",
  listener_disabled: "bad",
  listener_recovered: "good",
  listener_enabled: "good",
};

function kindOf(type) {
  if (type in HEALTH) return `${HEALTH[type]} badge-health`;
  if (type.endsWith("_added") || type === "message_published_ok") return "good";
  if (type.endsWith("_deleted") || type === "message_published_not_ok") return "bad";
  return "info";
}

const REASONS = { gone: "its URL answered 410 Gone", failing: "failing too long", manual: "by hand" };

function Ref({ event }) {
  const parts = [];
  const queueId = event.queue && event.queue.id;
  if (event.queue) {
    parts.push(html`<span key="q">queue <a href=${href("queues", queueId)}>${event.queue.name || event.queue.id}</a></span>`);
  }
  if (event.listener) {
    parts.push(html`<span key="l">listener <a href=${href("queues", queueId, "listeners", event.listener.id)}>${event.listener.name || event.listener.id}</a></span>`);
  }
  if (event.message) {
    parts.push(html`<span key="m">message <a href=${href("queues", queueId, "messages", event.message.id)}>${event.message.name || event.message.id}</a></span>`);
  }
  if (event.api_key) parts.push(html`<span key="k">key ${event.api_key.name || event.api_key.id}</span>`);
  return html`<span class="refs">${parts}</span>`;
}

export function Events({ query }) {
  const kind = KINDS.includes(query.get("kind")) ? query.get("kind") : "all";
  const since = query.get("since") in WINDOWS ? query.get("since") : "15m";
  const [events, setEvents] = useState([]); // newest first
  const [error, setError] = useState(null);
  const [paused, setPaused] = useState(false);
  const [checkedAt, setCheckedAt] = useState(null);
  const cursor = useRef(null);

  useEffect(() => {
    setEvents([]);
    setCheckedAt(null);
    cursor.current = null;
  }, [kind, since]);

  useEffect(() => {
    if (paused) return undefined;
    let stopped = false;
    let timer = null;
    const tick = async () => {
      if (!document.hidden) {
        try {
          for (;;) {
            const after = cursor.current || {
              at: Math.max(0, Math.floor(serverNow() - WINDOWS[since])),
              id: AFTER_ALL_IDS,
            };
            const path = q("events", { events: kind, limit: BATCH, startAfter: after.at, startAfterId: after.id });
            const { data } = await call("GET", path);
            if (stopped) return;
            const batch = data.events;
            if (batch.length > 0) {
              const last = batch[batch.length - 1];
              cursor.current = { at: last.stored_at, id: last.id };
              setEvents((shown) => [...batch.slice().reverse(), ...shown].slice(0, KEEP));
            }
            if (batch.length < BATCH) break; // caught up
          }
          setError(null);
          setCheckedAt(Date.now());
        } catch (e) {
          if (stopped) return;
          setError(e);
        }
      }
      timer = setTimeout(tick, POLL_MS);
    };
    tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [kind, since, paused]);

  const set = (name) => (event) => go(href("events", { kind, since, [name]: event.currentTarget.value }));
  const status = paused
    ? "Paused"
    : checkedAt
      ? `Following: checked at ${new Date(checkedAt).toLocaleTimeString()}`
      : "Starting…";
  return html`<${Page} title="Events" subtitle="Every change and every delivery attempt, as they happen.">
    <div class="toolbar">
      <label class="inline-field"><span class="label">Kind</span>
        <select value=${kind} onChange=${set("kind")}>
          ${KINDS.map((k) => html`<option key=${k} value=${k}>${k.replace("_", " ")}</option>`)}
        </select>
      </label>
      <label class="inline-field"><span class="label">From</span>
        <select value=${since} onChange=${set("since")}>
          <option value="15m">the last 15 minutes</option>
          <option value="1h">the last hour</option>
          <option value="24h">the last 24 hours</option>
        </select>
      </label>
      <button type="button" class="button small" aria-pressed=${paused} onClick=${() => setPaused(!paused)}>${paused ? "Resume" : "Pause"}</button>
      <span class=${paused ? "muted small" : "muted small live"} role="status">${status}</span>
    </div>
    <${Problem} error=${error} what="read events" />
    ${events.length === 0 && !error &&
    html`<${Empty} title="No events in this window yet">
      <p>They appear here as they happen: create a queue, add a listener or post a message,
      and each change and delivery attempt shows up within seconds.</p>
    <//>`}
    ${events.length > 0 &&
    html`<div class="table-wrap"><table class="table events">
      <thead><tr><th scope="col">Time</th><th scope="col">Event</th><th scope="col">Concerns</th></tr></thead>
      <tbody>
        ${events.map(
          (e) => html`<tr key=${e.id}>
            <td class="nowrap" title=${formatTime(e.stored_at)}>${new Date(e.stored_at).toLocaleTimeString()}</td>
            <td><span class=${`badge badge-${kindOf(e.type)}`}>${e.type.replaceAll("_", " ")}</span>
              ${e.reason && html` <span class="muted small">${REASONS[e.reason] || e.reason}</span>`}</td>
            <td><${Ref} event=${e} /></td>
          </tr>`,
        )}
      </tbody>
    </table></div>
    ${events.length === KEEP && html`<p class="muted small">Showing the newest ${KEEP}.</p>`}`}
  <//>`;
}
