// The attempt log (SPEC §11): every delivery attempt with its status, duration, error
// and the first 1024 bytes of the answer, as kept for TIDINGS_ATTEMPT_RETENTION.
import { html } from "../lib.js";
import { Badge, Time, duration, formatTime, href } from "../ui.js";

const ERRORS = {
  timeout: "no answer in time",
  connection: "could not connect",
  tls: "TLS failed",
  address_refused: "address not allowed",
  redirect: "answered a redirect",
  invalid_response: "not a valid HTTP answer",
};

function Answer({ attempt }) {
  const body = attempt.response_body;
  if (body === null || body === undefined) return html`<span class="muted">—</span>`;
  if (body === "") return html`<span class="muted">empty</span>`;
  const short = body.length > 40 ? `${body.slice(0, 40)}…` : body;
  return html`<details class="answer">
    <summary><code>${short}</code></summary>
    <pre class="code block">${body}</pre>
  </details>`;
}

/** Attempts as a table, in the order given. `listenerName` adds a Listener column,
 *  `queueId` with `showMessage` a Message column linking to each message. */
export function AttemptTable({ attempts, queueId, listenerName, showMessage }) {
  return html`<div class="table-wrap"><table class="table attempts">
    <thead><tr>
      <th scope="col">When</th>
      ${listenerName && html`<th scope="col">Listener</th>`}
      ${showMessage && html`<th scope="col">Message</th>`}
      <th scope="col" class="num hide-narrow">#</th>
      <th scope="col" class="hide-narrow">Outcome</th>
      <th scope="col">Status</th>
      <th scope="col" class="num">Duration</th>
      <th scope="col">Answer</th>
    </tr></thead>
    <tbody>
      ${attempts.map(
        (a) => html`<tr key=${a.id}>
          <td class="nowrap" title=${formatTime(a.started_at)}><${Time} ms=${a.started_at} /></td>
          ${listenerName && html`<td><a href=${href("queues", queueId, "listeners", a.listener_id)}>${listenerName(a.listener_id)}</a></td>`}
          ${showMessage && html`<td><a class="id" href=${href("queues", queueId, "messages", a.message_id)} title=${a.message_id}>…${a.message_id.slice(-8)}</a></td>`}
          <td class="num hide-narrow">${a.attempt}</td>
          <td class="hide-narrow"><${Badge} value=${a.outcome} /></td>
          <td>${a.status === null
            ? html`<${Badge} value=${a.error || "failed"} label=${a.error ? ERRORS[a.error] || a.error : "no status"} />`
            : html`<code>${a.status}</code>${a.error && html` <${Badge} value=${a.error} label=${ERRORS[a.error] || a.error} />`}`}</td>
          <td class="num nowrap">${duration(a.duration_ms)}</td>
          <td class="answer-cell"><${Answer} attempt=${a} /></td>
        </tr>`,
      )}
    </tbody>
  </table></div>`;
}
