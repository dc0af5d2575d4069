// utils/api.js: login, the token, errors in plain Chinese, upload retries, the report calls.
const h = require('./helpers');
const api = require('../utils/api');
const messages = require('../utils/messages');

const TURN = { replies: [{ text: '请确认', buttons: [] }], case: null, step: 'confirm' };

beforeEach(() => {
  api.configure({ serverUrl: h.SERVER, sleep: () => Promise.resolve() });
});

test('logs in once with the wx.login code and sends the token as Bearer', async () => {
  const wx = h.makeWx({ 'GET /api/mp/cases': h.ok({ cases: [] }) });
  await api.myCases();
  await api.myCases();
  expect(wx.login).toHaveBeenCalledTimes(1);
  const logins = wx.calls.filter((c) => c.key === 'POST /api/mp/login');
  expect(logins.map((c) => c.data)).toEqual([{ code: 'CODE1' }]);
  const gets = wx.calls.filter((c) => c.key === 'GET /api/mp/cases');
  expect(gets.map((c) => c.header.Authorization)).toEqual(['Bearer T-CODE1', 'Bearer T-CODE1']);
  expect(wx.storage['gridbot.session'].token).toBe('T-CODE1');
});

test('an expired token logs in again and repeats the call once', async () => {
  const wx = h.makeWx({
    'GET /api/mp/cases': (req, n) => (n === 1 ? { status: 401, body: { error: 'expired' } }
      : h.ok({ cases: [{ number: 'A' }] })())
  });
  wx.storage['gridbot.session'] = { token: 'OLD', expiresAt: Date.now() + 100000 };
  const res = await api.myCases();
  expect(res.cases[0].number).toBe('A');
  expect(wx.login).toHaveBeenCalledTimes(1);
  const gets = wx.calls.filter((c) => c.key === 'GET /api/mp/cases');
  expect(gets.map((c) => c.header.Authorization)).toEqual(['Bearer OLD', 'Bearer T-CODE1']);
});

test('every failure becomes a plain-Chinese ApiError', async () => {
  h.makeWx({
    'GET /api/mp/cases': () => ({ fail: 'request:fail' }),
    'GET /api/mp/cases/X': () => ({ status: 404, body: { error: 'no such case among yours' } }),
    'POST /api/mp/cases/X/rating': () => ({ status: 500, body: 'oops' }),
    'GET /api/mp/reports/nearby': () => ({ fail: 'request:fail timeout' }),
    'POST /api/mp/reports': () => ({ status: 429, body: { error: '今天上传的照片已达上限', field: 'photos' } })
  });
  await expect(api.myCases()).rejects.toMatchObject({ message: messages.errors.network, status: 0 });
  await expect(api.caseDetail('X')).rejects.toMatchObject({ message: messages.errors.notFound,
    status: 404 });
  await expect(api.rate('X', 5)).rejects.toMatchObject({ message: messages.errors.server,
    retryable: true });
  await expect(api.nearby()).rejects.toMatchObject({ message: messages.errors.timeout });
  await expect(api.startReport({ text: '路灯坏了', address: '季华五路18号' }))
    .rejects.toMatchObject({ message: '今天上传的照片已达上限', status: 429, field: 'photos' });
});

test('a login WeChat refuses is said so', async () => {
  h.makeWx({ 'POST /api/mp/login': () => ({ status: 401, body: { error: 'WeChat refused' } }) });
  await expect(api.myCases()).rejects.toMatchObject({ message: messages.errors.login });
});

