// pages/case: status and timeline (the handler's note), rating 1–5 with a comment when
// closed, followers see the status only, the subscribe consent inside a tap.
jest.mock('../config.js', () => ({ ...jest.requireActual('../config.js'),
  subscribeTemplateId: 'SUB-status' }));

const h = require('./helpers');
const api = require('../utils/api');
const messages = require('../utils/messages');

const v = messages.caseView;
const TIMELINE = [
  { at: '2026-12-03T01:00:00+00:00', status: 'reported', status_label: '已上报', note: '市民反映问题' },
  { at: '2026-12-03T01:00:01+00:00', status: 'dispatched', status_label: '已派遣', note: '已派给网格' },
  { at: '2026-12-03T03:00:00+00:00', status: 'handled', status_label: '已处置',
    note: '已处置：井盖已经补上' }
];

function detail(extra) {
  return { number: '20261203-0001', status: 'handling', status_label: '处置中', own: true,
    item: { name: '污水井盖', label: '公用设施 › 污水井盖' }, address: '季华五路18号',
    text: '井盖不见了', grid: { name: '同济社区第3网格' }, photos: 1,
    handling_due: '2026-12-05T01:00:00+00:00', rating: null, timeline: TIMELINE, ...extra };
}

beforeEach(() => {
  api.configure({ serverUrl: h.SERVER, sleep: () => Promise.resolve() });
});

function open(routes) {
  const wx = h.makeWx(routes);
  const page = h.render('pages/case/index');
  page.instance.onLoad({ number: '20261203-0001' });
  return { wx, page };
}

test('shows status, what, where, my words and the timeline with the handler\'s note', async () => {
  const { page } = open({ 'GET /api/mp/cases/20261203-0001': h.ok(detail()) });
  await h.until(() => h.text(page).includes('处置中'), 'the case');
  const all = h.text(page);
  ['公用设施 › 污水井盖', '季华五路18号', '井盖不见了', '照片 1 张', '已上报', '已派遣',
    '已处置：井盖已经补上', '12月3日 11:00'].forEach((part) => expect(all).toContain(part));
  expect(h.all(page, '.step')).toHaveLength(3);
  expect(h.all(page, '.star')).toHaveLength(0); // not closed: nothing to rate yet
});

test('the handler\'s after-photos show as thumbnails on 办结; a tap opens them full-size', async () => {
  const photos = [1, 2].map((n) => ({ thumb: `/api/mp/photos/SIGNED${n}?size=thumb`,
    full: `/api/mp/photos/SIGNED${n}` }));
  const timeline = TIMELINE.map((e) => (e.status === 'handled' ? { ...e, photos } : e));
  const { wx, page } = open({ 'GET /api/mp/cases/20261203-0001': h.ok(detail({ timeline })) });
  await h.until(() => h.all(page, '.step-photo').length === 2, 'two thumbnails');
  expect(page.instance.data.item.timeline.map((step) => step.photos.length)).toEqual([0, 0, 2]);
  expect(h.all(page, '.step-photos')).toHaveLength(1); // one row, on 办结
  // (the simulator keeps no <image> attributes: what the template binds is checked in data)
  expect(page.instance.data.item.timeline[2].photos).toEqual([1, 2].map((n) => ({
    thumb: `${h.SERVER}/api/mp/photos/SIGNED${n}?size=thumb`,
    full: `${h.SERVER}/api/mp/photos/SIGNED${n}`,
    label: `处理后照片 ${n}，点按查看大图` })));
  expect(h.all(page, '.step-photo').map((img) => [img.dom.dataset.step, img.dom.dataset.index]))
    .toEqual([['2', '0'], ['2', '1']]);
  h.tap(page, '.step-photo', 1);
  await h.until(() => wx.previewImage.mock.calls.length === 1, 'the preview');
  expect(wx.previewImage.mock.calls[0][0]).toMatchObject({
    current: `${h.SERVER}/api/mp/photos/SIGNED2`,
    urls: [`${h.SERVER}/api/mp/photos/SIGNED1`, `${h.SERVER}/api/mp/photos/SIGNED2`] });
  // A photo that cannot be opened is said, never a silent tap.
  wx.previewImage.mock.calls[0][0].fail({ errMsg: 'previewImage:fail' });
  await h.until(() => h.text(page, '#error').includes(v.photoFailed), 'the photo error');
});

test('no photos on a step: no thumbnails (the other steps stay plain)', async () => {
  const { page } = open({ 'GET /api/mp/cases/20261203-0001': h.ok(detail()) });
  await h.until(() => h.all(page, '.step').length === 3, 'the timeline');
  expect(h.all(page, '.step-photo')).toHaveLength(0);
  expect(h.all(page, '.step-photos')).toHaveLength(0);
});

