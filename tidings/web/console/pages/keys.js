// API keys: for keys that may see them (operator keys hold the api_keys scope).
import { call, listPage, may, seg } from "../api.js";
import { html, useState } from "../lib.js";
import {
  Action,
  Badge,
  Confirm,
  CopyButton,
  Dialog,
  Empty,
  Field,
  Loading,
  MayNot,
  Page,
  Pager,
  Problem,
  Time,
  href,
  notice,
  useLoad,
  useMay,
  useSubmit,
} from "../ui.js";

const PER_PAGE = 50;
// What a key can be granted through the API; api_clients, api_keys and subscriptions
// are for operator keys made by the CLI only (SPEC §2).
const GRANTABLE = ["queues", "listeners", "messages", "schemas", "events", "stats"];

function scopeText(scopes) {
  if (scopes.length === 0) return "nothing";
  return scopes
    .map((s) => `${s.resource} ${s.access}${s.targets.includes("*") ? "" : ` (${s.targets.length} target${s.targets.length > 1 ? "s" : ""})`}`)
    .join(", ");
}

function ScopeRows({ rows, setRows }) {
  const change = (resource, field) => (event) =>
    setRows({ ...rows, [resource]: { ...rows[resource], [field]: event.currentTarget.value } });
  return html`<table class="table scopes">
    <caption class="sr-only">Access per resource</caption>
    <thead><tr><th scope="col">Resource</th><th scope="col">Access</th><th scope="col">Targets</th></tr></thead>
    <tbody>
      ${GRANTABLE.map(
        (resource) => html`<tr key=${resource}>
          <th scope="row">${resource}</th>
          <td><select aria-label=${`Access to ${resource}`} value=${rows[resource].access} onChange=${change(resource, "access")}>
            <option value="">none</option><option value="read">read</option><option value="write">write (and read)</option>
          </select></td>
          <td><input aria-label=${`Targets for ${resource}`} value=${rows[resource].targets} disabled=${!rows[resource].access}
            onInput=${change(resource, "targets")} placeholder="* or ids, comma-separated" /></td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

function KeyForm({ onDone, onClose }) {
  const [name, setName] = useState("");
  const [custom, setCustom] = useState(false);
  const [rows, setRows] = useState(
    Object.fromEntries(GRANTABLE.map((r) => [r, { access: "read", targets: "*" }])),
  );
  const { busy, error, run } = useSubmit();
  const submit = run(async () => {
    const body = { name: name.trim() || undefined };
    if (custom) {
      body.scopes = GRANTABLE.filter((r) => rows[r].access).map((r) => ({
        resource: r,
        access: rows[r].access,
        targets: rows[r].targets.split(",").map((t) => t.trim()).filter(Boolean),
      }));
    }
    const { data } = await call("POST", "api_keys", body);
    onDone(data.api_key);
  });
  return html`<${Dialog} title="New API key" onClose=${onClose} wide=${custom}>
    <form class="form" onSubmit=${submit}>
      <${Field} label="Name" hint="Who or what uses it, e.g. billing-service.">
        <input maxlength="256" value=${name} onInput=${(e) => setName(e.currentTarget.value)} />
      <//>
      <fieldset class="choice">
        <legend>Access</legend>
        <label class="check"><input type="radio" name="access" checked=${!custom} onChange=${() => setCustom(false)} />
          Write on every queue, listener, message, event and stat</label>
        <label class="check"><input type="radio" name="access" checked=${custom} onChange=${() => setCustom(true)} />
          Chosen resources (read-only keys, keys for some queues)</label>
      </fieldset>
      ${custom && html`<${ScopeRows} rows=${rows} setRows=${setRows} />`}
      <${Problem} error=${error} what="create API keys" />
      <div class="form-actions">
        <button type="button" class="button" onClick=${onClose}>Cancel</button>
        <button type="submit" class="button primary" disabled=${busy}>Create key</button>
      </div>
    </form>
  <//>`;
}

function NewKey({ secret, onClose }) {
  return html`<${Dialog} title="Your new API key" onClose=${onClose}>
    <div class="form">
      <p><strong>Copy it now: it is shown this once.</strong> tidings keeps only a hash of it.</p>
      <div class="secret"><code class="id key-full">${secret}</code><${CopyButton} text=${secret} /></div>
      <div class="form-actions"><button type="button" class="button primary" onClick=${onClose}>Done</button></div>
    </div>
  <//>`;
}

export function Keys({ query }) {
  const page = Math.max(1, Number.parseInt(query.get("page") || "1", 10) || 1);
  const [dialog, setDialog] = useState(null);
  const mayManage = useMay(may.manageKeys, []);
  const list = useLoad(() => listPage("api_keys", "api_keys", page, PER_PAGE), [page]);
  const close = () => setDialog(null);
  const setStatus = async (key, status) => {
    try {
      await call("PUT", `api_keys/${seg(key.id)}`, { status });
      notice(`Key ${key.name || key.key} ${status}.`);
    } catch (e) {
      notice(e.detail);
    }
    list.reload();
  };
  const create = html`<${Action} may=${mayManage} what="create API keys" kind="primary" onClick=${() => setDialog({ kind: "new" })}>New key<//>`;
  if (list.error && list.error.forbidden) {
    return html`<${Page} title="API keys">
      <${Problem} error=${list.error} what="see API keys" />
      <p class="muted">Only operator keys (made by <code>tidings init</code> or the bootstrap
      setting) hold the api_keys scope; an organization's other keys cannot list or change keys.</p>
    <//>`;
  }
  return html`<${Page} title="API keys" subtitle="Keys of this organization. Each is shown in full only when it is created." actions=${create}>
    <${MayNot} may=${mayManage} what="create or change API keys" />
    ${list.loading && !list.data && html`<${Loading} />`}
    <${Problem} error=${list.error} what="see API keys" />
    ${list.data && list.data.total === 0 && html`<${Empty} title="No keys"><p>Create one for each service that talks to tidings.</p><//>`}
    ${list.data && list.data.items.length > 0 &&
    html`<div class="table-wrap"><table class="table">
      <thead><tr><th scope="col">Name</th><th scope="col">Key</th><th scope="col">Status</th><th scope="col">Access</th>
        <th scope="col" class="hide-narrow">Last used</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>
        ${list.data.items.map(
          (key) => html`<tr key=${key.id}>
            <td>${key.name || html`<span class="muted">unnamed</span>`}</td>
            <td><code>${key.key}…</code></td>
            <td><${Badge} value=${key.status} /></td>
            <td class="scope-text">${scopeText(key.scopes)}</td>
            <td class="hide-narrow"><${Time} ms=${key.last_used_at} /></td>
            <td class="row-actions">
              <${Action} may=${mayManage} what="change API keys" kind="small"
                onClick=${() => setStatus(key, key.status === "enabled" ? "disabled" : "enabled")}>
                ${key.status === "enabled" ? "Disable" : "Enable"}<//>
              <${Action} may=${mayManage} what="delete API keys" kind="small danger" onClick=${() => setDialog({ kind: "delete", key })}>Delete<//>
            </td>
          </tr>`,
        )}
      </tbody>
    </table></div>
    <${Pager} page=${page} pages=${Math.ceil(list.data.total / PER_PAGE)} total=${list.data.total}
      to=${(n) => href("keys", { page: n })} label="Key pages" />`}
    ${dialog && dialog.kind === "new" &&
    html`<${KeyForm} onClose=${close} onDone=${(secret) => {
      setDialog({ kind: "shown", secret });
      list.reload();
    }} />`}
    ${dialog && dialog.kind === "shown" && html`<${NewKey} secret=${dialog.secret} onClose=${close} />`}
    ${dialog && dialog.kind === "delete" &&
    html`<${Confirm} title=${`Delete key ${dialog.key.name || dialog.key.key}?`} onClose=${close} onConfirm=${async () => {
      await call("DELETE", `api_keys/${seg(dialog.key.id)}`);
      close();
      notice("Key deleted.");
      list.reload();
    }}><p>Every client using it is refused from now on. If this tab signed in with it, the console signs out.</p><//>`}
  <//>`;
}
