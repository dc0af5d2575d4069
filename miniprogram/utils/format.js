// Small helpers the pages share: filling message templates, dates in local words.

function fill(template, values) {
  return String(template).replace(/\{(\w+)\}/g, (whole, key) =>
    values && values[key] !== undefined && values[key] !== null ? String(values[key]) : whole);
}

function pad(n) {
  return n < 10 ? `0${n}` : String(n);
}

// "2026-12-03T03:05:00+00:00" -> "12月3日 11:05" in the phone's time zone (China: UTC+8).
function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return `${d.getMonth() + 1}月${d.getDate()}日 ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

module.exports = { fill, when };
