// The dashboard: fetches every figure as JSON, draws the ECharts charts and the Leaflet map
// of the grid GeoJSON (no tiles unless configured), and refreshes on the console's event
// stream — or every 30 s when the stream is down. ECharts and Leaflet are served locally
// from /console/vendor/ (see adapters/console/vendor.py); nothing comes from a CDN.
import { api, el, mapMotion, show, stillMotion, tr } from "./console.js";

const POLL_MS = 30_000;
const LIVE_REFRESH_MS = 300_000; // overdue flags change with time alone, even with no events
const EVENT_DEBOUNCE_MS = 1_000;
// A busy city changes cases every few seconds: at most one refresh per 10 s however many.
const MIN_GAP_MS = 10_000;
const TOP_ITEMS = 10;
const TOP_DEPARTMENTS = 15;
const BLUES = ["#eff3ff", "#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c"];
const REDS = ["#fee5d9", "#fcbba1", "#fc9272", "#fb6a4a", "#de2d26", "#a50f15"];
const NONE_COLOUR = "#f2f2f2";

const periodSelect = document.getElementById("period");
const controls = document.getElementById("dash-controls");
const errorBox = document.getElementById("dash-error");
const updated = document.getElementById("updated");
const live = document.getElementById("live");
const colourSelect = document.getElementById("map-colour");
const pointsBox = document.getElementById("map-points");
const hotspotsBox = document.getElementById("map-hotspots");
const mapBox = document.getElementById("map");

const charts = {};
let figures = null;
let refreshes = 0;
let loading = null;
let streamOpen = false;
let lastLoaded = 0;

const pct = (v) => (v === null || v === undefined ? "–" : `${(v * 100).toFixed(1)}%`);

function chart(name) {
  if (!charts[name]) {
    // SVG, not canvas: crisp in screenshots and the text can be found in the page.
    const made = echarts.init(document.getElementById(`chart-${name}`), null,
      { renderer: "svg" });
    // Every option set (merged or replacing) keeps the reader's motion preference.
    const setOption = made.setOption.bind(made);
    const animation = !stillMotion();
    made.setOption = (option, ...rest) => setOption({ animation, ...option }, ...rest);
    charts[name] = made;
  }
  return charts[name];
}

// richText tooltips are drawn by ECharts itself: HTML ones carry inline styles, which the
// console's Content-Security-Policy (rightly) refuses.
const tooltip = (extra = {}) => ({ renderMode: "richText", ...extra });

// A chart with nothing to show says so, instead of drawing empty axes or equal slices.
function empty(name) {
  chart(name).setOption({
    title: { text: tr("dashboard.no_data"), left: "center", top: "middle",
      textStyle: { color: "#999", fontWeight: "normal", fontSize: 14 } },
  }, true);
}

// -- key figures ------------------------------------------------------------------------

const KPIS = ["cases_filed", "closed", "closure_rate", "on_time_rate", "satisfaction_rate",
  "on_the_spot_share", "open_now", "overdue_now"];

function drawKpis(summary) {
  const box = document.getElementById("kpis");
  box.replaceChildren(...KPIS.map((key) => {
    const raw = summary[key];
    const value = key.endsWith("_rate") || key.endsWith("_share") ? pct(raw) : String(raw ?? "–");
    return el("div", { class: `kpi${key === "overdue_now" && raw > 0 ? " bad" : ""}`,
      dataset: { kpi: key } },
    el("span", { class: "kpi-value" }, value),
    el("span", { class: "kpi-label" }, tr(`dashboard.fig.${key}`)));
  }));
  document.getElementById("period-label").textContent = `${summary.from} – ${summary.to}`;
}

// -- charts -------------------------------------------------------------------------------

function drawDaily(days) {
  chart("daily").setOption({
    tooltip: tooltip({ trigger: "axis" }),
    legend: { top: 0 },
    grid: { left: 40, right: 16, top: 32, bottom: 40 },
    xAxis: { type: "category", data: days.map((d) => d.date.slice(5)) },
    yAxis: { type: "value", minInterval: 1 },
    series: [
      { name: tr("dashboard.col.filed"), type: "bar", data: days.map((d) => d.filed),
        itemStyle: { color: "#3182bd" } },
      { name: tr("dashboard.col.closed"), type: "line", data: days.map((d) => d.closed),
        itemStyle: { color: "#31a354" } },
    ],
  }, true);
}

