// Pieces every page uses: routing by the URL's hash, loading, errors, dialogs, badges.
import { cloneElement, html, useCallback, useEffect, useId, useRef, useState } from "./lib.js";

// ---- routing: #/queues/<id>?page=2 ------------------------------------------------

function parseHash() {
  const hash = location.hash;
  const raw = hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?", 2);
  return { hash, parts: path.split("/").filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(query) };
}

export function useRoute() {
  const [route, setRoute] = useState(parseHash);
  useEffect(() => {
    const changed = () => setRoute(parseHash());
    window.addEventListener("hashchange", changed);
    // Effects run after the first paint: a hash changed before this subscription (a
    // link followed right after signing in) fired no event we heard.
    if (location.hash !== route.hash) changed();
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return route;
}

/** "#/queues/abc?page=2" from ("queues", "abc", {page: 2}). */
export function href(...parts) {
  const query = typeof parts[parts.length - 1] === "object" ? parts.pop() : {};
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return `#/${parts.map(encodeURIComponent).join("/")}${text ? `?${text}` : ""}`;
}

export function go(target) {
  location.hash = target;
}

// ---- data ------------------------------------------------------------------------

/** Run `load` when `deps` change: {data, error, loading, reload}. Late answers of an
 *  earlier run are dropped, so a quick click-through never shows stale data. */
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const run = useRef(0);
  const reload = useCallback(() => {
    const mine = ++run.current;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => mine === run.current && setState({ data, error: null, loading: false }),
      (error) => mine === run.current && setState({ data: undefined, error, loading: false }),
    );
  }, deps);
  useEffect(reload, [reload]);
  return { ...state, reload };
}

/** Call `reload` every `ms` while `active` and the tab is visible: pages that follow
 *  something under way (deliveries, a listener's health) stay current without a click. */
export function usePoll(reload, ms, active = true) {
  useEffect(() => {
    if (!active) return undefined;
    const timer = setInterval(() => {
      if (!document.hidden) reload();
    }, ms);
    return () => clearInterval(timer);
  }, [reload, ms, active]);
}

/** A write probe's answer: undefined while asked, then true or false. */
export function useMay(ask, deps) {
  const [allowed, setAllowed] = useState(undefined);
  useEffect(() => {
    let live = true;
    setAllowed(undefined);
    ask().then((value) => live && setAllowed(value));
    return () => {
      live = false;
    };
  }, deps);
  return allowed;
}

// ---- layout ----------------------------------------------------------------------

export function Page({ title, subtitle, actions, children }) {
  useEffect(() => {
    document.title = `${title} · tidings`;
  }, [title]);
  return html`<section class="page" aria-labelledby="page-title">
    <header class="page-head">
      <div>
        <h1 id="page-title" tabindex="-1">${title}</h1>
        ${subtitle && html`<p class="subtitle">${subtitle}</p>`}
      </div>
      ${actions && html`<div class="actions">${actions}</div>`}
    </header>
    ${children}
  </section>`;
}

export function Section({ title, actions, children, id }) {
  const auto = useId();
  const headingId = id || auto;
  return html`<section class="card" aria-labelledby=${headingId}>
    <header class="card-head">
      <h2 id=${headingId}>${title}</h2>
      ${actions && html`<div class="actions">${actions}</div>`}
    </header>
    ${children}
  </section>`;
}

export function Loading({ what = "Loading" }) {
  return html`<p class="muted loading" role="status">${what}…</p>`;
}

export function Empty({ title, children }) {
  return html`<div class="empty"><p class="empty-title">${title}</p>${children}</div>`;
}

// ---- errors ----------------------------------------------------------------------

/** An API error as a person reads it: a 403 says what this key may not do; anything
 *  else shows the API's detail and, when present, each error by its path. */
export function Problem({ error, what, strip }) {
  if (!error) return null;
  if (error.forbidden) {
    return html`<div class="notice notice-forbidden" role="alert">
      <p><strong>This key may not ${what}.</strong></p>
      <p class="muted">${error.detail}</p>
    </div>`;
  }
  return html`<div class="notice notice-error" role="alert">
    <p>${error.detail}</p>
    <${Violations} errors=${error.errors} strip=${strip} />
  </div>`;
}

/** `errors[]` of a problem: `strip` removes a prefix such as "$.schema" so paths read
 *  as paths into what the person typed. */
