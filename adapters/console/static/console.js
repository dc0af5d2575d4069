// Shared by every console page: JSON calls that carry the CSRF token, and the texts.
const meta = document.querySelector('meta[name="csrf-token"]');

export const csrfToken = () => (meta ? meta.content : "");

let cachedTexts = null;
export function texts() {
  if (cachedTexts === null) {
    const block = document.getElementById("console-texts");
    cachedTexts = block ? JSON.parse(block.textContent) : {};
  }
  return cachedTexts;
}

// "案件 {number} 已立案" with {number: "…"} → filled in; unknown keys show the key.
export function tr(key, values = {}) {
  const template = texts()[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["X-CSRF-Token"] = csrfToken();
    headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    window.location.assign("/console/login?next=" + encodeURIComponent(location.pathname));
    throw new ApiError(401, tr("console.login_needed"));
  }
  let data = {};
  try { data = await response.json(); } catch { /* an empty or HTML body */ }
  if (!response.ok) throw new ApiError(response.status, data.error || response.statusText);
  return data;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

// People who ask their system for less motion (prefers-reduced-motion) get charts and maps
// drawn at once, without tweening or zoom animations.
export const stillMotion = () =>
  Boolean(window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches);

// Leaflet's options for a map that does not animate when motion is unwanted.
export const mapMotion = () => {
  const animate = !stillMotion();
  return { zoomAnimation: animate, fadeAnimation: animate, markerZoomAnimation: animate };
};

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

export function show(node, text) {
  node.textContent = text;
  node.hidden = !text;
}
