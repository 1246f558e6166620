// Queues: the list, and one queue with its listeners, schema and newest messages.
import { call, listPage, may, newestPage, q, seg } from "../api.js";
import { ListenerForm, MessageForm, QueueForm, RenameQueue, RetentionForm, SchemaForm } from "../forms.js";
import { html, useState } from "../lib.js";
import {
  Action,
  Badge,
  Confirm,
  Empty,
  Id,
  Loading,
  MayNot,
  Page,
  Pager,
  Problem,
  Section,
  Time,
  go,
  href,
  notice,
  span,
  useLoad,
  useMay,
} from "../ui.js";

const PER_PAGE = 20;

export function Queues({ query }) {
  const page = Math.max(1, Number.parseInt(query.get("page") || "1", 10) || 1);
  const [creating, setCreating] = useState(false);
  const mayCreate = useMay(may.createQueue, []);
  const list = useLoad(async () => {
    const { items, total } = await listPage("queues", "queues", page, PER_PAGE);
    // The list names queues only; their details give listener counts and schemas.
    const details = await Promise.all(
      items.map((item) =>
        call("GET", `queues/${seg(item.id)}`).then(
          ({ data }) => data.queue,
          () => item,
        ),
      ),
    );
    return { items: details, total };
  }, [page]);
  const create = html`<${Action} may=${mayCreate} what="create queues" kind="primary" onClick=${() => setCreating(true)}>New queue<//>`;
  return html`<${Page} title="Queues" subtitle="Messages posted to a queue are pushed to every listener it has." actions=${create}>
    <${MayNot} may=${mayCreate} what="create queues" />
    ${list.loading && !list.data && html`<${Loading} />`}
    <${Problem} error=${list.error} what="list queues" />
    ${list.data && list.data.total === 0 &&
    html`<${Empty} title="No queues yet">
      <p>A queue takes messages and pushes each one to its listeners. Create one, add a
      listener with the URL that should receive its messages, then post a message.</p>
    <//>`}
    ${list.data && list.data.items.length > 0 &&
    html`<div class="table-wrap"><table class="table">
      <thead><tr><th scope="col">Name</th><th scope="col">Listeners</th><th scope="col">Schema</th><th scope="col" class="hide-narrow">Retention</th><th scope="col" class="hide-narrow">Id</th></tr></thead>
      <tbody>
        ${list.data.items.map(
          (queue) => html`<tr key=${queue.id}>
            <td><a href=${href("queues", queue.id)}>${queue.name}</a></td>
            <td>${queue.listeners ? queue.listeners.length : "—"}</td>
            <td>${queue.schema ? "yes" : html`<span class="muted">none</span>`}</td>
            <td class="hide-narrow">${queue.retention_seconds === undefined ? "—" : span(queue.retention_seconds)}</td>
            <td class="hide-narrow"><${Id} value=${queue.id} /></td>
          </tr>`,
        )}
      </tbody>
    </table></div>
    <${Pager} page=${page} pages=${Math.ceil(list.data.total / PER_PAGE)} total=${list.data.total}
      to=${(n) => href("queues", { page: n })} label="Queue pages" />`}
    ${creating &&
    html`<${QueueForm} onClose=${() => setCreating(false)} onDone=${(queue) => {
      notice(`Queue ${queue.name} created.`);
      go(href("queues", queue.id));
    }} />`}
  <//>`;
}

