// app.js: the QR code's scene is kept for 随手拍, and the login is tried at launch.
const h = require('./helpers');
const api = require('../utils/api');

let app;
beforeAll(() => {
  global.App = (def) => {
    app = def;
  };
  jest.isolateModules(() => require('../app.js'));
});

test('launch from a community QR code keeps the scene and logs in quietly', async () => {
  api.configure({ serverUrl: h.SERVER });
  const wx = h.makeWx({});
  app.onLaunch({ query: { scene: encodeURIComponent('4406040010301') } });
  expect(app.globalData.scene).toBe('4406040010301');
  await h.until(() => Boolean(wx.storage['gridbot.session']), 'the session');
  app.onShow({ query: {} }); // coming back without a scene keeps the community
  expect(app.globalData.scene).toBe('4406040010301');
});

test('a launch with no network does not break the app', async () => {
  const wx = h.makeWx({ 'POST /api/mp/login': () => ({ fail: 'request:fail' }) });
  expect(() => app.onLaunch({ query: {} })).not.toThrow();
  await h.until(() => wx.calls.length === 1, 'the login try');
  expect(app.globalData.scene).toBe('');
});
