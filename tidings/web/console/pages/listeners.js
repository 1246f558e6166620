// Listeners: every listener of the organization, and one listener in detail.
import { call, listAll, listPage, may, seg } from "../api.js";
import { ListenerForm } from "../forms.js";
import { html, useState } from "../lib.js";
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
  go,
  href,
  notice,
  useLoad,
  useMay,
} from "../ui.js";
import { ListenerTable } from "./queues.js";

const PER_PAGE = 20;

/** Queue ids to names, for tables that span queues; empty when queues may not be read. */
export function useQueueNames() {
  return useLoad(
    () =>
      listAll("queues", "queues").then(
        (queues) => ({ queues, names: new Map(queues.map((q) => [q.id, q.name])) }),
        () => ({ queues: [], names: new Map() }),
      ),
    [],
  );
}

export function Listeners({ query }) {
  const page = Math.max(1, Number.parseInt(query.get("page") || "1", 10) || 1);
  const [creating, setCreating] = useState(false);
  const queues = useQueueNames();
  const list = useLoad(() => listPage("listeners", "listeners", page, PER_PAGE), [page]);
  const noQueues = queues.data && queues.data.queues.length === 0;
  const create = html`<${Action} may=${queues.data ? !noQueues : undefined} reason="A listener needs a queue: create one first." kind="primary"
    onClick=${() => setCreating(true)}>New listener<//>`;
  return html`<${Page} title="Listeners" subtitle="The endpoints messages are pushed to, with how each is doing." actions=${create}>
    ${list.loading && !list.data && html`<${Loading} />`}
    <${Problem} error=${list.error} what="list listeners" />
    ${list.data && list.data.total === 0 &&
    html`<${Empty} title="No listeners yet">
      <p>${noQueues
        ? html`A listener belongs to a queue. <a href=${href("queues")}>Create a queue</a> first, then add its listeners.`
        : "Add a listener to a queue: the URL its messages are pushed to and one that tidings probes to know it is up."}</p>
    <//>`}
    ${list.data && list.data.items.length > 0 &&
    html`<${ListenerTable} listeners=${list.data.items} queueNames=${queues.data ? queues.data.names : new Map()} />
      <${Pager} page=${page} pages=${Math.ceil(list.data.total / PER_PAGE)} total=${list.data.total}
        to=${(n) => href("listeners", { page: n })} label="Listener pages" />`}
    ${creating &&
    html`<${ListenerForm} queues=${queues.data.queues} onClose=${() => setCreating(false)} onDone=${(l) => {
      notice(`Listener ${l.name} created.`);
      go(href("queues", l.queue_id, "listeners", l.id));
    }} />`}
  <//>`;
}

function Secret({ secret }) {
  const [shown, setShown] = useState(false);
  if (secret === null || secret === undefined) {
    return html`<p class="muted">Hidden: this key may read this listener but not change it, and
      the secret would let it sign deliveries.</p>`;
  }
  return html`<div class="secret">
    <code class="id">${shown ? secret : `${secret.slice(0, 6)}${"•".repeat(24)}`}</code>
    <button type="button" class="button small" onClick=${() => setShown(!shown)} aria-pressed=${shown}>${shown ? "Hide" : "Show"}</button>
    <${CopyButton} text=${secret} />
  </div>
  <p class="muted small">Receivers verify each delivery's <code>webhook-signature</code> with it (Standard Webhooks).</p>`;
}

const MISSED_SHOWN = 20;

