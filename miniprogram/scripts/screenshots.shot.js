// The README's screenshots: each page rendered by miniprogram-simulate (its WXML and WXSS, the
// app's shared WXSS, a title bar and the tab bar around it) to an HTML file, photographed by
// headless chromium. Run: npm run screenshots  (writes docs/miniprogram/*.png).
// 1 rpx is 1 px here (as miniprogram-simulate renders it): a 750 px wide page is a phone at 2x.
const fs = require('fs');
const path = require('path');
const os = require('os');
const { execFileSync } = require('child_process');
const h = require('../tests/helpers');
const api = require('../utils/api');

jest.mock('../config.js', () => ({ ...jest.requireActual('../config.js'),
  subscribeTemplateId: 'SUB-status' }));

const OUT = path.resolve(h.ROOT, '..', 'docs', 'miniprogram');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PHOTO = `data:image/svg+xml;utf8,${encodeURIComponent(
  '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200"><rect width="200" height="200" fill="#8d9aa5"/>'
  + '<circle cx="100" cy="110" r="52" fill="#3b4650"/><rect y="150" width="200" height="50" fill="#6d7a85"/></svg>')}`;
// A handler's after-photo: the lamp lit again.
const AFTER = `data:image/svg+xml;utf8,${encodeURIComponent(
  '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200"><rect width="200" height="200" fill="#2c3e50"/>'
  + '<rect x="94" y="60" width="12" height="140" fill="#95a5a6"/><circle cx="100" cy="55" r="26" fill="#f9e79f"/>'
  + '<circle cx="100" cy="55" r="60" fill="#f9e79f" opacity="0.25"/></svg>')}`;

// Each page's and component's JS must run at its first load here: a fresh module registry
// (several pages in one file; the unit tests load one page per file).
function render(rel) {
  let comp;
  jest.isolateModules(() => {
    comp = h.render(rel);
  });
  return comp;
}

function appCss() {
  return fs.readFileSync(path.join(h.ROOT, 'app.wxss'), 'utf8')
    .replace(/\bpage\s*\{/g, 'body {').replace(/(\d+)rpx/g, '$1px');
}

function unprefix(text) {
  return text.replace(/\b(?:main|error-tip|case-card|parent-wrapper)--/g, '');
}

function shoot(name, page, title, tab, height = 1400) {
  const styles = Array.from(document.querySelectorAll('style')).map((s) => s.innerHTML).join('\n');
  const tabs = tab ? `<div class="tabbar"><div class="${tab === 'report' ? 'on' : ''}">随手拍</div>`
    + `<div class="${tab === 'mine' ? 'on' : ''}">我的</div></div>` : '';
  const html = `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><style>
    wx-view, wx-image, wx-textarea, wx-input { display: block; }
    wx-text { display: inline; }
    wx-image { background-size: cover; }
    wx-input, wx-textarea { color: #1a1a1a; }
    body { margin: 0; width: 750px; }
    .navbar { background: #1f6f4a; color: #fff; height: 88px; display: flex; align-items: center;
      justify-content: center; font-size: 34px; font-weight: 600; }
    .tabbar { position: fixed; bottom: 0; left: 0; right: 0; height: 100px; display: flex;
      background: #fff; border-top: 1px solid #ddd; font-size: 30px; color: #555; }
    .tabbar div { flex: 1; display: flex; align-items: center; justify-content: center; }
    .tabbar .on { color: #1f6f4a; font-weight: 600; }
    .content { padding-bottom: 120px; }
    ${appCss()}
    ${unprefix(styles)}
  </style></head><body><div class="navbar">${title}</div><div class="content">${unprefix(page.dom.outerHTML)}</div>${tabs}</body></html>`;
  const file = path.join(os.tmpdir(), `gridbot-mp-${name}.html`); // only the PNG is kept
  // (the simulator keeps an image's src out of the DOM: the page's photos, in order)
  const photos = (page.instance.data.photos || []).slice();
  const after = ((page.instance.data.item && page.instance.data.item.timeline) || [])
    .flatMap((step) => step.photos || []).map(() => AFTER);
  fs.writeFileSync(file, html.replace(/<wx-image class="photo-img">/g,
    () => `<wx-image class="photo-img" style="background-image:url('${photos.shift()}')">`)
    .replace(/<wx-image class="step-photo"([^>]*)>/g,
      (all, rest) => `<wx-image class="step-photo"${rest} style="background-image:url('${after.shift()}')">`));
  execFileSync(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars',
    `--screenshot=${path.join(OUT, `${name}.png`)}`, `--window-size=750,${height}`,
    `file://${file}`], { stdio: 'ignore', timeout: 60000 });
}

