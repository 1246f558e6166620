// Listeners: every listener of the organization, and one listener in detail.
import { call, listAll, listPage, may, newestPage, seg } from "../api.js";
import { ListenerForm, OptionsForm, RotateSecret } from "../forms.js";
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
  PageButtons,
  Section,
  Time,
  go,
  href,
  notice,
  span,
  useLoad,
  useMay,
  usePoll,
  useSubmit,
} from "../ui.js";
import { AttemptTable } from "./attempts.js";
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

function Secret({ listener }) {
  const { secret, signature_scheme: scheme, previous_secret_expires_at: previous } = listener;
  const [shown, setShown] = useState(false);
  const facts = html`<dl class="facts">
      ${scheme && html`<dt>Scheme</dt><dd>${scheme === "v1a" ? "v1a (Ed25519: receivers verify with this public key)" : "v1 (HMAC-SHA256)"}</dd>`}
      ${previous && html`<dt>Previous key</dt><dd>still signs beside the new one until <${Time} ms=${previous} /></dd>`}
    </dl>`;
  if (secret === null || secret === undefined) {
    return html`<p class="muted secret-hidden">Hidden: this key may read this listener but not change it, and
      the secret would let it sign deliveries.</p>${facts}`;
  }
  return html`<div class="secret">
    <code class="id">${shown ? secret : `${secret.slice(0, 6)}${"•".repeat(24)}`}</code>
    <button type="button" class="button small" onClick=${() => setShown(!shown)} aria-pressed=${shown}>${shown ? "Hide" : "Show"}</button>
    <${CopyButton} text=${secret} />
  </div>
  ${facts}
  <p class="muted small">Receivers verify each delivery's <code>webhook-signature</code> with it (Standard Webhooks).</p>`;
}

const HEALTH_TEXT = {
  healthy: "its last attempts were acknowledged (or none failed in a row)",
  failing: "its last attempts all failed: tidings waits a cool-down, then tries one delivery; deliveries wait and are not missed meanwhile",
  disabled: "it gets no attempts and no probes; new messages still add deliveries for it, which wait until it is enabled",
};

const DISABLED_BECAUSE = {
  gone: "its notify URL answered 410 Gone",
  failing: "it was failing for too long",
  manual: "someone disabled it",
};

