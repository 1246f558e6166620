// Forms shared by several pages: each submits with Enter, shows the API's answer, and
// hands the result to `onDone`.
import { call, seg } from "./api.js";
import { html, useState } from "./lib.js";
import { Dialog, Field, Problem, useSubmit } from "./ui.js";

function Buttons({ busy, label, onClose }) {
  return html`<div class="form-actions">
    <button type="button" class="button" onClick=${onClose}>Cancel</button>
    <button type="submit" class="button primary" disabled=${busy}>${label}</button>
  </div>`;
}

/** JSON typed by a person: the value, or the parser's complaint. */
export function parseJson(text) {
  try {
    return { value: JSON.parse(text), problem: null };
  } catch (e) {
    return { value: undefined, problem: e.message };
  }
}

const SCHEMA_EXAMPLE = `{
  "order_id": { "type": "string", "pattern": "^ord_" },
  "amount": { "type": "number", "min": 0 },
  "note": { "type": "string", "required": false }
}`;

const SCHEMA_HINT =
  "Top-level fields mapped to rules; each rule has a type: string (pattern, enum, min, max), " +
  "number (min, max), object (props, strict) or array (items); required defaults to true.";

/** The schema as JSON text: checked as JSON here, as a schema by the server. */
function SchemaInput({ value, onInput, problem }) {
  return html`<${Field} label="Schema (JSON)" hint=${SCHEMA_HINT} wide>
      <textarea class="code" rows="12" spellcheck="false" value=${value}
        aria-invalid=${problem ? "true" : undefined}
        onInput=${(e) => onInput(e.currentTarget.value)}></textarea>
    <//>
    ${problem && html`<p class="field-error" role="alert">Not valid JSON: ${problem}</p>`}`;
}

export function QueueForm({ onDone, onClose }) {
  const [name, setName] = useState("");
  const [withSchema, setWithSchema] = useState(false);
  const [schema, setSchema] = useState(SCHEMA_EXAMPLE);
  const { busy, error, run } = useSubmit();
  const parsed = withSchema ? parseJson(schema) : { value: undefined, problem: null };
  const submit = run(async () => {
    if (parsed.problem) return;
    const body = { name: name.trim() };
    if (withSchema) body.schema = parsed.value;
    const { data } = await call("POST", "queues", body);
    onDone(data.queue);
  });
  return html`<${Dialog} title="New queue" onClose=${onClose} wide=${withSchema}>
    <form class="form" onSubmit=${submit}>
      <${Field} label="Name" hint="Unique in your organization, e.g. orders.">
        <input required maxlength="256" value=${name} onInput=${(e) => setName(e.currentTarget.value)} />
      <//>
      <label class="check">
        <input type="checkbox" checked=${withSchema} onChange=${(e) => setWithSchema(e.currentTarget.checked)} />
        Check messages against a schema
      </label>
      ${withSchema && html`<${SchemaInput} value=${schema} onInput=${setSchema} problem=${parsed.problem} />`}
      <${Problem} error=${error} what="create queues" strip="$.schema" />
      <${Buttons} busy=${busy || Boolean(parsed.problem)} label="Create queue" onClose=${onClose} />
    </form>
  <//>`;
}

export function RenameQueue({ queue, onDone, onClose }) {
  const [name, setName] = useState(queue.name);
  const { busy, error, run } = useSubmit();
  const submit = run(async () => {
    const { data } = await call("PUT", `queues/${seg(queue.id)}`, { name: name.trim() });
    onDone(data.queue);
  });
  return html`<${Dialog} title="Rename queue" onClose=${onClose}>
    <form class="form" onSubmit=${submit}>
      <${Field} label="Name">
        <input required maxlength="256" value=${name} onInput=${(e) => setName(e.currentTarget.value)} />
      <//>
      <${Problem} error=${error} what="change this queue" />
      <${Buttons} busy=${busy} label="Rename" onClose=${onClose} />
    </form>
  <//>`;
}

