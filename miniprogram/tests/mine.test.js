// pages/mine (我的): my cases with their status, the followed ones marked, refreshed on
// every visit and by pulling down; empty and failed states say what to do.
const h = require('./helpers');
const api = require('../utils/api');
const messages = require('../utils/messages');

const CASES = [
  { number: '20261203-0002', status: 'handling', status_label: '处置中', own: true,
    item: { name: '污水井盖' }, created_at: '2026-12-03T02:30:00+00:00' },
  { number: '20261202-0007', status: 'closed', status_label: '已结案', own: false,
    item: { name: '雨水井盖' }, created_at: '2026-12-02T01:00:00+00:00' }
];

beforeEach(() => {
  api.configure({ serverUrl: h.SERVER, sleep: () => Promise.resolve() });
});

test('lists my cases with status, time and the ones I follow; a tap opens one', async () => {
  const wx = h.makeWx({ 'GET /api/mp/cases': h.ok({ cases: CASES }) });
  const page = h.render('pages/mine/index');
  page.instance.onShow();
  await h.until(() => h.all(page, '.case').length === 2, 'two cards');
  const cards = h.all(page, '.case').map((c) => c.dom.textContent.replace(/\s+/g, ' ').trim());
  expect(cards[0]).toContain('污水井盖');
  expect(cards[0]).toContain('处置中');
  expect(cards[0]).toContain('12月3日 10:30');
  expect(cards[0]).not.toContain(messages.mine.following);
  expect(cards[1]).toContain('已结案');
  expect(cards[1]).toContain(messages.mine.following);
  h.tap(page, '.case >>> .case-card', 1);
  await h.until(() => wx.navigateTo.mock.calls.length === 1, 'navigation');
  expect(wx.navigateTo).toHaveBeenCalledWith({ url: '/pages/case/index?number=20261202-0007' });
});

test('a status change shows at the next visit or pull-down', async () => {
  let status = ['dispatched', '已派遣'];
  const wx = h.makeWx({ 'GET /api/mp/cases': () => h.ok({ cases: [{ ...CASES[0],
    status: status[0], status_label: status[1] }] })() });
  const page = h.render('pages/mine/index');
  page.instance.onShow();
  await h.until(() => h.text(page).includes('已派遣'), 'dispatched');
  status = ['handled', '已处置'];
  await page.instance.onPullDownRefresh();
  await h.until(() => h.text(page).includes('已处置'), 'handled');
  expect(wx.stopPullDownRefresh).toHaveBeenCalledTimes(1);
  expect(h.text(page)).not.toContain('已派遣');
});

test('no cases yet: says so and leads to 随手拍', async () => {
  const wx = h.makeWx({ 'GET /api/mp/cases': h.ok({ cases: [] }) });
  const page = h.render('pages/mine/index');
  page.instance.onShow();
  await h.until(() => h.text(page).includes(messages.mine.empty), 'empty');
  h.tap(page, '.btn-primary');
  await h.until(() => wx.switchTab.mock.calls.length === 1, 'switch');
  expect(wx.switchTab).toHaveBeenCalledWith({ url: '/pages/report/index' });
});

test('a failed load says why and retries on a tap', async () => {
  h.makeWx({ 'GET /api/mp/cases': (req, n) => (n === 1 ? { status: 503, body: null }
    : h.ok({ cases: CASES })()) });
  const page = h.render('pages/mine/index');
  page.instance.onShow();
  await h.until(() => h.text(page, '#error').includes(messages.errors.server), 'the error');
  expect(h.text(page)).not.toContain(messages.mine.empty); // not mistaken for "no cases"
  h.tap(page, '#error >>> .error-retry');
  await h.until(() => h.all(page, '.case').length === 2, 'the cases');
  expect(h.text(page, '#error')).toBe('');
});
