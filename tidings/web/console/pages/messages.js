// Messages: newest first, across queues or in one; one message with its deliveries.
import { call, listAll, may, newestPage, q, seg } from "../api.js";
import { MessageForm } from "../forms.js";
import { html, useCallback, useEffect, useRef, useState } from "../lib.js";
import {
  Action,
  Badge,
  Confirm,
  CopyButton,
  Empty,
  Id,
  Loading,
  MayNot,
  Page,
  Pager,
  Problem,
  Section,
  Time,
  formatTime,
  go,
  href,
  notice,
  useLoad,
  useMay,
  usePoll,
  useSubmit,
} from "../ui.js";
import { AttemptTable } from "./attempts.js";
import { useQueueNames } from "./listeners.js";
import { MessageTable } from "./queues.js";

const PER_PAGE = 20;

export function Messages({ query }) {
  const page = Math.max(1, Number.parseInt(query.get("page") || "1", 10) || 1);
  const queueId = query.get("queue") || "";
  const [posting, setPosting] = useState(false);
  const queues = useQueueNames();
  const path = queueId ? `queues/${seg(queueId)}/messages` : "messages";
  const list = useLoad(() => newestPage(path, "messages", page, PER_PAGE), [path, page]);
  const mayPost = useMay(() => (queueId ? may.postMessage(queueId) : Promise.resolve(undefined)), [queueId]);
  const chosen = queues.data && queues.data.queues.find((x) => x.id === queueId);
  const pick = (event) => go(href("messages", { queue: event.currentTarget.value }));
  const actions = queueId
    ? html`<${Action} may=${mayPost} what="post messages to this queue" kind="primary" onClick=${() => setPosting(true)}>Post message<//>`
    : null;
  return html`<${Page} title="Messages" subtitle="Newest first, with how each stands with its listeners." actions=${actions}>
    <div class="toolbar">
      <label class="inline-field">
        <span class="label">Queue</span>
        <select value=${queueId} onChange=${pick}>
          <option value="">All queues</option>
          ${queues.data && queues.data.queues.map((x) => html`<option key=${x.id} value=${x.id}>${x.name}</option>`)}
        </select>
      </label>
      <button type="button" class="button small" onClick=${list.reload}>Refresh</button>
    </div>
    ${queueId && html`<${MayNot} may=${mayPost} what="post messages to this queue" />`}
    ${list.loading && !list.data && html`<${Loading} />`}
    <${Problem} error=${list.error} what=${queueId ? "read this queue's messages" : "list messages"} />
    ${list.data && list.data.total === 0 &&
    html`<${Empty} title="No messages">
      <p>${queueId
        ? "Post one with the button above, or from your application with this queue's id."
        : html`Messages appear here once posted to a queue. Choose a queue above to post one,
          or <a href=${href("queues")}>create a queue</a> first.`}</p>
    <//>`}
    ${list.data && list.data.items.length > 0 &&
    html`<${MessageTable} messages=${list.data.items} queueNames=${queueId ? null : queues.data ? queues.data.names : new Map()} />
      <${Pager} page=${Math.min(page, list.data.pages)} pages=${list.data.pages} total=${list.data.total}
        to=${(n) => href("messages", { queue: queueId, page: n })} label="Message pages" />`}
    ${posting && chosen &&
    html`<${MessageForm} queue=${chosen} onClose=${() => setPosting(false)} onDone=${(m) => {
      notice("Message posted.");
      go(href("queues", queueId, "messages", m.id));
    }} />`}
  <//>`;
}

function DataView({ data }) {
  let shown = data;
  try {
    shown = JSON.stringify(JSON.parse(data), null, 2);
  } catch {
    // not JSON: shown as sent
  }
  return html`<pre class="code block">${shown}</pre>`;
}

function Redeliver({ queueId, messageId, listenerId, onDone }) {
  const allowed = useMay(() => may.changeListener(queueId, listenerId), [queueId, listenerId]);
  const { busy, error, run } = useSubmit();
  const redeliver = run(async () => {
    const path = `queues/${seg(queueId)}/listeners/${seg(listenerId)}/redeliveries`;
    await call("POST", path, { message_ids: [messageId] });
    notice("Scheduled again.");
    onDone();
  });
  return html`<${Action} may=${busy ? undefined : allowed} what="redeliver to this listener" kind="small" onClick=${redeliver}>Redeliver<//>
    ${error && html`<span class="field-error">${error.detail}</span>`}`;
}

/** Each listener's attempts at this message, in the order of its deliveries. */
function Attempts({ attempts, deliveries, queueId, listenerName }) {
  if (attempts.error) return html`<${Problem} error=${attempts.error} what="read this message's attempts" />`;
  if (!attempts.data) return html`<${Loading} />`;
  if (attempts.data.length === 0) {
    return html`<p class="muted">${deliveries.length === 0
      ? "None: the queue had no listener when this message was posted."
      : "None yet: each attempt to push this message shows up here with the listener's answer."}</p>`;
  }
  const byListener = new Map();
  for (const a of attempts.data) {
    if (!byListener.has(a.listener_id)) byListener.set(a.listener_id, []);
    byListener.get(a.listener_id).push(a);
  }
  const order = [...deliveries.map((d) => d.listener_id), ...byListener.keys()];
  return [...new Set(order)]
    .filter((id) => byListener.has(id))
    .map(
      (id) => html`<div class="attempt-group" key=${id}>
        <h3><a href=${href("queues", queueId, "listeners", id)}>${listenerName(id)}</a></h3>
        <${AttemptTable} attempts=${byListener.get(id)} queueId=${queueId} />
      </div>`,
    );
}

