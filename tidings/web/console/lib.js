// The UI toolkit in one import: Preact with hooks, and htm for templates in plain
// JavaScript (tagged template literals: no build step, no eval, CSP-safe).
import { cloneElement, h, render } from "./vendor/preact.mjs";
import htm from "./vendor/htm.mjs";

export {
  useCallback,
  useEffect,
  useId,
  useMemo,
  useRef,
  useState,
} from "./vendor/preact-hooks.mjs";
export { cloneElement, render };
export const html = htm.bind(h);
