// Forms shared by several pages: each submits with Enter, shows the API's answer, and
// hands the result to `onDone`.
import { call, seg } from "./api.js";
import { html, useState } from "./lib.js";
import { CopyButton, Dialog, Field, Problem, span, useSubmit } from "./ui.js";

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
  const [retention, setRetention] = useState("");
  const { busy, error, run } = useSubmit();
  const parsed = withSchema ? parseJson(schema) : { value: undefined, problem: null };
  const submit = run(async () => {
    if (parsed.problem) return;
    const body = { name: name.trim() };
    if (withSchema) body.schema = parsed.value;
    if (retention === "forever") body.retention_seconds = null;
    else if (retention) body.retention_seconds = Number(retention);
    const { data } = await call("POST", "queues", body);
    onDone(data.queue);
  });
  return html`<${Dialog} title="New queue" onClose=${onClose} wide=${withSchema}>
    <form class="form" onSubmit=${submit}>
      <${Field} label="Name" hint="Unique in your organization, e.g. orders.">
        <input required maxlength="256" value=${name} onInput=${(e) => setName(e.currentTarget.value)} />
      <//>
      <${Field} label="Keep messages" hint="Older messages are deleted once every enabled listener has had them.">
        <select value=${retention} onChange=${(e) => setRetention(e.currentTarget.value)}>
          <option value="">the server's default</option>
          ${[1, 7, 30, 90].map((days) => html`<option key=${days} value=${String(days * 86400)}>${span(days * 86400)}</option>`)}
          <option value="forever">forever</option>
        </select>
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

// ---- retention (SPEC §9) -----------------------------------------------------------

const UNITS = [
  [86400, "days"],
  [3600, "hours"],
  [60, "minutes"],
  [1, "seconds"],
];

/** Seconds as the largest unit that divides them: 2592000 -> [30, 86400]. */
function inUnits(seconds) {
  for (const [size] of UNITS) if (seconds % size === 0) return [seconds / size, size];
  return [seconds, 1];
}

export function RetentionForm({ queue, onDone, onClose }) {
  const current = queue.retention_seconds;
  const [forever, setForever] = useState(current === null);
  const [start, startUnit] = inUnits(current === null ? 2592000 : current);
  const [amount, setAmount] = useState(String(start));
  const [unit, setUnit] = useState(String(startUnit));
  const { busy, error, run } = useSubmit();
  const seconds = Math.round(Number(amount) * Number(unit));
  const problem = !forever && !(seconds >= 1) ? "Enter a time of at least one second." : null;
  const submit = run(async () => {
    if (problem) return;
    const { data } = await call("PUT", `queues/${seg(queue.id)}`, { retention_seconds: forever ? null : seconds });
    onDone(data.queue);
  });
  return html`<${Dialog} title="Message retention" onClose=${onClose}>
    <form class="form" onSubmit=${submit}>
      <p class="muted">A message older than this is deleted, with its deliveries and attempts,
        once no enabled listener is still owed it. The new value applies to the messages
        already stored too.</p>
      <fieldset class="choice">
        <legend>Keep messages</legend>
        <label class="check"><input type="radio" name="retention" checked=${forever} onChange=${() => setForever(true)} /> forever</label>
        <label class="check"><input type="radio" name="retention" checked=${!forever} onChange=${() => setForever(false)} /> for a time</label>
      </fieldset>
      <div class="form-row">
        <${Field} label="Keep for">
          <input type="number" min="1" step="1" inputmode="numeric" disabled=${forever} value=${amount}
            aria-invalid=${problem ? "true" : undefined} onInput=${(e) => setAmount(e.currentTarget.value)} />
        <//>
        <${Field} label="Unit">
          <select disabled=${forever} value=${unit} onChange=${(e) => setUnit(e.currentTarget.value)}>
            ${UNITS.map(([size, label]) => html`<option key=${size} value=${String(size)}>${label}</option>`)}
          </select>
        <//>
      </div>
      ${problem && html`<p class="field-error" role="alert">${problem}</p>`}
      <${Problem} error=${error} what="change this queue" />
      <${Buttons} busy=${busy || Boolean(problem)} label="Save retention" onClose=${onClose} />
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

// ---- listener options (SPEC §10) ----------------------------------------------------

/** The options as the form holds them: text fields, so a person can leave one blank. */
function optionsState(listener) {
  return {
    rateLimit: listener && listener.rate_limit !== null && listener.rate_limit !== undefined ? String(listener.rate_limit) : "",
    maxInFlight: listener && listener.max_in_flight !== undefined ? String(listener.max_in_flight) : "",
    ordered: Boolean(listener && listener.ordered),
    filter: listener && listener.filter ? JSON.stringify(listener.filter, null, 2) : "",
    headers: listener && listener.headers ? Object.entries(listener.headers).map(([n, v]) => `${n}: ${v}`).join("\n") : "",
    scheme: (listener && listener.signature_scheme) || "v1",
  };
}