export function MessageDetail({ queueId, messageId }) {
  const [dialog, setDialog] = useState(null);
  const path = `queues/${seg(queueId)}/messages/${seg(messageId)}`;
  const message = useLoad(() => call("GET", path).then(({ data }) => data.message), [path]);
  const names = useLoad(
    () =>
      call("GET", q(`queues/${seg(queueId)}/listeners`, { per_page: 100 })).then(
        ({ data }) => new Map(data.listeners.map((l) => [l.id, l.name])),
        () => new Map(),
      ),
    [queueId],
  );
  const queue = useLoad(
    () => call("GET", `queues/${seg(queueId)}`).then(({ data }) => data.queue, () => null),
    [queueId],
  );
  const attempts = useLoad(() => listAll(`${path}/attempts`, "attempts"), [path]);
  const mayChange = useMay(() => may.changeMessage(queueId, messageId), [queueId, messageId]);
  const pending = message.data && message.data.deliveries.some((d) => d.state === "pending");
  // While deliveries are under way, follow them and their attempts; once all have
  // settled, one more read of the attempts catches the last one.
  const follow = useCallback(() => {
    message.reload();
    attempts.reload();
  }, [message.reload, attempts.reload]);
  usePoll(follow, 1000, Boolean(pending));
  // Any change to a delivery (a new attempt, a redelivery) means new attempts to read.
  const stand = message.data ? message.data.deliveries.map((d) => `${d.state}:${d.attempts}:${d.last_attempt_at}`).join() : "";
  const seen = useRef(stand);
  useEffect(() => {
    if (seen.current !== stand && attempts.data) attempts.reload();
    seen.current = stand;
  }, [stand]);

  if (message.error) {
    return html`<${Page} title="Message"><${Problem} error=${message.error} what="read this message" />
      <p><a href=${href("messages", { queue: queueId })}>Messages of this queue</a></p><//>`;
  }
  if (!message.data) return html`<${Page} title="Message"><${Loading} /><//>`;
  const m = message.data;
  const listenerName = (id) => (names.data && names.data.get(id)) || id;
  const actions = html`<${Action} may=${mayChange} what="delete this message" kind="danger" onClick=${() => setDialog("delete")}>Delete<//>`;
  return html`<${Page} title=${m.name || "Message"} subtitle=${html`Message <${Id} value=${m.id} />`} actions=${actions}>
    <p class="crumbs">
      <a href=${href("messages", { queue: queueId })}>Messages</a>${" · queue "}
      <a href=${href("queues", queueId)}>${queue.data ? queue.data.name : queueId}</a>${" · posted "}
      <span title=${formatTime(m.created_at)}><${Time} ms=${m.created_at} /></span>
      ${m.deliver_at !== null && m.deliver_at !== undefined &&
      html`${" · delivered from "}<span class="deliver-at" title=${formatTime(m.deliver_at)}><${Time} ms=${m.deliver_at} /></span>`}
    </p>
    <${MayNot} may=${mayChange} what="delete this message" />

    <${Section} title="Deliveries" actions=${pending && html`<span class="muted small live">Updating while pending…</span>`}>
      ${m.deliveries.length === 0
        ? html`<${Empty} title="No deliveries"><p>The queue had no listener when this message was posted.</p><//>`
        : html`<div class="table-wrap"><table class="table deliveries">
          <thead><tr>
            <th scope="col">Listener</th><th scope="col">State</th><th scope="col" class="num">Attempts</th>
            <th scope="col">Last status</th><th scope="col" class="hide-narrow">Last attempt</th><th scope="col" class="hide-narrow">Next attempt</th>
          </tr></thead>
          <tbody>
            ${m.deliveries.map(
              (d) => html`<tr key=${d.listener_id}>
                <td><a href=${href("queues", queueId, "listeners", d.listener_id)}>${listenerName(d.listener_id)}</a></td>
                <td><div class="state-cell"><${Badge} value=${d.state} />
                  ${d.state === "missed" &&
                  html`<${Redeliver} queueId=${queueId} messageId=${m.id} listenerId=${d.listener_id} onDone=${message.reload} />`}</div></td>
                <td class="num">${d.attempts}</td>
                <td>${d.last_status === null ? html`<span class="muted">—</span>` : html`<code>${d.last_status}</code>`}</td>
                <td class="hide-narrow"><${Time} ms=${d.last_attempt_at} /></td>
                <td class="hide-narrow"><${Time} ms=${d.next_attempt_at} /></td>
              </tr>`,
            )}
          </tbody>
        </table></div>`}
    <//>

    <${Section} title="Attempts">
      <${Attempts} attempts=${attempts} deliveries=${m.deliveries} queueId=${queueId} listenerName=${listenerName} />
    <//>

    <${Section} title="Data" actions=${html`<${CopyButton} text=${m.data} />`}>
      <${DataView} data=${m.data} />
    <//>

    ${dialog === "delete" &&
    html`<${Confirm} title="Delete this message?" onClose=${() => setDialog(null)} onConfirm=${async () => {
      await call("DELETE", path);
      notice("Message deleted.");
      go(href("messages", { queue: queueId }));
    }}><p>Its pending deliveries are cancelled. It cannot be undone.</p><//>`}
  <//>`;
}