export function Violations({ errors, strip }) {
  if (!errors || errors.length === 0) return null;
  const show = (path) => {
    if (strip && path.startsWith(strip)) path = path.slice(strip.length).replace(/^\./, "");
    return path || "(the whole value)";
  };
  return html`<ul class="violations">
    ${errors.map(
      (e) => html`<li><code class="path">${show(e.path)}</code> <span>${e.message}</span></li>`,
    )}
  </ul>`;
}

/** A button for a change: disabled until the key is known to be allowed (`may` is
 *  undefined while the API is asked), with the reason as its description. */
export function Action({ may, what, reason, onClick, children, kind = "" }) {
  return html`<button
    type="button"
    class=${`button ${kind}`}
    disabled=${may !== true}
    title=${may === false ? reason || `This key may not ${what}.` : undefined}
    onClick=${onClick}
  >
    ${children}
  </button>`;
}

/** Says once, near the controls it disables, what this key may not do. */
export function MayNot({ may, what }) {
  if (may !== false) return null;
  return html`<p class="may-not">Read only: this key may not ${what}.</p>`;
}

/** State for an action that calls the API: {busy, error, run(fn)}; `run(fn)` makes the
 *  handler of a form's submit (or a button's click). */
export function useSubmit() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = (fn) => async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await fn();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run };
}

// ---- dialogs ---------------------------------------------------------------------

const FOCUSABLE = "a[href], button, input, select, textarea, summary, [tabindex]:not([tabindex='-1'])";

/** A modal <dialog>: the browser keeps focus inside it, Escape closes it, and focus
 *  returns to what opened it. */
export function Dialog({ title, onClose, children, wide }) {
  const ref = useRef(null);
  const headingId = useId();
  useEffect(() => {
    const dialog = ref.current;
    const opener = document.activeElement;
    dialog.showModal();
    return () => {
      if (dialog.open) dialog.close();
      if (opener && opener.isConnected) opener.focus();
    };
  }, []);
  const cancel = (event) => {
    event.preventDefault(); // we close it ourselves, by unmounting
    onClose();
  };
  // A modal <dialog> makes the page behind it inert, but Tab past its last control
  // would leave for the browser's own UI: wrap around instead.
  const keepFocus = (event) => {
    if (event.key !== "Tab") return;
    const stops = [...ref.current.querySelectorAll(FOCUSABLE)].filter((el) => !el.disabled && el.offsetParent !== null);
    if (stops.length === 0) return;
    const [first, last] = [stops[0], stops[stops.length - 1]];
    if (event.shiftKey && document.activeElement === first) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && document.activeElement === last) {
      event.preventDefault();
      first.focus();
    }
  };
  return html`<dialog ref=${ref} class=${wide ? "dialog wide" : "dialog"} aria-labelledby=${headingId}
    onCancel=${cancel} onKeyDown=${keepFocus}>
    <header class="dialog-head">
      <h2 id=${headingId}>${title}</h2>
      <button type="button" class="icon-button" aria-label="Close" onClick=${onClose}>×</button>
    </header>
    ${children}
  </dialog>`;
}

/** Ask before doing something that cannot be undone; shows the API's error if any. */
export function Confirm({ title, children, confirm = "Delete", onConfirm, onClose }) {
  const { busy, error, run } = useSubmit();
  return html`<${Dialog} title=${title} onClose=${onClose}>
    <form onSubmit=${run(onConfirm)} class="form">
      ${children}
      <${Problem} error=${error} what="do this" />
      <div class="form-actions">
        <button type="button" class="button" onClick=${onClose}>Cancel</button>
        <button type="submit" class="button danger" disabled=${busy}>${confirm}</button>
      </div>
    </form>
  <//>`;
}

// ---- small pieces ----------------------------------------------------------------

const STATE_KIND = {
  stable: "good",
  delivered: "good",
  enabled: "good",
  acknowledged: "good",
  unstable: "warn",
  pending: "info",
  unknown: "muted",
  down: "bad",
  missed: "bad",
  disabled: "muted",
  healthy: "good",
  failing: "bad",
  failed: "bad",
  timeout: "bad",
  connection: "bad",
  tls: "bad",
  address_refused: "bad",
  redirect: "bad",
  invalid_response: "bad",
};

export function Badge({ value, label }) {
  return html`<span class=${`badge badge-${STATE_KIND[value] || "muted"}`}>${label || value}</span>`;
}

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const STEPS = [
  [60, "second"],
  [60, "minute"],
  [24, "hour"],
  [30, "day"],
  [12, "month"],
  [Infinity, "year"],
];