const SLIVER = 0.02; // big classes under 2% share one "other" slice: labels stay legible

function drawCategories(rows) {
  if (!rows.length) return empty("categories");
  const shown = rows.filter((r, i) => i === 0 || r.share >= SLIVER);
  const rest = rows.slice(shown.length).reduce((sum, r) => sum + r.cases, 0);
  const data = shown.map((r) => ({ name: r.big_class, value: r.cases }));
  if (rest) data.push({ name: tr("dashboard.other"), value: rest });
  chart("categories").setOption({
    tooltip: tooltip({ trigger: "item", formatter: "{b}: {c} ({d}%)" }),
    legend: { type: "scroll", bottom: 0 },
    series: [{
      type: "pie", radius: ["35%", "65%"], center: ["50%", "45%"],
      label: { formatter: "{b}\n{d}%" },
      data,
    }],
  }, true);
}

function drawItems(rows) {
  if (!rows.length) return empty("items");
  const top = rows.slice(0, TOP_ITEMS).reverse();
  chart("items").setOption({
    tooltip: tooltip({ trigger: "axis" }),
    grid: { left: 120, right: 40, top: 8, bottom: 24 },
    xAxis: { type: "value", minInterval: 1 },
    yAxis: { type: "category", data: top.map((r) => r.item) },
    series: [{ type: "bar", data: top.map((r) => r.cases), label: { show: true, position: "right" },
      itemStyle: { color: "#6baed6" } }],
  }, true);
}

function drawLevels(summary) {
  if (!summary.closed) return empty("levels");
  const levels = ["grid", "street", "district"];
  chart("levels").setOption({
    tooltip: tooltip({ trigger: "item", formatter: "{b}: {d}%" }),
    legend: { bottom: 0 },
    series: [{
      type: "pie", radius: "60%", center: ["50%", "45%"],
      label: { formatter: "{b}\n{d}%" },
      data: levels.map((lv) => ({ name: tr(`dashboard.level.${lv}`),
        value: Math.round((summary.solved_at[lv] ?? 0) * summary.closed) })),
    }],
  }, true);
}

function drawDepartments(rows) {
  const ranked = rows.filter((r) => r.on_time_rate !== null).slice(0, TOP_DEPARTMENTS).reverse();
  if (!ranked.length) return empty("departments");
  chart("departments").setOption({
    tooltip: tooltip({ trigger: "axis" }),
    grid: { left: 150, right: 48, top: 8, bottom: 24 },
    xAxis: { type: "value", max: 100, axisLabel: { formatter: "{value}%" } },
    yAxis: { type: "category", data: ranked.map((r) => `${r.rank}. ${r.department}`) },
    series: [{ type: "bar", data: ranked.map((r) => +(r.on_time_rate * 100).toFixed(1)),
      label: { show: true, position: "right", formatter: "{c}%" },
      itemStyle: { color: "#31a354" } }],
  }, true);
}

function drawOverdue(cases) {
  const body = document.getElementById("overdue-body");
  body.replaceChildren(...cases.map((c) => el("tr", { dataset: { number: c.number } },
    el("td", {}, el("a", { href: `/console/cases/${encodeURIComponent(c.number)}` }, c.number)),
    el("td", {}, c.item), el("td", {}, c.grid), el("td", {}, c.department),
    el("td", {}, c.status_label), el("td", {}, c.due_local),
    el("td", { class: "num bad" }, String(c.hours_overdue)))));
  document.getElementById("overdue-empty").hidden = cases.length > 0;
}

// -- the map ------------------------------------------------------------------------------

let map = null;
let gridLayer = null;
let streetLayer = null;
let labelLayer = null;
let pointLayer = null;
let fitted = false;
const LABEL_ZOOM = 13; // grid names show from this zoom on (below it they would overlap)