export function ListenerDetail({ queueId, listenerId }) {
  const [dialog, setDialog] = useState(null);
  const path = `queues/${seg(queueId)}/listeners/${seg(listenerId)}`;
  const listener = useLoad(() => call("GET", path).then(({ data }) => data.listener), [path]);
  const queue = useLoad(
    () => call("GET", `queues/${seg(queueId)}`).then(({ data }) => data.queue, () => null),
    [queueId],
  );
  const mayChange = useMay(() => may.changeListener(queueId, listenerId), [queueId, listenerId]);
  const close = () => setDialog(null);

  if (listener.error) {
    return html`<${Page} title="Listener"><${Problem} error=${listener.error} what="read this listener" />
      <p><a href=${href("listeners")}>All listeners</a></p><//>`;
  }
  if (!listener.data) return html`<${Page} title="Listener"><${Loading} /><//>`;
  const l = listener.data;
  const queueName = queue.data ? queue.data.name : l.queue_id;
  const missed = l.messages.missed;
  const actions = html`
    <${Action} may=${mayChange} what="change this listener" onClick=${() => setDialog("edit")}>Edit<//>
    <${Action} may=${mayChange} what="delete this listener" kind="danger" onClick=${() => setDialog("delete")}>Delete<//>`;
  return html`<${Page} title=${l.name} subtitle=${html`Listener <${Id} value=${l.id} />`} actions=${actions}>
    <p class="crumbs"><a href=${href("listeners")}>All listeners</a>${" · queue "}<a href=${href("queues", l.queue_id)}>${queueName}</a></p>
    <${MayNot} may=${mayChange} what="change this listener" />

    <div class="grid">
      <${Section} title="Liveness">
        <p><${Badge} value=${l.liveness.state} /> <span class="muted">${livenessText(l.liveness.state)}</span></p>
        <dl class="facts">
          <dt>Probes answered</dt><dd>${l.liveness.success_count}</dd>
          <dt>Probes failed</dt><dd>${l.liveness.failure_count}</dd>
          <dt>Liveness URL</dt><dd class="url">${l.liveness_url}</dd>
        </dl>
      <//>
      <${Section} title="Deliveries">
        <dl class="facts">
          <dt>Acknowledged</dt><dd>${l.messages.acknowledged_count}</dd>
          <dt>Missed</dt><dd>${l.messages.missed_count}</dd>
          <dt>Notify URL</dt><dd class="url">${l.notify_url}</dd>
        </dl>
      <//>
    </div>

    ${/* Health and status (SPEC §11), options (§10) and the attempt log are sections
         of their own beside these once the API serves them. */ ""}
    <${Section} title="Missed messages" actions=${missed.length > 0 &&
      html`<${Action} may=${mayChange} what="redeliver to this listener" kind="primary" onClick=${() => setDialog("redeliver")}>Redeliver all ${l.messages.missed_count}<//>`}>
      ${missed.length === 0
        ? html`<p class="muted">None: every message that ran out of retries would be listed here, to be sent again.</p>`
        : html`<p>These messages ran out of retries without a 2xx answer. Redelivering gives them a fresh retry schedule.</p>
          <ul class="id-list">
            ${missed.slice(0, MISSED_SHOWN).map(
              (id) => html`<li key=${id}><a href=${href("queues", l.queue_id, "messages", id)}><span class="id">${id}</span></a></li>`,
            )}
          </ul>
          ${missed.length > MISSED_SHOWN && html`<p class="muted">and ${missed.length - MISSED_SHOWN} more.</p>`}`}
    <//>

    <${Section} title="Signing secret"><${Secret} secret=${l.secret} /><//>

    ${dialog === "edit" && html`<${ListenerForm} listener=${l} onClose=${close} onDone=${() => {
      close();
      notice("Listener saved.");
      listener.reload();
    }} />`}
    ${dialog === "redeliver" &&
    html`<${Confirm} title="Redeliver missed messages?" confirm="Redeliver" onClose=${close} onConfirm=${async () => {
      const { data } = await call("POST", `${path}/redeliveries`, {});
      close();
      notice(`${data.redelivery.message_ids.length} message(s) scheduled again.`);
      listener.reload();
    }}><p>${l.messages.missed_count} message(s) get a fresh retry schedule to ${l.notify_url}.</p><//>`}
    ${dialog === "delete" &&
    html`<${Confirm} title=${`Delete listener ${l.name}?`} onClose=${close} onConfirm=${async () => {
      await call("DELETE", path);
      notice(`Listener ${l.name} deleted.`);
      go(href("queues", l.queue_id));
    }}><p>Its pending deliveries are dropped; messages posted from now on are not pushed to it. It cannot be undone.</p><//>`}
  <//>`;
}

function livenessText(state) {
  return {
    unknown: "not probed yet",
    stable: "the last probes all succeeded",
    unstable: "some of the last probes failed",
    down: "the last probes all failed: deliveries wait until it answers again",
  }[state] || "";
}
