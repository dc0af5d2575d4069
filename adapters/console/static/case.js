// The case page: reveal the caller's phone (audited), take an action.
import { api, mapMotion, show, tr } from "./console.js";

const form = document.getElementById("action-form");
const reveal = document.getElementById("reveal-phone");
const number = (form && form.dataset.number) || location.pathname.split("/").pop();

if (reveal) {
  reveal.addEventListener("click", async () => {
    try {
      const data = await api(`/console/api/cases/${encodeURIComponent(number)}/phone`, { method: "POST" });
      document.getElementById("phone").textContent = data.phone;
      reveal.remove();
    } catch (error) {
      reveal.textContent = error.message;
    }
  });
}

// Which inputs each action reads.
const NEEDS = {
  dispatch: ["dispatch"], merge: ["target"], split: ["attached"],
};

if (form) {
  const action = document.getElementById("action-name");
  const targetField = document.getElementById("target-field");
  // Dispatch picks from the named targets (the grid's name, not its code); merge takes a
  // case number typed in.
  const dispatchField = document.getElementById("dispatch-field");
  const attachedField = document.getElementById("attached-field");
  const errorBox = document.getElementById("action-error");
  const doneBox = document.getElementById("action-done");
  const sync = () => {
    const needs = NEEDS[action.value] || [];
    targetField.hidden = !needs.includes("target");
    dispatchField.hidden = !needs.includes("dispatch");
    attachedField.hidden = !needs.includes("attached");
  };
  action.addEventListener("change", sync);
  sync();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    show(errorBox, "");
    show(doneBox, "");
    const data = new FormData(form);
    const button = document.getElementById("action-submit");
    button.disabled = true;
    try {
      const result = await api(
        `/console/api/cases/${encodeURIComponent(number)}/actions/${encodeURIComponent(action.value)}`,
        { method: "POST", body: {
          reason: data.get("reason") || "",
          target: (action.value === "dispatch" ? data.get("dispatch_target") : data.get("target")) || "",
          attached_id: data.get("attached_id") || null } });
      show(doneBox, result.message);
      // Reload to show the new timeline and the actions the new status allows.
      setTimeout(() => location.assign(`/console/cases/${encodeURIComponent(result.number)}`), 600);
    } catch (error) {
      show(errorBox, error.message);
      button.disabled = false;
    }
  });
}

// 回访: reached or not, the score (only when reached) and a note; the page reloads to show
// it on the timeline.
const callback = document.getElementById("callback-form");
if (callback) {
  const scoreField = document.getElementById("callback-score-field");
  const reachedBox = document.getElementById("callback-reached");
  const errorBox = document.getElementById("callback-error");
  const doneBox = document.getElementById("callback-done");
  const sync = () => { scoreField.hidden = !reachedBox.checked; };
  callback.addEventListener("change", sync);
  sync();
  callback.addEventListener("submit", async (event) => {
    event.preventDefault();
    show(errorBox, "");
    show(doneBox, "");
    const data = new FormData(callback);
    const reached = data.get("reached") === "yes";
    const button = document.getElementById("callback-submit");
    button.disabled = true;
    try {
      const result = await api(`/console/api/cases/${encodeURIComponent(number)}/callback`, {
        method: "POST", body: {
          reached, score: reached && data.get("score") ? Number(data.get("score")) : null,
          note: data.get("note") || "" } });
      show(doneBox, result.message);
      setTimeout(() => location.assign(`/console/cases/${encodeURIComponent(number)}`), 600);
    } catch (error) {
      show(errorBox, error.message);
      button.disabled = false;
    }
  });
}

// The place: a small map with the pin and its grid's outline (Leaflet served locally; no
// tiles unless configured, so it works offline).
const mapBox = document.getElementById("case-map");
if (mapBox && window.L) {
  const L = window.L;
  const lat = Number(mapBox.dataset.lat);
  const lon = Number(mapBox.dataset.lon);
  const map = L.map(mapBox, { attributionControl: false, zoomSnap: 0.25, ...mapMotion() });
  const gridBox = document.getElementById("case-grid");
  const feature = gridBox ? JSON.parse(gridBox.textContent || "null") : null;
  let grid = null;
  if (feature) {
    grid = L.geoJSON(feature, { style: { color: "#2b6cb0", weight: 2, fillColor: "#90cdf4",
      fillOpacity: 0.25 } });
    mapBox.dataset.grid = feature.properties.code;
  }
  // The view first: a permanent tooltip needs a map that knows where it is.
  if (grid) map.fitBounds(grid.getBounds(), { padding: [12, 12] });
  else map.setView([lat, lon], 16);
  if (grid) {
    grid.addTo(map);
    grid.bindTooltip(feature.properties.name, { permanent: true, direction: "center",
      className: "grid-name" }).openTooltip();
  }
  L.circleMarker([lat, lon], { radius: 7, weight: 2, color: "#fff", fillColor: "#d7301f",
    fillOpacity: 1, className: "case-pin" }).addTo(map);
  // A patrol-found case: the track of the patrol it was found on (staff only).
  const trackBox = document.getElementById("case-track");
  const track = trackBox ? JSON.parse(trackBox.textContent || "null") : null;
  if (track && track.points.length) {
    const line = L.polyline(track.points, { color: "#2f855a", weight: 4, opacity: 0.85,
      className: "patrol-track" }).addTo(map);
    map.fitBounds(line.getBounds().extend(grid ? grid.getBounds() : [[lat, lon], [lat, lon]]),
      { padding: [12, 12] });
    mapBox.dataset.track = String(track.points.length);
  }
  mapBox.dataset.ready = "1";
}