/** "Name: value" lines to a map; a line without a colon is the person's mistake. */
function parseHeaders(text) {
  const headers = {};
  for (const [n, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (!line) continue;
    const colon = line.indexOf(":");
    if (colon < 1) return { value: undefined, problem: `line ${n + 1} is not "Name: value"` };
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return { value: headers, problem: null };
}

/** The options' values as the API takes them, or the first local problem. */
function optionsValue(state) {
  const filter = state.filter.trim() ? parseJson(state.filter) : { value: null, problem: null };
  const headers = parseHeaders(state.headers);
  const problem =
    (filter.problem && `Filter: not valid JSON: ${filter.problem}`) || (headers.problem && `Headers: ${headers.problem}`);
  return {
    problem,
    value: {
      rate_limit: state.rateLimit.trim() === "" ? null : Number(state.rateLimit),
      max_in_flight: state.maxInFlight.trim() === "" ? undefined : Number(state.maxInFlight),
      ordered: state.ordered,
      filter: filter.value,
      headers: headers.value,
      signature_scheme: state.scheme,
    },
  };
}

const FILTER_HINT =
  'Empty: every message. Else {"names": ["order.*"], "data": {"customer.country": {"$in": ["DE", "FR"]}}}; ' +
  "operators $eq $ne $in $nin $exists $gt $gte $lt $lte $prefix.";

function OptionFields({ state, set, create }) {
  const field = (name) => (e) => set({ ...state, [name]: e.currentTarget.value });
  return html`
    <div class="form-row">
      <${Field} label="Rate limit (per second)" hint="Attempts started per second; empty: no limit.">
        <input type="number" min="0.1" max="10000" step="any" inputmode="decimal" value=${state.rateLimit} onInput=${field("rateLimit")} />
      <//>
      <${Field} label="Max in flight" hint=${create ? "Concurrent attempts (1 to 256); empty: the server's default." : "Concurrent attempts, 1 to 256."}>
        <input type="number" min="1" max="256" step="1" inputmode="numeric" value=${state.maxInFlight} onInput=${field("maxInFlight")} />
      <//>
    </div>
    <label class="check">
      <input type="checkbox" checked=${state.ordered} onChange=${(e) => set({ ...state, ordered: e.currentTarget.checked })} />
      Ordered: one message at a time, in the order they were posted
    </label>
    ${create &&
    html`<${Field} label="Signature scheme">
      <select value=${state.scheme} onChange=${field("scheme")}>
        <option value="v1">v1: HMAC-SHA256 with a shared secret</option>
        <option value="v1a">v1a: Ed25519, receivers verify with a public key</option>
      </select>
    <//>`}
    <${Field} label="Filter (JSON)" hint=${FILTER_HINT} wide>
      <textarea class="code" rows="4" spellcheck="false" value=${state.filter} onInput=${field("filter")}></textarea>
    <//>
    <${Field} label="Headers" hint="One per line, Name: value; added to every delivery (not to probes)." wide>
      <textarea class="code" rows="3" spellcheck="false" placeholder="Authorization: Bearer ..." value=${state.headers} onInput=${field("headers")}></textarea>
    <//>`;
}

/** What changed between the listener and the form: a PUT sends only that. */
function changedOptions(listener, value) {
  const body = {};
  for (const name of ["rate_limit", "max_in_flight", "ordered", "filter", "headers"]) {
    if (value[name] === undefined) continue;
    if (JSON.stringify(value[name]) !== JSON.stringify(listener[name] ?? null)) body[name] = value[name];
  }
  return body;
}

export function OptionsForm({ listener, onDone, onClose }) {
  const [state, set] = useState(() => optionsState(listener));
  const { busy, error, run } = useSubmit();
  const { value, problem } = optionsValue(state);
  const submit = run(async () => {
    if (problem) return;
    const body = changedOptions(listener, value);
    if (Object.keys(body).length > 0) {
      await call("PUT", `queues/${seg(listener.queue_id)}/listeners/${seg(listener.id)}`, body);
    }
    onDone();
  });
  return html`<${Dialog} title="Listener options" onClose=${onClose} wide>
    <form class="form" onSubmit=${submit}>
      <${OptionFields} state=${state} set=${set} />
      ${problem && html`<p class="field-error" role="alert">${problem}</p>`}
      <${Problem} error=${error} what="change this listener" />
      <${Buttons} busy=${busy || Boolean(problem)} label="Save options" onClose=${onClose} />
    </form>
  <//>`;
}

const GRACE = [
  [0, "none: the old key stops at once"],
  [3600, "1 hour"],
  [86400, "1 day"],
  [604800, "7 days"],
];

/** Rotate the signing key; the new one is shown here, once, to copy. */
export function RotateSecret({ listener, path, onClose }) {
  const [grace, setGrace] = useState("86400");
  const [scheme, setScheme] = useState(listener.signature_scheme || "v1");
  const [rotated, setRotated] = useState(null);
  const { busy, error, run } = useSubmit();
  const submit = run(async () => {
    const { data } = await call("POST", `${path}/secret`, { grace_seconds: Number(grace), signature_scheme: scheme });
    setRotated(data.listener);
  });
  if (rotated) {
    return html`<${Dialog} title="The new signing key" onClose=${onClose}>
      <div class="form">
        <p>Give it to the receiver now; this is the only time the console shows it${" "}
          without asking. ${Number(grace) > 0
            ? `Deliveries are signed with both keys for ${span(Number(grace))}.`
            : "Deliveries are signed with it alone from now on."}</p>
        <code class="id key-full new-secret">${rotated.secret}</code>
        <p class="muted small">Scheme ${rotated.signature_scheme}${rotated.signature_scheme === "v1a" ? ": this is the public key receivers verify with." : "."}</p>
        <div class="form-actions">
          <${CopyButton} text=${rotated.secret} />
          <button type="button" class="button primary" onClick=${onClose}>Done</button>
        </div>
      </div>
    <//>`;
  }
  return html`<${Dialog} title="Rotate the signing secret?" onClose=${onClose}>
    <form class="form" onSubmit=${submit}>
      <p>A new key signs every delivery from now on. During the grace period each delivery
        carries a signature by the old key too, so the receiver can switch at its own pace.</p>
      <${Field} label="Grace period">
        <select value=${grace} onChange=${(e) => setGrace(e.currentTarget.value)}>
          ${GRACE.map(([seconds, label]) => html`<option key=${seconds} value=${String(seconds)}>${label}</option>`)}
        </select>
      <//>
      <${Field} label="Signature scheme">
        <select value=${scheme} onChange=${(e) => setScheme(e.currentTarget.value)}>
          <option value="v1">v1: HMAC-SHA256 with a shared secret</option>
          <option value="v1a">v1a: Ed25519, receivers verify with a public key</option>
        </select>
      <//>
      <${Problem} error=${error} what="rotate this listener's secret" />
      <${Buttons} busy=${busy} label="Rotate" onClose=${onClose} />
    </form>
  <//>`;
}

export function ListenerForm({ queueId, listener, queues, onDone, onClose }) {
  const [chosenQueue, setChosenQueue] = useState(queueId || (queues && queues[0]?.id) || "");
  const [name, setName] = useState(listener ? listener.name : "");
  const [notifyUrl, setNotifyUrl] = useState(listener ? listener.notify_url : "");
  const [livenessUrl, setLivenessUrl] = useState(listener ? listener.liveness_url : "");
  const [options, setOptions] = useState(() => optionsState(null));
  const [withOptions, setWithOptions] = useState(false);
  const { busy, error, run } = useSubmit();
  const checked = withOptions ? optionsValue(options) : { value: null, problem: null };
  const submit = run(async () => {
    if (checked.problem) return;
    const body = { name: name.trim(), notify_url: notifyUrl.trim(), liveness_url: livenessUrl.trim() };
    if (checked.value) {
      const { value } = checked;
      if (value.rate_limit !== null) body.rate_limit = value.rate_limit;
      if (value.max_in_flight !== undefined) body.max_in_flight = value.max_in_flight;
      if (value.ordered) body.ordered = true;
      if (value.filter !== null) body.filter = value.filter;
      if (Object.keys(value.headers).length > 0) body.headers = value.headers;
      if (value.signature_scheme !== "v1") body.signature_scheme = value.signature_scheme;
    }
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
      ${!listener &&
      html`<details class="options" open=${withOptions} onToggle=${(e) => setWithOptions(e.currentTarget.open)}>
        <summary>Options: rate limit, order, filter, headers, signature scheme</summary>
        <div class="form"><${OptionFields} state=${options} set=${setOptions} create /></div>
      </details>`}
      ${checked.problem && html`<p class="field-error" role="alert">${checked.problem}</p>`}
      <${Problem} error=${error} what=${listener ? "change this listener" : "add listeners to this queue"} />
      <${Buttons} busy=${busy || Boolean(checked.problem)} label=${listener ? "Save" : "Create listener"} onClose=${onClose} />
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