test('a report with photos: the first goes with the fields, the rest one by one', async () => {
  const wx = h.makeWx({
    'POST /api/mp/reports': () => ({ status: 200, body: TURN }),
    'POST /api/mp/reports/photos': (req, n) => h.ok({ photos: n + 1, step: 'confirm' })()
  });
  const progress = [];
  const turn = await api.startReport({ text: '井盖没了', community: 'C1',
    location: { lat: 23.02, lon: 113.12, coord: 'gcj02' }, photos: ['a.jpg', 'b.jpg', 'c.jpg'] },
  (p) => progress.push(p.photo));
  expect(turn).toEqual(TURN);
  const uploads = wx.uploadFile.mock.calls.map(([o]) => [o.url.replace(h.SERVER, ''), o.filePath]);
  expect(uploads).toEqual([['/api/mp/reports', 'a.jpg'], ['/api/mp/reports/photos', 'b.jpg'],
    ['/api/mp/reports/photos', 'c.jpg']]);
  expect(wx.uploadFile.mock.calls[0][0].formData).toEqual({ text: '井盖没了', community: 'C1',
    lat: 23.02, lon: 113.12, coord: 'gcj02' });
  expect(wx.uploadFile.mock.calls[0][0].name).toBe('photos');
  expect(progress).toEqual([1, 2, 3]);
});

test('a report without photos is one JSON request', async () => {
  const wx = h.makeWx({ 'POST /api/mp/reports': h.ok(TURN) });
  await api.startReport({ text: '路灯不亮', address: '季华五路18号' });
  expect(wx.uploadFile).not.toHaveBeenCalled();
  const [call] = wx.calls.filter((c) => c.key === 'POST /api/mp/reports');
  expect(call.data).toEqual({ text: '路灯不亮', address: '季华五路18号' });
});

test('an upload is retried on a poor network, then given up with a clear word', async () => {
  let wx = h.makeWx({
    'POST /api/mp/reports': (req, n) => (n < 3 ? { fail: 'uploadFile:fail' } : h.ok(TURN)())
  });
  const retries = [];
  const turn = await api.startReport({ text: '井盖没了', address: 'x', photos: ['a.jpg'] },
    (p) => p.retry && retries.push(p.retry));
  expect(turn.step).toBe('confirm');
  expect(retries).toEqual([1, 2]);
  expect(wx.uploadFile).toHaveBeenCalledTimes(3);

  wx = h.makeWx({ 'POST /api/mp/reports': () => ({ status: 502, body: null }) });
  await expect(api.startReport({ text: '井盖没了', address: 'x', photos: ['a.jpg'] }))
    .rejects.toMatchObject({ message: '照片上传失败（已重试 2 次）。请检查网络后重试。' });
  expect(wx.uploadFile).toHaveBeenCalledTimes(3);
});

test('a refused upload is not retried', async () => {
  const wx = h.makeWx({ 'POST /api/mp/reports': () => ({ status: 400,
    body: { error: '第 1 张照片不是有效的图片' } }) });
  await expect(api.startReport({ text: '井盖没了', address: 'x', photos: ['a.jpg'] }))
    .rejects.toMatchObject({ message: '第 1 张照片不是有效的图片', status: 400 });
  expect(wx.uploadFile).toHaveBeenCalledTimes(1);
});

test('the other calls go where the API says', async () => {
  const wx = h.makeWx({
    'POST /api/mp/reports/reply': h.ok(TURN),
    'POST /api/mp/reports/follow': h.ok({ followed: true }),
    'GET /api/mp/communities/4406040010301': h.ok({ name: '同济社区' }),
    'POST /api/mp/cases/N%2F1/rating': h.ok({ rating: 4 }),
    'POST /api/mp/subscriptions': h.ok({ grants: 1 })
  });
  await api.reply('', { lat: 1, lon: 2, coord: 'gcj02' });
  await api.reply('确认');
  await api.follow('N1');
  await api.community('4406040010301');
  await api.rate('N/1', 4, '很快');
  await api.subscribed('SUB', 1);
  const sent = wx.calls.filter((c) => c.key !== 'POST /api/mp/login').map((c) => [c.key, c.data]);
  expect(sent).toEqual([
    ['POST /api/mp/reports/reply', { text: '', location: { lat: 1, lon: 2, coord: 'gcj02' } }],
    ['POST /api/mp/reports/reply', { text: '确认' }],
    ['POST /api/mp/reports/follow', { number: 'N1' }],
    ['GET /api/mp/communities/4406040010301', undefined],
    ['POST /api/mp/cases/N%2F1/rating', { score: 4, note: '很快' }],
    ['POST /api/mp/subscriptions', { template_id: 'SUB', accepted: 1 }]
  ]);
});