test('an open case offers the update notice; consent is asked in the tap and told', async () => {
  const { wx, page } = open({ 'GET /api/mp/cases/20261203-0001': h.ok(detail()),
    'POST /api/mp/subscriptions': h.ok({ grants: 1 }) });
  await h.until(() => h.all(page, '.notify').length === 1, 'the notice button');
  wx.requestSubscribeMessage.mockImplementation((o) => setTimeout(() =>
    o.success({ 'SUB-status': 'accept' }), 0));
  h.tap(page, '.notify');
  await h.until(() => wx.showToast.mock.calls.length === 1, 'the toast');
  expect(wx.requestSubscribeMessage.mock.calls[0][0].tmplIds).toEqual(['SUB-status']);
  expect(wx.calls.find((c) => c.key === 'POST /api/mp/subscriptions').data)
    .toEqual({ template_id: 'SUB-status', accepted: 1 });
  expect(wx.showToast.mock.calls[0][0].title).toBe(messages.subscribe.accepted);

  wx.requestSubscribeMessage.mockImplementation((o) => setTimeout(() =>
    o.success({ 'SUB-status': 'reject' }), 0));
  h.tap(page, '.notify');
  await h.until(() => wx.showToast.mock.calls.length === 2, 'the second toast');
  expect(wx.calls.filter((c) => c.key === 'POST /api/mp/subscriptions')).toHaveLength(1);
  expect(wx.showToast.mock.calls[1][0].title).toBe(messages.subscribe.rejected);
});

test('a closed case of mine is rated 1–5 with a comment', async () => {
  let rated = null;
  const { wx, page } = open({
    'GET /api/mp/cases/20261203-0001': () => h.ok(detail({ status: 'closed',
      status_label: '已结案', rating: rated }))(),
    'POST /api/mp/cases/20261203-0001/rating': (req) => {
      rated = req.data.score;
      return h.ok(detail({ status: 'closed', status_label: '已结案', rating: rated }))();
    }
  });
  await h.until(() => h.all(page, '.star').length === 5, 'five stars');
  expect(h.all(page, '.notify')).toHaveLength(0); // closed: no more updates to ask for
  h.tap(page, '.rate-submit');
  await h.until(() => h.text(page, '#error').includes(v.rateChoose), 'choose first');
  h.tap(page, '.star', 3);
  await h.until(() => page.instance.data.score === 4, 'four');
  expect(h.all(page, '.star-on')).toHaveLength(4);
  h.input(page, '.comment', '修得很快');
  h.tap(page, '.rate-submit');
  await h.until(() => h.text(page).includes(v.thanks), 'thanks');
  expect(wx.calls.find((c) => c.key === 'POST /api/mp/cases/20261203-0001/rating').data)
    .toEqual({ score: 4, note: '修得很快' });
  expect(h.all(page, '.star')).toHaveLength(0);
});

test('a low score is answered with the reopening', async () => {
  const { page } = open({
    'GET /api/mp/cases/20261203-0001': h.ok(detail({ status: 'closed', status_label: '已结案' })),
    'POST /api/mp/cases/20261203-0001/rating': h.ok(detail({ status: 'dispatched', rating: 1 }))
  });
  await h.until(() => h.all(page, '.star').length === 5, 'stars');
  h.tap(page, '.star', 0);
  await h.until(() => page.instance.data.score === 1, 'one');
  h.tap(page, '.rate-submit');
  await h.until(() => h.text(page).includes(v.lowScore), 'the reopening');
});

test('a refused rating is said, and can be sent again', async () => {
  const { page } = open({
    'GET /api/mp/cases/20261203-0001': h.ok(detail({ status: 'closed', status_label: '已结案' })),
    'POST /api/mp/cases/20261203-0001/rating': (req, n) => (n === 1
      ? { status: 409, body: { error: 'only a closed case not yet rated can be rated' } }
      : h.ok(detail({ status: 'closed', rating: 5 }))())
  });
  await h.until(() => h.all(page, '.star').length === 5, 'stars');
  h.tap(page, '.star', 4);
  await h.until(() => page.instance.data.score === 5, 'five');
  h.tap(page, '.rate-submit');
  await h.until(() => h.text(page, '#error').includes(messages.errors.conflict), 'the conflict');
  h.tap(page, '#error >>> .error-retry');
  await h.until(() => h.text(page).includes(v.thanks), 'thanks');
});

test('a followed case: the status and timeline, no rating, no one else\'s words', async () => {
  const { page } = open({ 'GET /api/mp/cases/20261203-0001': h.ok(detail({ own: false,
    text: null, address: '同济社区第3网格', status: 'closed', status_label: '已结案', photos: 0 })) });
  await h.until(() => h.text(page).includes(v.followerNote), 'the follower note');
  expect(h.all(page, '.star')).toHaveLength(0);
  expect(h.text(page)).not.toContain(v.words);
});

test('a failed load shows the error, never a blank page, and retries', async () => {
  const { page } = open({ 'GET /api/mp/cases/20261203-0001': (req, n) => (n === 1
    ? { fail: 'request:fail' } : h.ok(detail())()) });
  await h.until(() => h.text(page, '#error').includes(messages.errors.network), 'the error');
  h.tap(page, '#error >>> .error-retry');
  await h.until(() => h.text(page).includes('处置中'), 'the case');
});

test('pull-down refresh reloads the case', async () => {
  let status = '处置中';
  const { wx, page } = open({ 'GET /api/mp/cases/20261203-0001': () => h.ok(detail({
    status_label: status }))() });
  await h.until(() => h.text(page).includes('处置中'), 'first');
  status = '已处置';
  await page.instance.onPullDownRefresh();
  expect(h.text(page)).toContain('已处置');
  expect(wx.stopPullDownRefresh).toHaveBeenCalled();
});