function makeMap() {
  const tiles = mapBox.dataset.tiles;
  map = L.map(mapBox, { attributionControl: Boolean(tiles), zoomSnap: 0.25,
    preferCanvas: false, ...mapMotion() });
  if (tiles) {
    // Tiles must be WGS-84 web-mercator ones (OpenStreetMap style): cases and grids are
    // stored in WGS-84, and GCJ-02 tiles (most Chinese providers) would sit ~500 m off.
    L.tileLayer(tiles, { maxZoom: 19 }).addTo(map);
  }
  mapBox.dataset.tilesOn = tiles ? "1" : "0";
  // Panes keep the layers in order whatever is redrawn: grids, then street borders, then
  // the grid names, then the case points on top.
  map.createPane("streets").style.zIndex = "420";
  map.createPane("points").style.zIndex = "440";
  map.createPane("patrols").style.zIndex = "430";
  map.on("zoomend", showLabels);
  loadStreets();
  loadPatrols();
}

// -- patrol tracks (巡查轨迹): today's, in the account's area; staff only ------------------

const patrolsBox = document.getElementById("map-patrols");
let patrolLayer = null;

async function loadPatrols() {
  try {
    const data = await api("/console/dashboard/patrols.json");
    patrolLayer = L.layerGroup(data.patrols.filter((p) => p.points.length).map((p) =>
      L.polyline(p.points, { pane: "patrols", color: "#2f855a", weight: 3, opacity: 0.85,
        className: "patrol-track" })
        .bindPopup(el("div", {}, el("strong", {}, p.worker), el("br"),
          tr("dashboard.map.patrol_line", { km: p.km, coverage: pct(p.coverage) })))));
    if (patrolsBox.checked) patrolLayer.addTo(map);
    mapBox.dataset.patrols = String(data.patrols.length);
  } catch (error) {
    mapBox.dataset.patrols = "0"; // the rest of the map still shows
  }
}

patrolsBox.addEventListener("change", () => {
  if (!patrolLayer) return;
  if (patrolsBox.checked) patrolLayer.addTo(map); else patrolLayer.remove();
});

async function loadStreets() {
  try {
    const streets = await api("/console/dashboard/api/streets.geojson");
    streetLayer = L.geoJSON(streets, { pane: "streets", interactive: false,
      style: { color: "#222", weight: 2.5, opacity: 0.9, fill: false, dashArray: "6 3",
        className: "street-border" } }).addTo(map);
    mapBox.dataset.streets = String(streets.features.length);
  } catch (error) {
    mapBox.dataset.streets = "0"; // the grids and points still show
  }
}

function showLabels() {
  if (!labelLayer) return;
  if (map.getZoom() >= LABEL_ZOOM) labelLayer.addTo(map); else labelLayer.remove();
}

// Colour classes: open-case counts in up to six integer steps from 1 to the busiest grid;
// overdue rates in six equal steps of (0, 100%]. Zero is always the "none" colour.
function classes(by, max) {
  if (by === "overdue_rate") {
    return REDS.map((colour, i) => ({ low: i / REDS.length, colour,
      label: i === 0 ? ">0%" : `≥${pct(i / REDS.length)}` }));
  }
  const steps = Math.max(1, Math.min(BLUES.length, max));
  const palette = BLUES.slice(BLUES.length - steps);
  return palette.map((colour, i) => {
    const low = 1 + Math.floor((i * max) / steps);
    return { low, colour, label: `≥${low}` };
  });
}

function colourOf(value, bins) {
  if (!value) return NONE_COLOUR;
  let colour = bins[0].colour;
  for (const bin of bins) if (value >= bin.low) colour = bin.colour;
  return colour;
}

function gridStyle(props, by, bins) {
  const value = by === "overdue_rate" ? props.overdue_rate : props.open;
  return { color: "#555", weight: 1, fillColor: colourOf(value, bins), fillOpacity: 0.75 };
}

function gridLabel(props) {
  return el("div", {},
    el("strong", {}, props.name), el("br"),
    `${tr("dashboard.map.open")}: ${props.open}  ·  ${tr("dashboard.col.overdue")}: ${props.overdue}`,
    el("br"), `${tr("dashboard.map.overdue_rate")}: ${pct(props.overdue_rate)}`);
}

function drawLegend(bins) {
  const legend = document.getElementById("map-legend");
  legend.replaceChildren(
    el("span", { class: "stop" }, el("i", { class: "swatch none" }), tr("dashboard.map.legend_none")),
    ...bins.map((bin) => el("span", { class: "stop" },
      el("i", { class: "swatch", dataset: { colour: bin.colour } }), bin.label)));
  // Swatch colours through the CSSOM: the CSP allows no inline style attributes.
  for (const swatch of legend.querySelectorAll("i[data-colour]")) {
    swatch.style.background = swatch.dataset.colour;
  }
}

