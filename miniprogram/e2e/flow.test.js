// End to end: the mini-program's own request layer (utils/api.js, unchanged) in node, wx.*
// over real HTTP, against a real `gridbot serve` on loopback whose code2session is answered
// by the project's fake WeChat API. tests/test_miniprogram.py starts both and passes:
//   GRIDBOT_E2E_URL, GRIDBOT_E2E_PHOTO (a JPEG), GRIDBOT_E2E_LAT / _LON (a GCJ-02 pin),
//   GRIDBOT_E2E_STAFF_USER (a grid leader of the pin's grid), GRIDBOT_E2E_CHECKER_USER (a
//   supervisor, who checks the result) and GRIDBOT_E2E_STAFF_PASSWORD, for the console;
//   GRIDBOT_E2E_WECOM_{CORP_ID,TOKEN,AES_KEY,USER}: the grid worker who resolves the case
//   with an after-photo from the WeCom app.
const { makeNodeWx } = require('./wx-node');
const { consoleLogin } = require('./staff');
const { wecomWorker } = require('./wecom');

const env = process.env;
const BASE = env.GRIDBOT_E2E_URL;
if (!BASE) {
  throw new Error('GRIDBOT_E2E_URL is not set: run this through tests/test_miniprogram.py '
    + '(it starts gridbot serve and the fake WeChat API)');
}

global.wx = makeNodeWx();
const api = require('../utils/api');

const PIN = { lat: Number(env.GRIDBOT_E2E_LAT), lon: Number(env.GRIDBOT_E2E_LON), coord: 'gcj02' };
const WORDS = '我家小区门口的井盖不见了，晚上很危险';

jest.setTimeout(120000);

function as(code) {
  api.clearToken();
  global.wx.code = code;
}

// Report as the 随手拍 page does: the first suggestion when the model is unsure.
async function bringToConfirm(text, photos) {
  let turn = await api.startReport({ text, location: PIN, photos });
  if (turn.step === 'choose_item') turn = await api.reply('1');
  expect(turn.step).toBe('confirm');
  return turn;
}

