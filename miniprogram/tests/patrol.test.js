// Worker mode in 随手拍 (pages/report): for a bound grid worker it is 巡查上报, and a filed
// find can be closed on the spot (即办) with an after-photo and a note.
const h = require('./helpers');
const api = require('../utils/api');
const messages = require('../utils/messages');

const WORKER = { name: '李巡查', role: 'grid_worker', area: { code: '440604001030103',
  name: '同济社区第3网格' } };
const CONFIRM = { step: 'confirm', case: null,
  replies: [{ text: '请确认您要反映的问题：\n类别：市容环境 › 非法小广告', buttons: [] }] };
const FILED = { step: null, replies: [{ text: '已受理（巡查上报）\n案件编号：20261203-0009' }],
  case: { number: '20261203-0009', status: 'dispatched' } };
const ON_SPOT = 'POST /api/mp/worker/cases/20261203-0009/on-spot';

beforeEach(() => {
  api.configure({ serverUrl: h.SERVER, sleep: () => Promise.resolve(), retryDelaysMs: [0] });
});

async function fileFind(routes) {
  const wx = h.makeWx({ 'GET /api/mp/worker': h.ok({ worker: WORKER }),
    'POST /api/mp/reports': h.ok(CONFIRM), 'GET /api/mp/reports/nearby': h.ok({ cases: [] }),
    'POST /api/mp/reports/reply': h.ok(FILED), ...routes });
  const page = h.render('pages/report/index');
  page.instance.onLoad({});
  await page.instance.onShow();
  expect(h.text(page)).toContain('巡查上报：李巡查（同济社区第3网格）');
  wx.getLocation.mockImplementation((o) => setTimeout(() => o.success({ latitude: 23.019,
    longitude: 113.126 }), 0));
  h.tap(page, '.btn-plain', 1); // 用我现在的位置
  await h.until(() => h.text(page).includes(messages.report.placeCurrent), 'the position');
  h.input(page, '.words', '路边墙上贴满了办证小广告');
  h.tap(page, '.submit');
  await h.until(() => h.all(page, '.confirm').length === 1, 'the confirmation');
  h.tap(page, '.confirm');
  await h.until(() => h.all(page, '.on-spot-submit').length === 1, 'the 即办 offer');
  return { wx, page };
}

test('随手拍 as 巡查上报: filed, then closed on the spot with the after-photo and a note', async () => {
  const { wx, page } = await fileFind({ [ON_SPOT]: h.ok({ case: { number: '20261203-0009',
    status: 'handled' } }) });
  expect(h.text(page)).toContain(messages.report.onSpotIntro);
  h.input(page, '.on-spot-note', '小广告已铲除');
  wx.chooseMedia.mockImplementation((o) => setTimeout(() => o.success({
    tempFiles: [{ tempFilePath: 'wxfile://after.jpg' }] }), 0));
  h.tap(page, '.on-spot-submit');
  await h.until(() => h.all(page, '.on-spot-done').length === 1, 'closed on the spot');
  expect(h.text(page, '.on-spot-done')).toBe('已现场办结（即办），案件 20261203-0009 等待核查。');
  const [sent] = wx.calls.filter((c) => c.key === ON_SPOT);
  expect(sent).toMatchObject({ filePath: 'wxfile://after.jpg.small.jpg', name: 'photos',
    formData: { note: '小广告已铲除' } });
  expect(wx.chooseMedia.mock.calls[0][0]).toMatchObject({ count: 1, mediaType: ['image'] });
});

test('即办 refused or cut off: the reason is said and the same photo can be sent again', async () => {
  const { wx, page } = await fileFind({ [ON_SPOT]: (req, n) => (n === 1
    ? { fail: 'uploadFile:fail timeout' } : n === 2 ? { fail: 'uploadFile:fail timeout' }
      : h.ok({ case: { number: '20261203-0009', status: 'handled' } })()) });
  wx.chooseMedia.mockImplementation((o) => setTimeout(() => o.success({
    tempFiles: [{ tempFilePath: 'wxfile://after.jpg' }] }), 0));
  h.tap(page, '.on-spot-submit');
  await h.until(() => h.text(page, '#error').includes('照片上传失败'), 'the failure');
  expect(h.all(page, '.on-spot-submit')).toHaveLength(1); // back where they were
  h.tap(page, '#error >>> .error-retry');
  await h.until(() => h.all(page, '.on-spot-done').length === 1, 'closed on the retry');
  expect(wx.chooseMedia).toHaveBeenCalledTimes(1); // the same photo, not a new one
  expect(wx.calls.filter((c) => c.key === ON_SPOT).every((c) => c.filePath
    === 'wxfile://after.jpg.small.jpg')).toBe(true);
});

test('a citizen gets no 即办 offer after filing', async () => {
  const wx = h.makeWx({ 'GET /api/mp/worker': h.ok({ worker: null }),
    'POST /api/mp/reports': h.ok(FILED) });
  const page = h.render('pages/report/index');
  page.instance.onLoad({ scene: '' });
  await page.instance.onShow();
  expect(h.text(page)).not.toContain('巡查上报');
  wx.getLocation.mockImplementation((o) => setTimeout(() => o.success({ latitude: 23.019,
    longitude: 113.126 }), 0));
  h.tap(page, '.btn-plain', 1);
  await h.until(() => h.text(page).includes(messages.report.placeCurrent), 'the position');
  h.input(page, '.words', '路边墙上贴满了办证小广告');
  h.tap(page, '.submit');
  await h.until(() => h.text(page).includes('案件编号'), 'filed');
  expect(h.all(page, '.on-spot-submit')).toHaveLength(0);
});