function drawMap(geojson, points) {
  if (!map) makeMap();
  const by = colourSelect.value;
  const max = Math.max(0, ...geojson.features.map((f) => f.properties.open));
  const bins = classes(by, max);
  if (gridLayer) gridLayer.remove();
  gridLayer = L.geoJSON(geojson, {
    style: (feature) => gridStyle(feature.properties, by, bins),
    onEachFeature: (feature, layer) => {
      layer.bindTooltip(gridLabel(feature.properties), { sticky: true });
    },
  }).addTo(map);
  mapBox.dataset.grids = String(geojson.features.length);
  if (labelLayer) labelLayer.remove();
  labelLayer = L.layerGroup(geojson.features.map((f) => L.tooltip({ permanent: true,
    direction: "center", className: "grid-label", interactive: false })
    .setLatLng(L.geoJSON(f).getBounds().getCenter()).setContent(f.properties.name)));
  if (pointLayer) pointLayer.remove();
  // Open cases orange with a dark ring: they stay visible on the darkest blue grid.
  pointLayer = L.layerGroup(points.map((p) => L.circleMarker([p.lat, p.lon], {
    pane: "points", radius: 5, weight: 1.5, color: "#222", fillOpacity: 1,
    fillColor: p.overdue ? "#d7301f" : "#ff9f1c", className: "case-point",
  }).bindPopup(el("div", {},
    el("a", { href: `/console/cases/${encodeURIComponent(p.number)}` }, p.number), el("br"),
    p.item, el("br"), p.status_label))));
  if (pointsBox.checked) pointLayer.addTo(map);
  mapBox.dataset.points = String(points.length);
  if (!fitted && geojson.features.length) {
    map.fitBounds(gridLayer.getBounds(), { padding: [8, 8] });
    fitted = true;
  }
  showLabels();
  drawLegend(bins);
}

// -- hot spots (热点) ------------------------------------------------------------------------

let hotspotLayer = null;

const day = (text) => text.slice(0, 10);

function drawHotspots(spots) {
  const body = document.getElementById("hotspots-body");
  body.replaceChildren(...spots.map((s) => {
    const parts = Object.fromEntries(Object.entries(s.heat_parts)
      .map(([name, part]) => [name, part.value ?? "–"]));
    const members = el("details", {}, el("summary", {}, String(s.members.length)),
      ...s.members.map((n) => el("a", { href: `/console/cases/${encodeURIComponent(n)}`,
        class: "member" }, n)));
    return el("tr", { dataset: { rank: String(s.rank) } },
      el("td", { class: "num" }, String(s.rank)),
      el("td", { class: "num", title: tr("dashboard.hotspots.parts", parts) }, s.heat.toFixed(1)),
      el("td", {}, s.description), el("td", {}, s.place || s.grid.name),
      el("td", {}, s.item_label), el("td", {}, members),
      el("td", {}, `${day(s.first)} – ${day(s.last)}`),
      el("td", {}, el("button", { type: "button", class: "to-case",
        dataset: { members: JSON.stringify(s.members) } }, tr("dashboard.hotspots.to_case"))));
  }));
  document.getElementById("hotspots-empty").hidden = spots.length > 0;
  document.getElementById("hotspots").dataset.count = String(spots.length);
  if (!map) return;
  if (hotspotLayer) hotspotLayer.remove();
  // Numbered badges (HTML markers, not SVG paths): the rank, sized by the spot's cases.
  hotspotLayer = L.layerGroup(spots.filter((s) => s.point).map((s) => L.marker(
    [s.point.lat, s.point.lon], { icon: L.divIcon({ className: "hotspot-marker",
      html: String(s.rank), iconSize: [24, 24] }), title: s.description, keyboard: false },
  ).bindPopup(el("div", {}, el("strong", {}, `${tr("dashboard.chart.hotspots")} #${s.rank}`),
    el("br"), s.description, el("br"), `${s.members.length} · ${s.item_label}`))));
  if (hotspotsBox.checked) hotspotLayer.addTo(map);
}