export function QueueDetail({ queueId }) {
  const [dialog, setDialog] = useState(null);
  const queue = useLoad(() => call("GET", `queues/${seg(queueId)}`).then(({ data }) => data.queue), [queueId]);
  const listeners = useLoad(
    () => call("GET", q(`queues/${seg(queueId)}/listeners`, { per_page: 100 })).then(({ data, total }) => ({ items: data.listeners, total })),
    [queueId],
  );
  const messages = useLoad(() => newestPage(`queues/${seg(queueId)}/messages`, "messages", 1, 5), [queueId]);
  const mayChange = useMay(() => may.changeQueue(queueId), [queueId]);
  const mayAddListener = useMay(() => may.createListener(queueId), [queueId]);
  const mayPost = useMay(() => may.postMessage(queueId), [queueId]);
  const close = () => setDialog(null);

  if (queue.error) {
    return html`<${Page} title="Queue"><${Problem} error=${queue.error} what="read this queue" /><p><a href=${href("queues")}>All queues</a></p><//>`;
  }
  if (!queue.data) return html`<${Page} title="Queue"><${Loading} /><//>`;
  const data = queue.data;
  const actions = html`
    <${Action} may=${mayPost} what="post messages to this queue" kind="primary" onClick=${() => setDialog("post")}>Post message<//>
    <${Action} may=${mayChange} what="change this queue" onClick=${() => setDialog("rename")}>Rename<//>
    <${Action} may=${mayChange} what="delete this queue" kind="danger" onClick=${() => setDialog("delete")}>Delete<//>`;
  return html`<${Page} title=${data.name} subtitle=${html`Queue <${Id} value=${data.id} />`} actions=${actions}>
    <p class="crumbs"><a href=${href("queues")}>All queues</a></p>
    <${MayNot} may=${mayChange} what="change this queue" />
    <${MayNot} may=${mayPost} what="post messages to this queue" />

    <${Section} title="Listeners" actions=${html`<${Action} may=${mayAddListener} what="add listeners to this queue" onClick=${() => setDialog("listener")}>Add listener<//>`}>
      <${Problem} error=${listeners.error} what="read this queue's listeners" />
      ${listeners.data && listeners.data.items.length === 0 &&
      html`<${Empty} title="No listeners">
        <p>Messages posted now are stored but reach no one. Add a listener: the URL to push
        messages to and one to probe for liveness.</p>
      <//>`}
      ${listeners.data && listeners.data.items.length > 0 && html`<${ListenerTable} listeners=${listeners.data.items} />`}
    <//>

    <${Section} title="Newest messages" actions=${html`<a class="button small" href=${href("messages", { queue: queueId })}>All messages</a>`}>
      <${Problem} error=${messages.error} what="read this queue's messages" />
      ${messages.data && messages.data.total === 0 &&
      html`<${Empty} title="No messages yet"><p>Post one to see it pushed to the listeners.</p><//>`}
      ${messages.data && messages.data.items.length > 0 &&
      html`<${MessageTable} messages=${messages.data.items} />
        <p class="muted">${messages.data.total} in all.</p>`}
    <//>

    ${"retention_seconds" in data &&
    html`<${Section} title="Retention" actions=${html`<${Action} may=${mayChange} what="change this queue" onClick=${() => setDialog("retention")}>Edit retention<//>`}>
      <p class="retention">${data.retention_seconds === null
        ? "Messages are kept forever."
        : `Messages are deleted ${span(data.retention_seconds)} after they were posted, once every enabled listener has had them (delivered or missed).`}</p>
    <//>`}
    <${Section} title="Schema" actions=${html`<${Action} may=${mayChange} what="change this queue" onClick=${() => setDialog("schema")}>${data.schema ? "Edit schema" : "Add schema"}<//>
      ${data.schema && html`<${Action} may=${mayChange} what="change this queue" onClick=${() => setDialog("drop-schema")}>Remove<//>`}`}>
      ${data.schema
        ? html`<pre class="code block">${JSON.stringify(data.schema, null, 2)}</pre>
          <p class="muted small">Schema id <${Id} value=${data.schema_id} /></p>`
        : html`<p class="muted">No schema: messages may carry any text.</p>`}
    <//>

    ${dialog === "post" && html`<${MessageForm} queue=${data} onClose=${close} onDone=${(m) => {
      notice("Message posted.");
      go(href("queues", queueId, "messages", m.id));
    }} />`}
    ${dialog === "retention" && html`<${RetentionForm} queue=${data} onClose=${close} onDone=${() => {
      close();
      notice("Retention saved.");
      queue.reload();
    }} />`}
    ${dialog === "rename" && html`<${RenameQueue} queue=${data} onClose=${close} onDone=${() => {
      close();
      notice("Queue renamed.");
      queue.reload();
    }} />`}
    ${dialog === "schema" && html`<${SchemaForm} queue=${data} onClose=${close} onDone=${() => {
      close();
      notice("Schema saved.");
      queue.reload();
    }} />`}
    ${dialog === "drop-schema" &&
    html`<${Confirm} title="Remove the schema?" confirm="Remove schema" onClose=${close} onConfirm=${async () => {
      await call("PUT", `queues/${seg(queueId)}`, { schema: null });
      close();
      notice("Schema removed.");
      queue.reload();
    }}><p>Messages will no longer be checked.</p><//>`}
    ${dialog === "listener" && html`<${ListenerForm} queueId=${queueId} onClose=${close} onDone=${(l) => {
      notice(`Listener ${l.name} created.`);
      go(href("queues", queueId, "listeners", l.id));
    }} />`}
    ${dialog === "delete" &&
    html`<${Confirm} title=${`Delete queue ${data.name}?`} onClose=${close} onConfirm=${async () => {
      await call("DELETE", `queues/${seg(queueId)}`);
      notice(`Queue ${data.name} deleted.`);
      go(href("queues"));
    }}>
      <p>This deletes the queue with its ${data.listeners.length} listener(s), all its messages
      and every delivery still pending. It cannot be undone.</p>
    <//>`}
  <//>`;
}

export function ListenerTable({ listeners, queueNames }) {
  const withHealth = listeners.some((l) => l.health);
  return html`<div class="table-wrap"><table class="table">
    <thead><tr>
      <th scope="col">Name</th>
      ${queueNames && html`<th scope="col">Queue</th>`}
      ${withHealth && html`<th scope="col">Health</th>`}
      <th scope="col" class=${withHealth ? "hide-narrow" : ""}>Liveness</th>
      <th scope="col" class="num hide-narrow">Acknowledged</th>
      <th scope="col" class="num">Missed</th>
      <th scope="col" class="hide-narrow">Notify URL</th>
    </tr></thead>
    <tbody>
      ${listeners.map(
        (l) => html`<tr key=${l.id}>
          <td><a href=${href("queues", l.queue_id, "listeners", l.id)}>${l.name}</a></td>
          ${queueNames && html`<td><a href=${href("queues", l.queue_id)}>${queueNames.get(l.queue_id) || l.queue_id}</a></td>`}
          ${withHealth && html`<td>${l.health && html`<${Badge} value=${l.health.state} />`}</td>`}
          <td class=${withHealth ? "hide-narrow" : ""}><${Badge} value=${l.liveness.state} /></td>
          <td class="num hide-narrow">${l.messages.acknowledged_count}</td>
          <td class="num">${l.messages.missed_count > 0 ? html`<${Badge} value="missed" label=${String(l.messages.missed_count)} />` : "0"}</td>
          <td class="hide-narrow url">${l.notify_url}</td>
        </tr>`,
      )}
    </tbody>
  </table></div>`;
}

/** How a message's deliveries stand, in one line: "2 delivered · 1 missed". */
export function deliverySummary(deliveries) {
  if (deliveries.length === 0) return html`<span class="muted">no listeners</span>`;
  const counts = {};
  for (const d of deliveries) counts[d.state] = (counts[d.state] || 0) + 1;
  return html`<span class="badges">${["delivered", "pending", "missed"]
    .filter((s) => counts[s])
    .map((s) => html`<${Badge} key=${s} value=${s} label=${`${counts[s]} ${s}`} />`)}</span>`;
}

export function MessageTable({ messages, queueNames }) {
  return html`<div class="table-wrap"><table class="table">
    <thead><tr>
      <th scope="col">Message</th>
      ${queueNames && html`<th scope="col">Queue</th>`}
      <th scope="col">Deliveries</th>
      <th scope="col">Posted</th>
    </tr></thead>
    <tbody>
      ${messages.map(
        (m) => html`<tr key=${m.id}>
          <td><a href=${href("queues", m.queue_id, "messages", m.id)}>${m.name || "unnamed"}</a>
            <span class="id muted" title=${m.id}>${" …"}${m.id.slice(-8)}</span></td>
          ${queueNames && html`<td>${queueNames.get(m.queue_id) || html`<${Id} value=${m.queue_id} />`}</td>`}
          <td>${deliverySummary(m.deliveries)}</td>
          <td><${Time} ms=${m.created_at} /></td>
        </tr>`,
      )}
    </tbody>
  </table></div>`;
}

