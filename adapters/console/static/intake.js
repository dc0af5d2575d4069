// Hotline intake: suggestions as the operator types, then confirm or correct and file.
import { api, debounce, el, show, tr } from "./console.js";

const form = document.getElementById("intake-form");
const textBox = document.getElementById("call-text");
const address = document.getElementById("address");
const phone = document.getElementById("caller-phone");
const list = document.getElementById("suggestion-list");
const status = document.getElementById("suggest-status");
const place = document.getElementById("place");
const itemCode = document.getElementById("item-code");
const errorBox = document.getElementById("intake-error");
const doneBox = document.getElementById("intake-done");

let suggestedCode = null; // the model's first choice, stored with the confirmation
let chosenGrid = "";
let requestSeq = 0;

function renderPlace(location) {
  place.replaceChildren();
  chosenGrid = "";
  if (!location || location.status === "none") {
    place.textContent = tr("console.place_unknown");
    place.className = "place muted";
    return;
  }
  if (location.status === "found") {
    chosenGrid = location.grid.code;
    place.textContent = tr("console.place_found", {
      address: location.address, grid: location.grid.name, code: location.grid.code });
    place.className = "place ok";
    return;
  }
  if (location.status === "ambiguous") {
    place.className = "place warn";
    place.append(tr("console.place_choose") + " ");
    for (const choice of location.choices) {
      const button = el("button", { type: "button", class: "chip", dataset: { grid: choice.grid.code } },
        `${choice.address} · ${choice.grid.name}`);
      button.addEventListener("click", () => {
        chosenGrid = choice.grid.code;
        for (const b of place.querySelectorAll(".chip")) b.classList.toggle("on", b === button);
      });
      place.append(button);
    }
    return;
  }
  place.className = "place warn";
  place.textContent = tr("console.place_outside", { named: location.named || "" });
}

function renderSuggestions(answer) {
  list.replaceChildren();
  suggestedCode = answer.items.length ? answer.items[0].code : null;
  answer.items.forEach((item, index) => {
    const id = `suggestion-${index}`;
    const radio = el("input", { type: "radio", name: "choice", id, value: item.code });
    if (index === 0) radio.checked = true;
    radio.addEventListener("change", () => { itemCode.value = ""; });
    const label = el("label", { for: id },
      el("strong", {}, item.label),
      el("span", { class: "muted" }, ` ${item.code} · ${Math.round(item.confidence * 100)}%`),
      el("div", { class: "meta" },
        tr("console.suggest_meta", { department: item.department, limits: item.limits, due: item.due })));
    list.append(el("li", { class: "suggestion" }, radio, label));
  });
  status.textContent = answer.sure ? tr("console.suggest_sure") : (answer.notice || tr("console.suggest_unsure"));
  renderPlace(answer.location);
}

const suggest = debounce(async () => {
  const text = textBox.value.trim();
  if (text.length < 2) return;
  const seq = ++requestSeq;
  status.textContent = tr("console.suggest_loading");
  try {
    const answer = await api("/console/api/suggest", {
      method: "POST", body: { text, address: address.value } });
    if (seq === requestSeq) renderSuggestions(answer); // a slower older answer is dropped
  } catch (error) {
    if (seq === requestSeq) { list.replaceChildren(); status.textContent = error.message; }
  }
}, 300);

textBox.addEventListener("input", suggest);
address.addEventListener("input", suggest);

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  show(errorBox, "");
  show(doneBox, "");
  const picked = form.querySelector('input[name="choice"]:checked');
  const code = itemCode.value.trim() || (picked ? picked.value : "");
  if (!code) { show(errorBox, tr("console.pick_item")); return; }
  const button = document.getElementById("file-case");
  button.disabled = true;
  try {
    const result = await api("/console/api/intake", { method: "POST", body: {
      text: textBox.value, phone: phone.value, address: address.value,
      sms_consent: document.getElementById("sms-consent").checked,
      item_code: code, suggested_code: suggestedCode, grid_code: chosenGrid } });
    doneBox.replaceChildren(result.message + " ",
      el("a", { href: result.url, id: "filed-link" }, tr("console.open_case")));
    doneBox.hidden = false;
    form.reset();
    list.replaceChildren();
    status.textContent = tr("console.suggest_wait");
    renderPlace(null);
    suggestedCode = null;
  } catch (error) {
    show(errorBox, error.message);
  } finally {
    button.disabled = false;
  }
});
