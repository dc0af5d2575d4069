// pages/report (随手拍): the form, photos, place, the dialog's questions, 「是这个吗？」,
// following a nearby case, filing, errors with retry, the community from a QR code.
const h = require('./helpers');
const api = require('../utils/api');
const messages = require('../utils/messages');

const m = messages.report;
const CHOOSE = {
  step: 'choose_item', case: null,
  replies: [{ text: '请选择最接近的类别（回复序号）：\n1. 污水井盖\n2. 雨水井盖\n3. 电力井盖',
    buttons: [{ label: '1. 污水井盖', value: '1' }, { label: '2. 雨水井盖', value: '2' },
      { label: '3. 电力井盖', value: '3' }] }]
};
const CONFIRM = { step: 'confirm', case: null,
  replies: [{ text: '请确认您要反映的问题：\n类别：公用设施 › 雨水井盖', buttons: [] }] };
const FILED = { step: null, replies: [{ text: '已受理，谢谢您的反映！\n案件编号：20261203-0001' }],
  case: { number: '20261203-0001', status: 'dispatched' } };
const NEARBY = { radius_m: 300, cases: [{ number: '20261202-0007', status: 'handling',
  status_label: '处置中', item: { code: 'C0103', name: '雨水井盖' }, grid: { name: '同济社区第3网格' },
  created_at: '2026-12-02T01:00:00+00:00', distance_m: 42 }] };

beforeEach(() => {
  api.configure({ serverUrl: h.SERVER, sleep: () => Promise.resolve() });
});

function open(routes, options = {}) {
  const wx = h.makeWx(routes);
  const page = h.render('pages/report/index');
  page.instance.onLoad(options);
  return { wx, page };
}

async function fillForm(page, wx) {
  wx.chooseLocation.mockImplementation((o) => setTimeout(() => o.success({ latitude: 23.019,
    longitude: 113.126, name: '季华五路18号' }), 0));
  h.tap(page, '.btn-plain', 0); // 在地图上选择位置
  await h.until(() => h.text(page).includes('已选位置：季华五路18号'), 'the chosen place');
  h.input(page, '.words', '这里的井盖不见了，很危险');
}

test('the form says what to do; empty words or no place are refused before any request', async () => {
  const { wx, page } = open({});
  expect(h.text(page)).toContain(m.intro);
  expect(h.text(page)).toContain(m.submit);
  h.tap(page, '.submit');
  await h.until(() => h.text(page).includes(m.needWords), 'the words hint');
  h.input(page, '.words', '路灯不亮');
  h.tap(page, '.submit');
  await h.until(() => h.text(page).includes(m.needPlace), 'the place hint');
  expect(wx.calls.filter((c) => c.key !== 'POST /api/mp/login')).toEqual([]);
});

test('photos from camera or album are compressed, shown and can be removed', async () => {
  const { wx, page } = open({});
  wx.chooseMedia.mockImplementation((o) => setTimeout(() => o.success({
    tempFiles: [{ tempFilePath: 'wxfile://a.jpg' }, { tempFilePath: 'wxfile://b.jpg' }] }), 0));
  h.tap(page, '.photo-add');
  await h.until(() => h.all(page, '.photo-img').length === 2, 'two photos');
  const asked = wx.chooseMedia.mock.calls[0][0];
  expect(asked.sourceType).toEqual(['camera', 'album']);
  expect(asked.count).toBe(9);
  expect(wx.compressImage.mock.calls.map(([o]) => [o.src, o.quality]))
    .toEqual([['wxfile://a.jpg', 60], ['wxfile://b.jpg', 60]]);
  expect(page.instance.data.photos).toEqual(['wxfile://a.jpg.small.jpg', 'wxfile://b.jpg.small.jpg']);
  h.tap(page, '.photo-remove', 0);
  await h.until(() => h.all(page, '.photo-img').length === 1, 'one photo left');
  expect(page.instance.data.photos).toEqual(['wxfile://b.jpg.small.jpg']);
});

test('a photo that cannot be compressed is said so', async () => {
  const { wx, page } = open({});
  wx.chooseMedia.mockImplementation((o) => setTimeout(() => o.success({
    tempFiles: [{ tempFilePath: 'wxfile://a.heic' }] }), 0));
  wx.compressImage.mockImplementation((o) => setTimeout(() => o.fail({ errMsg: 'fail' }), 0));
  h.tap(page, '.photo-add');
  await h.until(() => h.text(page, '#error').includes(messages.errors.photoCompress), 'error');
});

