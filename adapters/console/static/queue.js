// The case queue: filters and paging over /console/api/cases, live rows from /console/events.
import { api, ApiError, el, tr } from "./console.js";

const form = document.getElementById("filters");
const body = document.getElementById("queue-body");
const empty = document.getElementById("queue-empty");
const pageInfo = document.getElementById("page-info");
const prev = document.getElementById("prev");
const next = document.getElementById("next");
const live = document.getElementById("live");

let page = 1;
let pages = 1;

function query() {
  const params = new URLSearchParams();
  for (const [key, value] of new FormData(form)) if (value) params.set(key, value);
  params.set("page", String(page));
  return params;
}

function row(c) {
  const tr_ = el("tr", { id: `case-${c.number}`, class: c.overdue ? "overdue" : "", dataset: { number: c.number } },
    el("td", {}, el("a", { href: `/console/cases/${encodeURIComponent(c.number)}` }, c.number),
      c.urgent ? el("span", { class: "badge warn" }, tr("console.urgent")) : null),
    el("td", {}, el("span", { class: `status s-${c.status}` }, c.status_label)),
    el("td", { title: c.text }, c.item),
    el("td", { class: "address" }, c.address || "-"),
    el("td", {}, c.grid_name),
    el("td", {}, c.level_label),
    el("td", {}, c.assignee),
    el("td", {}, c.channel_label),
    el("td", {}, c.created_at),
    el("td", {}, c.handling_due, c.overdue ? el("span", { class: "badge warn" }, tr("console.overdue")) : null));
  return tr_;
}

async function load() {
  const params = query();
  history.replaceState(null, "", "?" + params.toString());
  const data = await api("/console/api/cases?" + params.toString());
  pages = data.pages;
  body.replaceChildren(...data.cases.map(row));
  empty.hidden = data.cases.length > 0;
  pageInfo.textContent = tr("console.page_info", { page: data.page, pages: data.pages, total: data.total });
  prev.disabled = page <= 1;
  next.disabled = page >= pages;
}

function restoreFilters() {
  const params = new URLSearchParams(location.search);
  for (const [key, value] of params) {
    const field = form.elements.namedItem(key);
    if (!field) continue;
    if (field.type === "checkbox") field.checked = value === field.value;
    else field.value = value;
  }
  page = Math.max(1, Number(params.get("page")) || 1);
}

async function refreshOne(number) {
  const existing = document.getElementById(`case-${number}`);
  if (!existing) {
    if (page === 1) await load(); // the server applies the filters and the ordering
    const added = document.getElementById(`case-${number}`);
    if (added) added.classList.add("fresh");
    return;
  }
  try {
    const fresh = row(await api(`/console/api/cases/${encodeURIComponent(number)}/row`));
    fresh.classList.add("fresh");
    existing.replaceWith(fresh);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) existing.remove();
  }
}

function listen() {
  const source = new EventSource("/console/events");
  source.addEventListener("open", () => {
    live.textContent = tr("console.live_on");
    live.className = "badge ok";
  });
  source.addEventListener("error", () => {
    live.textContent = tr("console.live_off");
    live.className = "badge muted";
  });
  source.addEventListener("case", (event) => {
    const change = JSON.parse(event.data);
    refreshOne(change.number).catch(() => {});
  });
}

form.addEventListener("change", () => { page = 1; load(); });
form.addEventListener("submit", (event) => { event.preventDefault(); page = 1; load(); });
prev.addEventListener("click", () => { if (page > 1) { page -= 1; load(); } });
next.addEventListener("click", () => { if (page < pages) { page += 1; load(); } });

restoreFilters();
load().then(listen);