export function SchemaForm({ queue, onDone, onClose }) {
  const [text, setText] = useState(
    queue.schema ? JSON.stringify(queue.schema, null, 2) : SCHEMA_EXAMPLE,
  );
  const { busy, error, run } = useSubmit();
  const parsed = parseJson(text);
  const submit = run(async () => {
    if (parsed.problem) return;
    const { data } = await call("PUT", `queues/${seg(queue.id)}`, { schema: parsed.value });
    onDone(data.queue);
  });
  return html`<${Dialog} title=${queue.schema ? "Edit schema" : "Add a schema"} onClose=${onClose} wide>
    <form class="form" onSubmit=${submit}>
      <p class="muted">
        Messages posted after this is saved must be JSON that satisfies the schema; messages
        already stored are not checked again.
      </p>
      <${SchemaInput} value=${text} onInput=${setText} problem=${parsed.problem} />
      ${error && error.errors.length > 0 && html`<p class="field-error">The schema has problems at these paths:</p>`}
      <${Problem} error=${error} what="change this queue" strip="$.schema" />
      <${Buttons} busy=${busy || Boolean(parsed.problem)} label="Save schema" onClose=${onClose} />
    </form>
  <//>`;
}

export function ListenerForm({ queueId, listener, queues, onDone, onClose }) {
  const [chosenQueue, setChosenQueue] = useState(queueId || (queues && queues[0]?.id) || "");
  const [name, setName] = useState(listener ? listener.name : "");
  const [notifyUrl, setNotifyUrl] = useState(listener ? listener.notify_url : "");
  const [livenessUrl, setLivenessUrl] = useState(listener ? listener.liveness_url : "");
  const { busy, error, run } = useSubmit();
  const submit = run(async () => {
    const body = { name: name.trim(), notify_url: notifyUrl.trim(), liveness_url: livenessUrl.trim() };
    if (listener) {
      await call("PUT", `queues/${seg(listener.queue_id)}/listeners/${seg(listener.id)}`, body);
      onDone({ ...listener, ...body });
    } else {
      const { data } = await call("POST", `queues/${seg(chosenQueue)}/listeners`, body);
      onDone({ ...data.listener, queue_id: chosenQueue });
    }
  });
  return html`<${Dialog} title=${listener ? "Edit listener" : "New listener"} onClose=${onClose}>
    <form class="form" onSubmit=${submit}>
      ${queues &&
      html`<${Field} label="Queue">
        <select required value=${chosenQueue} onChange=${(e) => setChosenQueue(e.currentTarget.value)}>
          ${queues.map((q) => html`<option value=${q.id} key=${q.id}>${q.name}</option>`)}
        </select>
      <//>`}
      <${Field} label="Name">
        <input required maxlength="256" value=${name} onInput=${(e) => setName(e.currentTarget.value)} />
      <//>
      <${Field} label="Notify URL" hint="Every message is POSTed here, signed, until a 2xx answer.">
        <input required type="url" inputmode="url" placeholder="https://example.com/hooks/tidings"
          value=${notifyUrl} onInput=${(e) => setNotifyUrl(e.currentTarget.value)} />
      <//>
      <${Field} label="Liveness URL" hint="Probed with GET; while it fails, deliveries wait.">
        <input required type="url" inputmode="url" placeholder="https://example.com/health"
          value=${livenessUrl} onInput=${(e) => setLivenessUrl(e.currentTarget.value)} />
      <//>
      <${Problem} error=${error} what=${listener ? "change this listener" : "add listeners to this queue"} />
      <${Buttons} busy=${busy} label=${listener ? "Save" : "Create listener"} onClose=${onClose} />
    </form>
  <//>`;
}

export function MessageForm({ queue, onDone, onClose }) {
  const [name, setName] = useState("");
  const [data, setData] = useState(queue.schema ? "{\n  \n}" : "");
  const { busy, error, run } = useSubmit();
  const submit = run(async () => {
    const body = { data };
    if (name.trim()) body.name = name.trim();
    const { data: answer } = await call("POST", `queues/${seg(queue.id)}/messages`, body);
    onDone(answer.message);
  });
  return html`<${Dialog} title=${`Post a message to ${queue.name}`} onClose=${onClose} wide>
    <form class="form" onSubmit=${submit}>
      <${Field} label="Name (optional)" hint="A label such as order.created; receivers see it.">
        <input maxlength="256" value=${name} onInput=${(e) => setName(e.currentTarget.value)} />
      <//>
      <${Field} label="Data" wide
        hint=${queue.schema ? "JSON that satisfies the queue's schema." : "Any text; JSON is usual."}>
        <textarea class="code" rows="8" spellcheck="false" value=${data}
          onInput=${(e) => setData(e.currentTarget.value)}></textarea>
      <//>
      ${queue.schema &&
      html`<details class="schema-peek"><summary>The queue's schema</summary>
        <pre class="code">${JSON.stringify(queue.schema, null, 2)}</pre></details>`}
      <${Problem} error=${error} what="post messages to this queue" strip="$.data" />
      <${Buttons} busy=${busy} label="Post message" onClose=${onClose} />
    </form>
  <//>`;
}