test('unsure model: three choices, then 「是这个吗？」 and following the nearby case', async () => {
  const { wx, page } = open({
    'POST /api/mp/reports': h.ok(CHOOSE),
    'POST /api/mp/reports/reply': h.ok(CONFIRM),
    'GET /api/mp/reports/nearby': h.ok(NEARBY),
    'POST /api/mp/reports/follow': h.ok({ followed: true,
      case: { number: '20261202-0007', own: false } })
  });
  wx.chooseMedia.mockImplementation((o) => setTimeout(() => o.success({
    tempFiles: [{ tempFilePath: 'wxfile://a.jpg' }] }), 0));
  h.tap(page, '.photo-add');
  await h.until(() => h.all(page, '.photo-img').length === 1, 'the photo');
  await fillForm(page, wx);
  h.tap(page, '.submit');
  await h.until(() => h.all(page, '.choice').length === 3, 'three choices');
  expect(h.all(page, '.choice').map((c) => c.dom.textContent.trim()))
    .toEqual(['1. 污水井盖', '2. 雨水井盖', '3. 电力井盖']);
  const [upload] = wx.uploadFile.mock.calls[0];
  expect(upload.filePath).toBe('wxfile://a.jpg.small.jpg');
  expect(upload.formData).toMatchObject({ text: '这里的井盖不见了，很危险', lat: 23.019, lon: 113.126,
    coord: 'gcj02' });

  h.tap(page, '.choice', 1);
  await h.until(() => h.text(page).includes(m.nearbyTitle), '是这个吗？');
  expect(wx.calls.find((c) => c.key === 'POST /api/mp/reports/reply').data).toEqual({ text: '2' });
  expect(h.text(page)).toContain('雨水井盖 · 处置中 · 约 42 米');
  h.tap(page, '.follow');
  await h.until(() => page.instance.data.phase === 'followed', 'followed');
  expect(wx.calls.find((c) => c.key === 'POST /api/mp/reports/follow').data)
    .toEqual({ number: '20261202-0007' });
  expect(h.text(page)).toContain('已关注案件 20261202-0007');
});

test('no case nearby: confirm, and the case number is shown', async () => {
  const { wx, page } = open({
    'POST /api/mp/reports': h.ok(CONFIRM),
    'GET /api/mp/reports/nearby': h.ok({ cases: [] }),
    'POST /api/mp/reports/reply': h.ok(FILED)
  });
  await fillForm(page, wx);
  h.tap(page, '.submit');
  await h.until(() => h.text(page).includes(m.confirm), 'the confirmation');
  expect(h.text(page)).toContain('类别：公用设施 › 雨水井盖');
  expect(h.text(page)).not.toContain(m.nearbyTitle);
  h.tap(page, '.confirm');
  await h.until(() => h.text(page).includes('案件编号：20261203-0001'), 'the number');
  expect(h.text(page)).toContain(m.filed);
  expect(h.all(page, '.notify')).toHaveLength(0); // no template configured: no consent asked
  h.tap(page, '.view-case');
  await h.until(() => wx.navigateTo.mock.calls.length === 1, 'the case page');
  expect(wx.navigateTo).toHaveBeenCalledWith({ url: '/pages/case/index?number=20261203-0001' });
});

test('「不是」: the citizen files anyway', async () => {
  const { wx, page } = open({
    'POST /api/mp/reports': h.ok(CONFIRM),
    'GET /api/mp/reports/nearby': h.ok(NEARBY),
    'POST /api/mp/reports/reply': h.ok(FILED)
  });
  await fillForm(page, wx);
  h.tap(page, '.submit');
  await h.until(() => h.text(page).includes(m.nearbyTitle), '是这个吗？');
  h.tap(page, '.not-this');
  await h.until(() => h.all(page, '.confirm').length === 1, 'confirm');
  h.tap(page, '.confirm');
  await h.until(() => page.instance.data.phase === 'done', 'filed');
  expect(wx.calls.filter((c) => c.key === 'POST /api/mp/reports/follow')).toEqual([]);
});

test('a failed submit shows the error and the retry sends it again', async () => {
  const { wx, page } = open({
    'POST /api/mp/reports': (req, n) => (n === 1 ? { fail: 'request:fail' } : h.ok(CONFIRM)()),
    'GET /api/mp/reports/nearby': h.ok({ cases: [] })
  });
  await fillForm(page, wx);
  h.tap(page, '.submit');
  await h.until(() => h.text(page, '#error').includes(messages.errors.network), 'the error');
  expect(page.instance.data.phase).toBe('form'); // the form is still there, filled in
  expect(page.instance.data.text).toBe('这里的井盖不见了，很危险');
  h.tap(page, '#error >>> .error-retry');
  await h.until(() => page.instance.data.phase === 'confirm', 'the retry');
  expect(h.text(page, '#error')).toBe('');
});