// 未诉先办: one case for the whole hot spot; the server finds the spot again by its members.
async function hotspotToCase(button) {
  const message = document.getElementById("hotspots-message");
  button.disabled = true;
  try {
    const made = await api("/console/dashboard/hotspots/case", { method: "POST",
      body: { period: periodSelect.value, members: JSON.parse(button.dataset.members) } });
    message.replaceChildren(el("a", { href: made.url }, made.message));
    message.hidden = false;
  } catch (error) {
    show(message, error.message || tr("dashboard.load_failed"));
    button.disabled = false;
  }
}

document.getElementById("hotspots-body").addEventListener("click", (event) => {
  const button = event.target.closest("button.to-case");
  if (button) hotspotToCase(button);
});

// The grouping is CPU work on the server: at most every 5 minutes, or when the period changes.
const HOTSPOT_GAP_MS = 300_000;
let hotspotsFor = "";
let hotspotsAt = 0;

async function loadHotspots() {
  if (hotspotsFor === periodSelect.value && Date.now() - hotspotsAt < HOTSPOT_GAP_MS) return;
  hotspotsFor = periodSelect.value;
  hotspotsAt = Date.now();
  try {
    const data = await api("/console/dashboard/hotspots.json?period="
      + encodeURIComponent(periodSelect.value));
    drawHotspots(data.hotspots);
  } catch (error) {
    show(errorBox, error.status === 400 ? error.message : tr("dashboard.load_failed"));
  }
}

// -- appraisal (考核) -------------------------------------------------------------------------

const PARTS = ["discovery", "on_spot", "on_time", "closure", "satisfaction", "urges", "coverage"];
const RANK_SHOWN = 5; // the best and the worst five of the chosen unit
const appraisalUnit = document.getElementById("appraisal-unit");
let appraisal = null;

// Discovery is reports per worker-day and urges are per case; the other parts are shares.
const PER_UNIT = new Set(["discovery", "urges"]);

function partCell(name, part) {
  if (part.score === null) return el("td", { class: "num muted" }, "–");
  const value = PER_UNIT.has(name) ? part.value.toFixed(2) : pct(part.value);
  return el("td", { class: "num", dataset: { part: name }, title: tr(
    "dashboard.appraisal.part_score", { score: part.score.toFixed(1), value }) },
  part.score.toFixed(0));
}

function fillRanking(end, rows) {
  const table = document.getElementById(`appraisal-${end}`);
  table.tBodies[0].replaceChildren(...rows.map((r) => el("tr", { dataset: { key: r.key } },
    el("td", { class: "num" }, String(r.rank)), el("td", {}, r.name),
    el("td", { class: "num score" }, r.score === null ? "–" : r.score.toFixed(1)),
    ...PARTS.map((p) => partCell(p, r.parts[p])))));
  table.hidden = rows.length === 0;
  const title = document.getElementById(`appraisal-${end}-title`);
  title.textContent = tr(`dashboard.appraisal.${end}`, { n: rows.length });
  title.hidden = rows.length === 0;
}

function drawAppraisal() {
  const units = appraisal.units;
  // An account sees only some units (a department: its own): offer those alone.
  for (const option of appraisalUnit.options) option.hidden = !(option.value in units);
  if (!(appraisalUnit.value in units)) appraisalUnit.value = Object.keys(units)[0];
  const rows = units[appraisalUnit.value] || [];
  const top = rows.slice(0, RANK_SHOWN);
  // The bottom never repeats a row of the top.
  const bottom = rows.slice(Math.max(RANK_SHOWN, rows.length - RANK_SHOWN));
  fillRanking("top", top);
  fillRanking("bottom", bottom);
  document.getElementById("appraisal-empty").hidden = rows.length > 0;
  const box = document.getElementById("appraisal");
  box.dataset.unit = appraisalUnit.value;
  box.dataset.rows = String(rows.length);
}

// Several grouped queries: like the hot spots, at most every 5 minutes or on a new period.
let appraisalFor = "";
let appraisalAt = 0;

async function loadAppraisal() {
  if (appraisalFor === periodSelect.value && Date.now() - appraisalAt < HOTSPOT_GAP_MS) return;
  appraisalFor = periodSelect.value;
  appraisalAt = Date.now();
  try {
    const data = await api("/console/dashboard/api/appraisal.json?period="
      + encodeURIComponent(periodSelect.value));
    appraisal = data.figure;
    drawAppraisal();
  } catch (error) {
    show(errorBox, error.status === 400 ? error.message : tr("dashboard.load_failed"));
  }
}