export function ago(ms, now = Date.now()) {
  let amount = (ms - now) / 1000;
  for (const [size, unit] of STEPS) {
    // Compared once rounded: 59.6 minutes reads "in 1 hour", not "in 60 minutes".
    if (Math.abs(Math.round(amount)) < size) return relative.format(Math.round(amount), unit);
    amount /= size;
  }
  return "";
}

export function Time({ ms }) {
  if (ms === null || ms === undefined) return html`<span class="muted">—</span>`;
  const date = new Date(ms);
  return html`<time datetime=${date.toISOString()} title=${absolute.format(date)}>${ago(ms)}</time>`;
}

export function formatTime(ms) {
  return absolute.format(new Date(ms));
}

export function CopyButton({ text, label = "Copy" }) {
  const [done, setDone] = useState(false);
  if (!navigator.clipboard) return null; // only in secure contexts (https, localhost)
  const copy = () =>
    navigator.clipboard.writeText(text).then(
      () => {
        setDone(true);
        setTimeout(() => setDone(false), 1500);
      },
      () => setDone(false),
    );
  return html`<button type="button" class="button small" onClick=${copy}>${done ? "Copied" : label}</button>`;
}

export function Id({ value }) {
  return html`<code class="id" title=${value}>${value}</code>`;
}

export function Pager({ page, pages, total, to, label = "Pages" }) {
  if (pages <= 1) return html`<p class="muted pager-total">${total} in all</p>`;
  return html`<nav class="pager" aria-label=${label}>
    ${page > 1 ? html`<a class="button small" href=${to(page - 1)}>Previous</a>` : html`<span class="button small" aria-disabled="true">Previous</span>`}
    <span class="muted">Page ${page} of ${pages} · ${total} in all</span>
    ${page < pages ? html`<a class="button small" href=${to(page + 1)}>Next</a>` : html`<span class="button small" aria-disabled="true">Next</span>`}
  </nav>`;
}

/** Paging by buttons, for lists inside a page whose URL does not carry the page. */
export function PageButtons({ page, pages, total, onPage, label = "Pages", newestFirst = true }) {
  if (pages <= 1) return html`<p class="muted pager-total">${total} in all</p>`;
  return html`<nav class="pager" aria-label=${label}>
    <button type="button" class="button small" disabled=${page <= 1} onClick=${() => onPage(page - 1)}>${newestFirst ? "Newer" : "Previous"}</button>
    <span class="muted">Page ${page} of ${pages} · ${total} in all</span>
    <button type="button" class="button small" disabled=${page >= pages} onClick=${() => onPage(page + 1)}>${newestFirst ? "Older" : "Next"}</button>
  </nav>`;
}

/** A duration in ms as a person reads it: "87 ms", "2.4 s". */
export function duration(ms) {
  if (ms === null || ms === undefined) return "—";
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(ms < 10000 ? 1 : 0)} s`;
}

/** A time span in seconds as a person reads it: "30 days", "12 hours", "90 seconds". */
export function span(seconds) {
  if (seconds === null || seconds === undefined) return "forever";
  for (const [size, unit] of [[86400, "day"], [3600, "hour"], [60, "minute"]]) {
    if (seconds >= size && seconds % size === 0) {
      const n = seconds / size;
      return `${n} ${unit}${n === 1 ? "" : "s"}`;
    }
  }
  return `${seconds} second${seconds === 1 ? "" : "s"}`;
}

/** A form field: its label names the control; the hint describes it. */
export function Field({ label, hint, children, wide }) {
  const hintId = useId();
  const control =
    hint && children && !Array.isArray(children) && children.type
      ? cloneElement(children, { "aria-describedby": hintId })
      : children;
  return html`<div class=${wide ? "field wide" : "field"}>
    <label class="field-label">
      <span class="label">${label}</span>
      ${control}
    </label>
    ${hint && html`<span class="hint" id=${hintId}>${hint}</span>`}
  </div>`;
}

/** Transient success messages, read out by screen readers. */
let notify = () => {};
export function notice(text) {
  notify(text);
}

export function Notices() {
  const [items, setItems] = useState([]);
  useEffect(() => {
    notify = (text) => {
      const id = Math.random();
      setItems((all) => [...all, { id, text }]);
      setTimeout(() => setItems((all) => all.filter((n) => n.id !== id)), 4000);
    };
    return () => {
      notify = () => {};
    };
  }, []);
  return html`<div class="notices" role="status" aria-live="polite">
    ${items.map((n) => html`<p class="toast" key=${n.id}>${n.text}</p>`)}
  </div>`;
}