function Health({ listener, mayChange, onDisable, onEnable, busy, error }) {
  const h = listener.health;
  const enabled = listener.status !== "disabled";
  return html`<p><${Badge} value=${h.state} /> <span class="muted">${HEALTH_TEXT[h.state] || ""}</span></p>
    <dl class="facts">
      <dt>Status</dt><dd><${Badge} value=${listener.status} />${h.disabled_reason && html` <span class="muted">since ${DISABLED_BECAUSE[h.disabled_reason] || h.disabled_reason}</span>`}</dd>
      <dt>Failures in a row</dt><dd>${h.consecutive_failures}</dd>
      <dt>Last success</dt><dd><${Time} ms=${h.last_success_at} /></dd>
      <dt>Last failure</dt><dd><${Time} ms=${h.last_failure_at} /></dd>
      ${h.failing_since !== null && html`<dt>Failing since</dt><dd><${Time} ms=${h.failing_since} /></dd>`}
    </dl>
    <div class="actions section-actions">
      ${enabled
        ? html`<${Action} may=${mayChange} what="disable this listener" kind="danger" onClick=${onDisable}>Disable<//>`
        : html`<${Action} may=${busy ? undefined : mayChange} what="enable this listener" kind="primary" onClick=${onEnable}>Enable<//>`}
    </div>
    <${Problem} error=${error} what="change this listener" />`;
}

function Options({ listener }) {
  const l = listener;
  const headers = l.headers ? Object.keys(l.headers) : null;
  return html`<dl class="facts">
    <dt>Rate limit</dt><dd>${l.rate_limit === null ? "none" : `${l.rate_limit} attempts a second`}</dd>
    <dt>In flight</dt><dd>at most ${l.max_in_flight} at once</dd>
    <dt>Order</dt><dd>${l.ordered ? "one at a time, in the order posted" : "unordered (in parallel)"}</dd>
    <dt>Filter</dt><dd>${l.filter ? html`<pre class="code block filter">${JSON.stringify(l.filter, null, 2)}</pre>` : "none: every message"}</dd>
    <dt>Headers</dt><dd>${headers === null
      ? html`<span class="muted">hidden from this key</span>`
      : headers.length === 0
        ? "none"
        : html`<ul class="plain">${headers.map((name) => html`<li key=${name}><code>${name}</code>: <span class="muted">hidden</span></li>`)}</ul>`}</dd>
  </dl>`;
}

const ATTEMPTS_PER_PAGE = 20;

function AttemptLog({ path, queueId, follow }) {
  const [page, setPage] = useState(1);
  const log = useLoad(() => newestPage(`${path}/attempts`, "attempts", page, ATTEMPTS_PER_PAGE), [path, page]);
  usePoll(log.reload, 2000, follow && page === 1);
  if (log.error) return html`<${Problem} error=${log.error} what="read this listener's attempts" />`;
  if (!log.data) return html`<${Loading} />`;
  if (log.data.total === 0) {
    return html`<p class="muted">No attempts yet: post a message to its queue and each attempt to
      push it here shows up with the answer.</p>`;
  }
  return html`<${AttemptTable} attempts=${log.data.items} queueId=${queueId} showMessage />
    <${PageButtons} page=${Math.min(page, log.data.pages)} pages=${log.data.pages} total=${log.data.total}
      onPage=${setPage} label="Attempt pages" />`;
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
  const status = useSubmit();
  // Health changes as deliveries go: follow it while the page is open.
  usePoll(listener.reload, 2000, Boolean(listener.data));
  const close = () => setDialog(null);
  const setStatus = async (value) => {
    await call("PUT", path, { status: value });
    close();
    notice(value === "enabled" ? "Listener enabled: what it is owed goes out now." : "Listener disabled.");
    listener.reload();
  };

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

    ${l.health &&
    html`<${Section} title="Health">
      <${Health} listener=${l} mayChange=${mayChange} busy=${status.busy} error=${dialog ? null : status.error}
        onDisable=${() => setDialog("disable")} onEnable=${status.run(() => setStatus("enabled"))} />
    <//>`}

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

    ${"max_in_flight" in l &&
    html`<${Section} title="Options" actions=${html`<${Action} may=${mayChange} what="change this listener" onClick=${() => setDialog("options")}>Edit options<//>`}>
      <${Options} listener=${l} />
    <//>`}

    <${Section} title="Signing secret" actions=${"signature_scheme" in l &&
      html`<${Action} may=${mayChange} what="rotate this listener's secret" onClick=${() => setDialog("rotate")}>Rotate secret<//>`}>
      <${Secret} listener=${l} />
    <//>

    <${Section} title="Attempt log">
      <${AttemptLog} path=${path} queueId=${l.queue_id} follow=${!dialog} />
    <//>

    ${dialog === "edit" && html`<${ListenerForm} listener=${l} onClose=${close} onDone=${() => {
      close();
      notice("Listener saved.");
      listener.reload();
    }} />`}
    ${dialog === "options" && html`<${OptionsForm} listener=${l} onClose=${close} onDone=${() => {
      close();
      notice("Options saved.");
      listener.reload();
    }} />`}
    ${dialog === "rotate" && html`<${RotateSecret} listener=${l} path=${path} onClose=${() => {
      close();
      listener.reload();
    }} />`}
    ${dialog === "disable" &&
    html`<${Confirm} title=${`Disable listener ${l.name}?`} confirm="Disable" onClose=${close} onConfirm=${() => setStatus("disabled")}>
      <p>It gets no attempts and no probes until enabled again. Messages posted meanwhile still
      add deliveries for it; they wait, and go out when it is enabled.</p>
    <//>`}
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