const CASES = [
  { number: '20261203-0012', status: 'handling', status_label: '处置中', own: true,
    item: { name: '污水井盖' }, created_at: '2026-12-03T02:30:00+00:00' },
  { number: '20261201-0044', status: 'handled', status_label: '已处置', own: true,
    item: { name: '路灯不亮' }, created_at: '2026-12-01T11:05:00+00:00' },
  { number: '20261128-0031', status: 'closed', status_label: '已结案', own: false,
    item: { name: '暴露垃圾' }, created_at: '2026-11-28T00:40:00+00:00' }
];
const TIMELINE = [
  { at: '2026-12-01T11:05:00+00:00', status: 'reported', status_label: '已上报', note: '市民反映问题' },
  { at: '2026-12-01T11:05:01+00:00', status: 'dispatched', status_label: '已派遣', note: '已派遣至责任单位处理' },
  { at: '2026-12-01T12:20:00+00:00', status: 'handling', status_label: '处置中', note: '工作人员已接单处理' },
  { at: '2026-12-02T02:10:00+00:00', status: 'handled', status_label: '已处置', note: '已处置：灯泡已更换，恢复照明',
    photos: [1, 2].map((n) => ({ thumb: `/api/mp/photos/AFTER${n}?size=thumb`, full: `/api/mp/photos/AFTER${n}` })) },
  { at: '2026-12-02T06:00:00+00:00', status: 'closed', status_label: '已结案', note: '已核查，案件办结' }
];

beforeAll(() => {
  fs.mkdirSync(OUT, { recursive: true });
  api.configure({ serverUrl: h.SERVER, sleep: () => Promise.resolve() });
});

test('随手拍: the form, opened from a community QR code', async () => {
  h.makeWx({ 'GET /api/mp/communities/4406040010301': h.ok({ code: '4406040010301',
    name: '同济社区', level: 'community', center: { lat: 23.02, lon: 113.13 } }) });
  const page = render('pages/report/index');
  page.instance.onLoad({ scene: '4406040010301' });
  await h.until(() => h.text(page).includes('同济社区'), 'the community');
  page.instance.setData({ photos: [PHOTO, PHOTO], text: '小区门口的井盖不见了，晚上很危险',
    location: { lat: 23.0215, lon: 113.1214 }, placeLabel: '已选位置：季华五路18号' });
  shoot('report', page, '随手拍', 'report', 2000);
});

test('随手拍: 「是这个吗？」', async () => {
  h.makeWx({ 'GET /api/mp/reports/nearby': h.ok({ cases: [{ number: '20261203-0012',
    status: 'handling', status_label: '处置中', item: { name: '污水井盖' }, distance_m: 35 }] }) });
  const page = render('pages/report/index');
  page.instance.onLoad({});
  await page.instance.checkNearby();
  shoot('report-nearby', page, '随手拍', 'report');
});

test('随手拍: filed', async () => {
  h.makeWx({});
  const page = render('pages/report/index');
  page.instance.onLoad({});
  await page.instance.handleTurn({ step: null, case: { number: '20261203-0015' }, replies: [{
    text: '案件编号：20261203-0015\n网格：同济社区第3网格\n我们会在 2 小时内响应，处理进展会在「我的」里更新。' }] });
  shoot('report-done', page, '随手拍', 'report');
});

test('巡查上报: a worker\'s find filed, offered 即办', async () => {
  h.makeWx({ 'GET /api/mp/worker': h.ok({ worker: { name: '李巡查', role: 'grid_worker',
    area: { code: '440604001030103', name: '同济社区第3网格' } } }) });
  const page = render('pages/report/index');
  page.instance.onLoad({});
  await page.instance.onShow();
  await page.instance.handleTurn({ step: null, case: { number: '20261203-0021' }, replies: [{
    text: '案件编号：20261203-0021\n类别：市容环境 › 非法小广告\n网格：同济社区第3网格（巡查上报）' }] });
  page.instance.setData({ onSpotNote: '小广告已铲除，墙面已清洗' });
  shoot('report-patrol', page, '随手拍', 'report', 1500);
});

test('我的', async () => {
  h.makeWx({ 'GET /api/mp/cases': h.ok({ cases: CASES }) });
  const page = render('pages/mine/index');
  await page.instance.onShow();
  shoot('mine', page, '我的', 'mine');
});

test('案件详情 with the rating', async () => {
  h.makeWx({ 'GET /api/mp/cases/20261201-0044': h.ok({ number: '20261201-0044',
    status: 'closed', status_label: '已结案', own: true,
    item: { name: '路灯不亮', label: '公用设施 › 路灯' }, address: '季华五路18号',
    text: '门口路灯不亮，晚上很黑', photos: 1, rating: null, timeline: TIMELINE }) });
  const page = render('pages/case/index');
  await page.instance.onLoad({ number: '20261201-0044' });
  page.instance.setData({ score: 4 });
  shoot('case', page, '案件详情', '', 2650);
});

test('a failed request: said plainly, with retry', async () => {
  h.makeWx({ 'GET /api/mp/cases': () => ({ fail: 'request:fail' }) });
  const page = render('pages/mine/index');
  await page.instance.onShow();
  shoot('error', page, '我的', 'mine');
});