test('the dialog asks for the place: the map answers it', async () => {
  const { wx, page } = open({
    'POST /api/mp/reports': h.ok({ step: 'await_location', case: null,
      replies: [{ text: '问题在哪里？请发送位置。' }] }),
    'POST /api/mp/reports/reply': h.ok(CONFIRM),
    'GET /api/mp/reports/nearby': h.ok({ cases: [] })
  });
  h.input(page, '.words', '路灯不亮');
  h.input(page, '.address', '那边');
  h.tap(page, '.submit');
  await h.until(() => h.text(page).includes('问题在哪里？'), 'the question');
  wx.chooseLocation.mockImplementation((o) => setTimeout(() => o.success({ latitude: 23.1,
    longitude: 113.2, name: '' }), 0));
  h.tap(page, '.btn-primary');
  await h.until(() => page.instance.data.phase === 'confirm', 'confirm');
  expect(wx.calls.find((c) => c.key === 'POST /api/mp/reports/reply').data)
    .toEqual({ text: '', location: { lat: 23.1, lon: 113.2, coord: 'gcj02' } });
});

test('a QR code of a community pre-selects it and opens the map there', async () => {
  const { wx, page } = open({
    'GET /api/mp/communities/4406040010301': h.ok({ code: '4406040010301', name: '同济社区',
      level: 'community', center: { lat: 23.02, lon: 113.13, coord: 'gcj02' } }),
    'POST /api/mp/reports': h.ok(CONFIRM),
    'GET /api/mp/reports/nearby': h.ok({ cases: [] })
  }, { scene: encodeURIComponent('4406040010301') });
  await h.until(() => h.text(page).includes('所在社区：同济社区'), 'the community');
  h.tap(page, '.btn-plain', 0);
  await h.until(() => wx.chooseLocation.mock.calls.length === 1, 'the map');
  expect(wx.chooseLocation.mock.calls[0][0]).toMatchObject({ latitude: 23.02, longitude: 113.13 });
  h.input(page, '.words', '垃圾没人清');
  h.tap(page, '.submit'); // the community is place enough to start with
  await h.until(() => page.instance.data.phase === 'confirm', 'confirm');
  expect(wx.calls.find((c) => c.key === 'POST /api/mp/reports').data)
    .toEqual({ text: '垃圾没人清', community: '4406040010301' });
});

test('a scene the server does not know is still carried with the report', async () => {
  const { page } = open({}, { scene: 'X99' });
  await h.until(() => h.text(page).includes('扫码进入（社区编号 X99）'), 'the scene');
  expect(page.instance.data.community.code).toBe('X99');
});

test('the current position, or a clear word when it is refused', async () => {
  const { wx, page } = open({});
  h.tap(page, '.btn-plain', 1);
  await h.until(() => h.text(page, '#error').includes(messages.errors.locationDenied), 'denied');
  wx.getLocation.mockImplementation((o) => setTimeout(() => o.success({ latitude: 23.0,
    longitude: 113.1 }), 0));
  h.tap(page, '.btn-plain', 1);
  await h.until(() => h.text(page).includes(m.placeCurrent), 'the position');
  expect(wx.getLocation.mock.calls[1][0].type).toBe('gcj02');
  expect(page.instance.data.location).toEqual({ lat: 23.0, lon: 113.1, coord: 'gcj02' });
});

test('cancel in the middle tells the server and starts a clean form', async () => {
  const { wx, page } = open({
    'POST /api/mp/reports': h.ok(CHOOSE),
    'POST /api/mp/reports/reply': h.ok({ step: null, case: null, replies: [{ text: '已取消' }] })
  });
  await fillForm(page, wx);
  h.tap(page, '.submit');
  await h.until(() => h.all(page, '.choice').length === 3, 'choices');
  h.tap(page, '.btn', 3); // 取消, after the three choices
  await h.until(() => page.instance.data.phase === 'form', 'the form');
  await h.until(() => wx.calls.some((c) => c.key === 'POST /api/mp/reports/reply'), 'cancel');
  expect(wx.calls.find((c) => c.key === 'POST /api/mp/reports/reply').data).toEqual({ text: '取消' });
  expect(page.instance.data.text).toBe('');
});