appraisalUnit.addEventListener("change", () => { if (appraisal) drawAppraisal(); });

// -- loading --------------------------------------------------------------------------------

function keepOutlines(fresh, old) {
  const shapes = new Map(old.features.map((f) => [f.properties.code, f.geometry]));
  for (const feature of fresh.features) feature.geometry = shapes.get(feature.properties.code);
  fresh.features = fresh.features.filter((f) => f.geometry);
}

function draw() {
  const f = figures;
  drawKpis(f.summary);
  drawDaily(f.daily.days);
  drawCategories(f.categories.big_classes);
  drawItems(f.items.items);
  drawLevels(f.summary);
  drawDepartments(f.departments.departments);
  drawOverdue(f.overdue.cases);
  drawMap(f.grids, f.points.points);
}

function exportLinks() {
  const query = `?period=${encodeURIComponent(periodSelect.value)}`;
  for (const link of document.querySelectorAll("a.csv")) {
    link.href = `/console/dashboard/api/${link.dataset.figure}.csv${query}`;
  }
}

let again = false;
async function load() {
  // One request at a time: a burst of events is one refresh, and a change asked for while
  // a request runs (another period, say) is fetched right after it.
  if (loading) {
    again = true;
    return loading;
  }
  loading = (async () => {
    try {
      // The grid outlines never change while the page is open: fetched once, then only
      // their counts (geometry=0) are refreshed.
      const outlines = figures ? "&geometry=0" : "";
      const data = await api("/console/dashboard/api/all.json?period="
        + `${encodeURIComponent(periodSelect.value)}${outlines}`);
      if (figures) keepOutlines(data.figures.grids, figures.grids);
      figures = data.figures;
      draw();
      loadHotspots(); // apart: the figures do not wait for the grouping
      loadAppraisal();
      refreshes += 1;
      document.body.dataset.refreshes = String(refreshes);
      updated.textContent = tr("dashboard.updated", { at: new Date().toLocaleTimeString("zh-CN") });
      show(errorBox, "");
    } catch (error) {
      show(errorBox, error.status === 400 ? error.message : tr("dashboard.load_failed"));
    } finally {
      loading = null;
      lastLoaded = Date.now(); // a failure waits for the next poll too: no retry storm
    }
    if (again) {
      again = false;
      await load();
    }
  })();
  return loading;
}

// -- refreshing -------------------------------------------------------------------------------

let eventTimer = null;
function listen() {
  if (!window.EventSource) return;
  const source = new EventSource("/console/events");
  source.addEventListener("open", () => {
    streamOpen = true;
    live.textContent = tr("dashboard.live");
    live.className = "badge ok";
  });
  source.addEventListener("error", () => {
    streamOpen = false;
    live.textContent = tr("dashboard.polling");
    live.className = "badge muted";
  });
  source.addEventListener("case", () => {
    if (eventTimer) return; // the refresh already planned will show this change too
    const wait = Math.max(EVENT_DEBOUNCE_MS, lastLoaded + MIN_GAP_MS - Date.now());
    eventTimer = setTimeout(() => { eventTimer = null; load(); }, wait);
  });
}

setInterval(() => {
  const due = streamOpen ? LIVE_REFRESH_MS : POLL_MS;
  if (!loading && Date.now() - lastLoaded >= due) load();
}, 5_000);

controls.addEventListener("submit", (event) => { event.preventDefault(); load(); });
periodSelect.addEventListener("change", () => { exportLinks(); load(); });
colourSelect.addEventListener("change", () => { if (figures) drawMap(figures.grids, figures.points.points); });
hotspotsBox.addEventListener("change", () => {
  if (!hotspotLayer) return;
  if (hotspotsBox.checked) hotspotLayer.addTo(map); else hotspotLayer.remove();
});
pointsBox.addEventListener("change", () => {
  if (!pointLayer) return;
  if (pointsBox.checked) pointLayer.addTo(map); else pointLayer.remove();
});
window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.resize()));

exportLinks();
if (typeof echarts === "undefined" || typeof L === "undefined") {
  // /console/vendor answered 503: the npm packages are not installed on this server.
  show(errorBox, tr("dashboard.vendor_missing", { file: "frontend/node_modules" }));
} else {
  load().then(listen);
}