test('login, report with photos, the case in 我的, staff move it, a neighbour follows, rating', async () => {
  api.configure({ serverUrl: BASE, sleep: () => Promise.resolve() });

  // Login: wx.login's code → code2session at the fake WeChat API → a session token.
  as('e2e-citizen');
  const token = await api.login();
  expect(token).toMatch(/\S{20,}/);

  // 随手拍 with two photos (wx.uploadFile, one multipart request each), nothing open nearby
  // yet, then 确认.
  const turn = await bringToConfirm(WORDS, [env.GRIDBOT_E2E_PHOTO, env.GRIDBOT_E2E_PHOTO]);
  expect(turn.replies.map((r) => r.text).join('\n')).toContain('同济社区第3网格');
  expect((await api.nearby()).cases).toEqual([]);
  const filed = await api.reply('确认');
  expect(filed.step).toBeNull();
  const number = filed.case.number;
  expect(number).toMatch(/^\d{8}-\d{4}$/);

  // 我的: the case, dispatched, with its photos and timeline.
  let mine = await api.myCases();
  expect(mine.cases.map((c) => [c.number, c.status, c.own])).toEqual([[number, 'dispatched', true]]);
  let detail = await api.caseDetail(number);
  expect(detail.photos).toBe(2);
  expect(detail.text).toBe(WORDS);
  expect(detail.timeline.map((e) => e.status)).toEqual(['reported', 'filed', 'dispatched']);
  expect((await api.subscribed('SUB-status', 1)).grants).toBe(1);

  // Staff accept it in the console: the status change shows in 我的.
  const staff = await consoleLogin(BASE, env.GRIDBOT_E2E_STAFF_USER, env.GRIDBOT_E2E_STAFF_PASSWORD);
  await staff.act(number, 'accept');
  mine = await api.myCases();
  expect(mine.cases[0].status).toBe('handling');
  expect(mine.cases[0].status_label).toBe('处置中');

  // A neighbour reports the same: 「是这个吗？」 offers the open case; they follow it.
  as('e2e-neighbour');
  await bringToConfirm(WORDS, []);
  const near = await api.nearby();
  expect(near.cases.map((c) => c.number)).toEqual([number]);
  expect(Object.keys(near.cases[0]).sort()).toEqual(['created_at', 'distance_m', 'grid', 'item',
    'number', 'status', 'status_label']); // no one's words, address or identity
  const followed = await api.follow(number);
  expect(followed.case).toMatchObject({ number, own: false, text: null });
  const theirs = await api.myCases();
  expect(theirs.cases.map((c) => [c.number, c.own])).toEqual([[number, false]]);
  await expect(api.caseDetail('20000101-0001')).rejects.toMatchObject({ status: 404 });

  // The grid's worker resolves it from the WeCom app with an after-photo and a note.
  const worker = wecomWorker({ base: BASE, corpId: env.GRIDBOT_E2E_WECOM_CORP_ID,
    token: env.GRIDBOT_E2E_WECOM_TOKEN, aesKey: env.GRIDBOT_E2E_WECOM_AES_KEY,
    userId: env.GRIDBOT_E2E_WECOM_USER });
  expect(await worker.photo('AFTER-PHOTO-1')).toContain('照片已收到');
  expect(await worker.say(`办结 ${number} 井盖已经换上新的`)).toContain(number);

  // 我的 → the case: the note and the after-photo on the 办结 step; the photo opens (the
  // server downloads it from WeCom in the background: asked again until it is there).
  as('e2e-citizen');
  detail = await api.caseDetail(number);
  const handled = detail.timeline.find((e) => e.status === 'handled');
  expect(handled.note).toBe('已处置：井盖已经换上新的');
  expect(handled.photos).toHaveLength(1);
  expect(detail.timeline.filter((e) => e.photos && e.photos.length)).toHaveLength(1);
  const full = api.photoUrl(handled.photos[0].full);
  let shown = null;
  for (let i = 0; i < 50 && !(shown && shown.status === 200); i += 1) {
    if (i) await new Promise((r) => setTimeout(r, 200));
    shown = await fetch(full); // no Authorization: the link carries its own signature
  }
  expect(shown.status).toBe(200);
  expect(shown.headers.get('content-type')).toBe('image/jpeg');
  expect(Buffer.from(await shown.arrayBuffer()).subarray(0, 3))
    .toEqual(Buffer.from([0xff, 0xd8, 0xff]));
  const thumb = await fetch(api.photoUrl(handled.photos[0].thumb));
  expect(thumb.status).toBe(200);
  expect(thumb.headers.get('content-type')).toBe('image/jpeg');
  expect((await fetch(full.replace('/api/mp/photos/', '/api/mp/photos/x'))).status).toBe(404);
  // The neighbour who follows it sees the status, not the photo.
  as('e2e-neighbour');
  const followerView = await api.caseDetail(number);
  expect(followerView.timeline.some((e) => e.photos)).toBe(false);
  as('e2e-citizen');

  // A supervisor checks it: closed, the note still in the citizen's timeline.
  const checker = await consoleLogin(BASE, env.GRIDBOT_E2E_CHECKER_USER,
    env.GRIDBOT_E2E_STAFF_PASSWORD);
  await checker.act(number, 'verify');
  as('e2e-citizen');
  detail = await api.caseDetail(number);
  expect(detail.status).toBe('closed');
  expect(detail.timeline.map((e) => e.note)).toContain('已处置：井盖已经换上新的');

  // Only the first reporter rates.
  as('e2e-neighbour');
  await expect(api.rate(number, 1, '')).rejects.toMatchObject({ status: 404 });
  as('e2e-citizen');
  const rated = await api.rate(number, 5, '很快就修好了');
  expect(rated.rating).toBe(5);
  expect((await api.caseDetail(number)).rating).toBe(5);
  await expect(api.rate(number, 4, '')).rejects.toMatchObject({ status: 409 });
  process.stdout.write(`E2E_CASE=${number}\n`);
});

test('a grid worker in the mini-program: bound by a one-time code, a patrol find, 即办', async () => {
  api.configure({ serverUrl: BASE, sleep: () => Promise.resolve() });
  as('e2e-worker');
  expect((await api.worker()).worker).toBeNull();
  await expect(api.bindWorker('00000000')).rejects.toMatchObject({ status: 404 });
  const bound = await api.bindWorker(env.GRIDBOT_E2E_WORKER_CODE);
  expect(bound.worker).toMatchObject({ name: '王网格员', role: 'grid_worker' });
  expect((await api.worker()).worker.area.name).toBe('同济社区第3网格');

  // 巡查上报: the same form, with a photo; the server files it as a patrol find.
  let turn = await api.startReport({ text: '路边墙上贴满了办证小广告，牛皮癣很多', location: PIN,
    photos: [env.GRIDBOT_E2E_PHOTO] });
  if (turn.step === 'choose_item') {
    const labels = turn.replies[turn.replies.length - 1].buttons.map((b) => b.label);
    turn = await api.reply(String(labels.findIndex((l) => l.includes('小广告')) + 1));
  }
  expect(turn.step).toBe('confirm');
  const filed = await api.reply('确认');
  const number = filed.case.number;
  expect(filed.case.status).toBe('dispatched');

  // 即办 with the after-photo and a note: handled, on the spot.
  const closed = await api.onSpot(number, env.GRIDBOT_E2E_PHOTO, '小广告已铲除');
  expect(closed.case).toMatchObject({ number, status: 'handled' });
  await expect(api.onSpot(number, env.GRIDBOT_E2E_PHOTO, '')).rejects.toMatchObject({ status: 409 });
  const mine = await api.caseDetail(number);
  expect(mine.timeline.find((e) => e.status === 'handled').note).toBe('已处置：小广告已铲除');
  process.stdout.write(`E2E_PATROL_CASE=${number}\n`);
});
