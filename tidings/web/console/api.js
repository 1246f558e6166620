// The console's only way to the server: the public API, with the key a person signed
// in with. The key lives in this tab's sessionStorage (gone when the tab closes; never
// in localStorage, a cookie or a URL).

const KEY = "tidings.apiKey";

// The API's base is where the console was served from: /console -> /, /v1/console ->
// /v1/, and a reverse proxy's path prefix is kept.
export const base = new URL(".", location.href);

export class ApiError extends Error {
  constructor(status, body, headers) {
    const detail = (body && (body.detail || body.title)) || errorText(status);
    super(detail);
    this.status = status;
    this.detail = detail;
    this.errors = (body && Array.isArray(body.errors) && body.errors) || [];
    // A 403 with Retry-After is the lockout of this address (SPEC §2), not a scope.
    this.lockedOut = status === 403 && Boolean(headers && headers.get("Retry-After"));
  }

  /** The key lacks the scope for this (as opposed to any other refusal). */
  get forbidden() {
    return this.status === 403 && !this.lockedOut;
  }
}

function errorText(status) {
  if (status === 0) return "The server could not be reached. Is tidings running?";
  return `The server answered ${status}.`;
}

export function storedKey() {
  return sessionStorage.getItem(KEY);
}

export function keepKey(key) {
  sessionStorage.setItem(KEY, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY);
  probes.clear();
}

// The server's clock, from the Date header of the last answer: the events page asks
// for "the last N minutes" in the server's time, whatever this machine's clock says.
let clockSkewMs = 0;
export function serverNow() {
  return Date.now() + clockSkewMs;
}

/** One request. Resolves to {data, total, headers}; rejects with an ApiError. */
export async function call(method, path, body, key = storedKey()) {
  const headers = { Accept: "application/json", "X-API-KEY": key || "" };
  const init = { method, headers, cache: "no-store", credentials: "omit", redirect: "error" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(new URL(path, base), init);
  } catch {
    throw new ApiError(0, null);
  }
  const date = Date.parse(response.headers.get("Date") || "");
  if (!Number.isNaN(date)) clockSkewMs = date - Date.now();
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data, response.headers);
    // The key stopped working (disabled, deleted): the shell signs out and says why.
    if (response.status === 401 && key === storedKey()) {
      window.dispatchEvent(new CustomEvent("tidings:unauthorized", { detail: error.detail }));
    }
    throw error;
  }
  const total = Number.parseInt(response.headers.get("X-Total-Count") || "", 10);
  return { data, total: Number.isNaN(total) ? null : total };
}

/** A path with its query: q("queues", {page: 2}) -> "queues?page=2" (unset values dropped). */
export function q(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(name, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

export const seg = encodeURIComponent;

/** One page of a list: {items, total}. */
export async function listPage(path, field, page, perPage) {
  const { data, total } = await call("GET", q(path, { page, per_page: perPage }));
  return { items: data[field], total: total ?? data[field].length };
}

/** Page `page` of a list counted from its newest item, newest first, every page full
 *  but the last: {items, total, pages}. Lists come oldest first, so this reads the one
 *  or two pages of `perPage` that hold the wanted run. */
export async function newestPage(path, field, page, perPage) {
  const { total } = await listPage(path, field, 1, 1);
  const pages = Math.max(1, Math.ceil(total / perPage));
  const end = total - (Math.min(page, pages) - 1) * perPage; // oldest-first index, exclusive
  const start = Math.max(0, end - perPage);
  const items = [];
  const first = Math.floor(start / perPage) + 1;
  const last = Math.max(first, Math.ceil(end / perPage));
  for (let n = first; n <= last && total > 0; n += 1) {
    const { items: more } = await listPage(path, field, n, perPage);
    items.push(...more);
  }
  const offset = start - (first - 1) * perPage;
  return { items: items.slice(offset, offset + (end - start)).reverse(), total, pages };
}

/** Every item of a list, up to `limit` (for lookups such as queue names). */
export async function listAll(path, field, limit = 1000) {
  const items = [];
  for (let page = 1; items.length < limit; page += 1) {
    const { items: more, total } = await listPage(path, field, page, 100);
    items.push(...more);
    if (more.length < 100 || items.length >= total) break;
  }
  return items;
}

// What the key may change, asked of the API itself: the same write with a body that
// is not an object. The API checks the key's scope before it reads a body (existence,
// then scope, then body; tests/integration/test_console_probes.py holds it to that),
// so the answer is 403 when the key may not, and 400 (nothing changed) when it may.
// Answers are kept for the session: a key's scopes rarely change while one works.
const probes = new Map();

export function probe(method, path) {
  const id = `${method} ${path}`;
  if (!probes.has(id)) {
    probes.set(
      id,
      call(method, path, []).then(
        () => true,
        (error) => !error.forbidden,
      ),
    );
  }
  return probes.get(id);
}

/** The write probes the pages need, by what they would change. */
export const may = {
  createQueue: () => probe("POST", "queues"),
  changeQueue: (queueId) => probe("PUT", `queues/${seg(queueId)}`),
  createListener: (queueId) => probe("POST", `queues/${seg(queueId)}/listeners`),
  changeListener: (queueId, listenerId) =>
    probe("PUT", `queues/${seg(queueId)}/listeners/${seg(listenerId)}`),
  postMessage: (queueId) => probe("POST", `queues/${seg(queueId)}/messages`),
  changeMessage: (queueId, messageId) =>
    probe("PUT", `queues/${seg(queueId)}/messages/${seg(messageId)}`),
  manageKeys: () => probe("POST", "api_keys"),
};
