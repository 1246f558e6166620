// The console's shell: sign-in, navigation, theme, and the page for the URL's hash.
import { call, forgetKey, keepKey, storedKey } from "./api.js";
import { html, render, useEffect, useRef, useState } from "./lib.js";
import { Events } from "./pages/events.js";
import { Keys } from "./pages/keys.js";
import { ListenerDetail, Listeners } from "./pages/listeners.js";
import { MessageDetail, Messages } from "./pages/messages.js";
import { Overview } from "./pages/overview.js";
import { QueueDetail, Queues } from "./pages/queues.js";
import { Notices, Page, href, useRoute } from "./ui.js";

const NAV = [
  ["overview", "Overview"],
  ["queues", "Queues"],
  ["listeners", "Listeners"],
  ["messages", "Messages"],
  ["events", "Events"],
  ["keys", "API keys"],
];

function pageFor({ parts, query }) {
  const [first = "overview", id, sub, subId] = parts;
  if (first === "queues" && id && sub === "listeners" && subId) {
    return html`<${ListenerDetail} queueId=${id} listenerId=${subId} />`;
  }
  if (first === "queues" && id && sub === "messages" && subId) {
    return html`<${MessageDetail} queueId=${id} messageId=${subId} />`;
  }
  if (first === "queues" && id && !sub) return html`<${QueueDetail} queueId=${id} />`;
  if (parts.length <= 1) {
    const pages = { overview: Overview, queues: Queues, listeners: Listeners, messages: Messages, events: Events, keys: Keys };
    const Found = pages[first];
    if (Found) return html`<${Found} query=${query} />`;
  }
  return html`<${Page} title="Not found"><p>There is no such page. <a href=${href("overview")}>Go to the overview</a>.</p><//>`;
}

// ---- theme: follow the system, or a choice kept in localStorage (not a secret) ----

const THEMES = ["system", "light", "dark"];

function useTheme() {
  const [theme, setTheme] = useState(() => document.documentElement.dataset.theme || "system");
  useEffect(() => {
    const root = document.documentElement;
    if (theme === "system") {
      delete root.dataset.theme;
      localStorage.removeItem("tidings.theme");
    } else {
      root.dataset.theme = theme;
      localStorage.setItem("tidings.theme", theme);
    }
  }, [theme]);
  const next = () => setTheme(THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length]);
  return [theme, next];
}

function ThemeButton() {
  const [theme, next] = useTheme();
  return html`<button type="button" class="button small" onClick=${next} aria-label=${`Theme: ${theme}. Change theme`}>
    Theme: ${theme}
  </button>`;
}

// ---- sign-in -----------------------------------------------------------------------

function SignIn({ onSignedIn, reason }) {
  const [key, setKey] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const input = useRef(null);
  useEffect(() => {
    document.title = "Sign in · tidings";
    input.current.focus();
  }, []);
  const submit = async (event) => {
    event.preventDefault();
    const trimmed = key.trim();
    setBusy(true);
    setError(null);
    try {
      // Any answer but 401 (and the lockout's 403) means the key is real; what it may
      // read and change each page learns from the API.
      await call("GET", "queues?per_page=1", undefined, trimmed);
    } catch (e) {
      if (e.status === 401 || e.lockedOut || e.status === 0 || e.status === 429 || e.status >= 500) {
        setError(e);
        setBusy(false);
        return;
      }
    }
    keepKey(trimmed);
    onSignedIn(trimmed);
  };
  return html`<main class="signin" id="main">
    <form class="signin-card form" onSubmit=${submit} aria-labelledby="signin-title">
      <h1 id="signin-title"><span class="logo" aria-hidden="true"></span> tidings console</h1>
      <p class="muted">
        Sign in with an API key. It is kept in this browser tab only and sent to this server
        alone; closing the tab forgets it. The console can do what the key may do, no more.
      </p>
      ${reason && html`<div class="notice notice-error" role="alert"><p>${reason}</p></div>`}
      <label class="field">
        <span class="label">API key</span>
        <input ref=${input} type="password" name="api-key" autocomplete="off" spellcheck="false"
          required value=${key} onInput=${(e) => setKey(e.currentTarget.value)} />
      </label>
      ${error &&
      html`<div class="notice notice-error" role="alert">
        <p>${error.status === 401 ? "This key was not accepted." : "Could not sign in."}</p>
        <p class="muted">${error.detail}</p>
      </div>`}
      <div class="form-actions">
        <button type="submit" class="button primary" disabled=${busy || !key.trim()}>Sign in</button>
      </div>
      <p class="muted small">
        <code>tidings serve</code> prints an operator key on its first start;${" "}
        <code>tidings init</code> makes another. The <a href="docs">API docs</a> need no key.
      </p>
    </form>
  </main>`;
}

// ---- the signed-in shell ---------------------------------------------------------

function Shell({ apiKey, onSignOut }) {
  const route = useRoute();
  const main = useRef(null);
  const current = route.parts[0] || "overview";
  const first = useRef(true);
  useEffect(() => {
    // A new page: move focus to its heading so keyboard and screen-reader users start there.
    if (first.current) {
      first.current = false;
      return;
    }
    const heading = main.current && main.current.querySelector("h1");
    if (heading) heading.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }, [route.parts.join("/")]);
  const skip = () => main.current.querySelector("h1")?.focus();
  return html`<div class="shell">
    <button type="button" class="skip" onClick=${skip}>Skip to content</button>
    <header class="top">
      <a class="brand" href=${href("overview")}><span class="logo" aria-hidden="true"></span>tidings</a>
      <div class="top-actions">
        <span class="key-hint" title="The key this tab is signed in with">Key ${apiKey.slice(0, 3)}…</span>
        <${ThemeButton} />
        <button type="button" class="button small" onClick=${onSignOut}>Sign out</button>
      </div>
    </header>
    <nav class="nav" aria-label="Console">
      <ul>
        ${NAV.map(
          ([id, label]) => html`<li key=${id}>
            <a href=${href(id)} aria-current=${current === id ? "page" : undefined}>${label}</a>
          </li>`,
        )}
      </ul>
    </nav>
    <main class="main" id="main" ref=${main}>${pageFor(route)}</main>
    <${Notices} />
  </div>`;
}

function App() {
  const [apiKey, setApiKey] = useState(storedKey);
  const [reason, setReason] = useState(null);
  useEffect(() => {
    const lost = (event) => {
      forgetKey();
      setApiKey(null);
      setReason(`Signed out: the server no longer accepts this key (${event.detail})`);
    };
    window.addEventListener("tidings:unauthorized", lost);
    return () => window.removeEventListener("tidings:unauthorized", lost);
  }, []);
  if (!apiKey) {
    return html`<${SignIn} reason=${reason} onSignedIn=${(key) => {
      setReason(null);
      setApiKey(key);
    }} />`;
  }
  const signOut = () => {
    forgetKey();
    setApiKey(null);
  };
  return html`<${Shell} key=${apiKey} apiKey=${apiKey} onSignOut=${signOut} />`;
}

const root = document.getElementById("app");
root.textContent = ""; // the "Loading" line
render(html`<${App} />`, root);
