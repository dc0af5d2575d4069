// Worker mode in 我的 (pages/mine): a grid worker binds their work identity with the one-time
// code an administrator gives them, and sees it there afterwards.
const h = require('./helpers');
const api = require('../utils/api');
const messages = require('../utils/messages');

const WORKER = { name: '李巡查', role: 'grid_worker', area: { code: '440604001030103',
  name: '同济社区第3网格' } };

beforeEach(() => {
  api.configure({ serverUrl: h.SERVER, sleep: () => Promise.resolve(), retryDelaysMs: [0] });
});

test('我的: a citizen sees the bind link; a wrong code is said; the right one binds', async () => {
  const wx = h.makeWx({
    'GET /api/mp/cases': h.ok({ cases: [] }),
    'GET /api/mp/worker': h.ok({ worker: null }),
    'POST /api/mp/worker/bind': (req) => (req.data.code === 'A1B2C3D4'
      ? h.ok({ worker: WORKER })()
      : { status: 404, body: { error: '绑定码不对，或已用过、已过期。请向管理员要一个新的绑定码。' } })
  });
  const page = h.render('pages/mine/index');
  page.instance.onShow();
  await h.until(() => h.all(page, '.worker-link').length === 1, 'the bind link');
  h.tap(page, '.worker-link');
  await h.until(() => h.all(page, '.bind-code').length === 1, 'the code field');
  h.input(page, '.bind-code', 'WRONG');
  h.tap(page, '.bind-submit');
  await h.until(() => h.text(page, '#error').includes('绑定码不对'), 'the refusal');
  h.input(page, '.bind-code', ' A1B2C3D4 ');
  h.tap(page, '.bind-submit');
  await h.until(() => h.all(page, '.worker').length === 1, 'the identity');
  expect(h.text(page, '.worker')).toContain('李巡查（同济社区第3网格）');
  expect(wx.calls.filter((c) => c.key === 'POST /api/mp/worker/bind').map((c) => c.data))
    .toEqual([{ code: 'WRONG' }, { code: 'A1B2C3D4' }]);
  expect(wx.showToast.mock.calls[0][0].title).toBe(messages.mine.bound);
  expect(h.all(page, '.worker-link')).toHaveLength(0);
});

test('我的: a worker sees their identity; an unknown answer shows neither', async () => {
  h.makeWx({ 'GET /api/mp/cases': h.ok({ cases: [] }), 'GET /api/mp/worker': h.ok({ worker: WORKER }) });
  const page = h.render('pages/mine/index');
  await page.instance.onShow();
  expect(h.text(page, '.worker')).toContain('李巡查');
  expect(h.all(page, '.worker-link')).toHaveLength(0);
  h.makeWx({ 'GET /api/mp/cases': h.ok({ cases: [] }),
    'GET /api/mp/worker': () => ({ fail: 'request:fail' }) });
  const offline = h.render('pages/mine/index');
  await offline.instance.onShow();
  expect(h.all(offline, '.worker-link')).toHaveLength(0);
  expect(h.all(offline, '.worker')).toHaveLength(0);
});
