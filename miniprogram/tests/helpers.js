// The test boundary: a fake `wx` (storage, login, request, uploadFile, the pickers) whose
// network calls go to routes a test declares, and pages loaded into miniprogram-simulate.
const path = require('path');
const simulate = require('miniprogram-simulate');

const ROOT = path.resolve(__dirname, '..');
const SERVER = 'https://gridbot.example.gov.cn';

// Page({...}) as a component j-component can render: data, and every function as a method
// (lifecycle hooks included, so a test calls page.instance.onLoad(...) itself).
global.Page = (def) => {
  const methods = {};
  const data = {};
  Object.keys(def).forEach((key) => {
    if (typeof def[key] === 'function') methods[key] = def[key];
    else if (key === 'data') Object.assign(data, def.data);
  });
  global.Component({ data, methods });
};

function reply(callbacks, outcome) {
  setTimeout(() => {
    if (outcome.fail) callbacks.fail && callbacks.fail({ errMsg: outcome.fail });
    else callbacks.success && callbacks.success(outcome);
  }, 0);
}

// A fake server: routes['POST /api/mp/reports'] = (req) => ({ status, body }) or
// ({ fail: 'request:fail timeout' }); every call is kept in `calls`.
function makeWx(routes = {}) {
  const storage = {};
  const calls = [];
  const answer = (method, url, req) => {
    const pathOnly = url.replace(SERVER, '').split('?')[0];
    const key = `${method} ${pathOnly}`;
    calls.push({ key, ...req });
    const route = routes[key];
    if (!route) return { status: 404, body: { error: `no route ${key}` } };
    return route(req, calls.filter((c) => c.key === key).length);
  };
  routes['POST /api/mp/login'] = routes['POST /api/mp/login']
    || ((req) => ({ status: 200, body: { token: `T-${req.data.code}`, expires_in: 604800 } }));
  const wx = {
    calls,
    storage,
    routes,
    getStorageSync: jest.fn((k) => storage[k] || ''),
    setStorageSync: jest.fn((k, v) => {
      storage[k] = v;
    }),
    removeStorageSync: jest.fn((k) => {
      delete storage[k];
    }),
    login: jest.fn((cb) => reply(cb, { code: 'CODE1' })),
    request: jest.fn((o) => {
      const res = answer(o.method, o.url, { data: o.data, header: o.header });
      reply(o, res.fail ? res : { statusCode: res.status, data: res.body });
    }),
    uploadFile: jest.fn((o) => {
      const res = answer('POST', o.url, { filePath: o.filePath, formData: o.formData,
        header: o.header, name: o.name });
      reply(o, res.fail ? res : { statusCode: res.status, data: JSON.stringify(res.body) });
    }),
    chooseMedia: jest.fn((o) => reply(o, { fail: 'chooseMedia:fail cancel' })),
    compressImage: jest.fn((o) => reply(o, { tempFilePath: `${o.src}.small.jpg` })),
    chooseLocation: jest.fn((o) => reply(o, { fail: 'chooseLocation:fail cancel' })),
    getLocation: jest.fn((o) => reply(o, { fail: 'getLocation:fail auth deny' })),
    requestSubscribeMessage: jest.fn((o) => reply(o, { fail: 'requestSubscribeMessage:fail' })),
    previewImage: jest.fn(),
    showToast: jest.fn(),
    navigateTo: jest.fn(),
    switchTab: jest.fn(),
    stopPullDownRefresh: jest.fn()
  };
  global.wx = wx;
  return wx;
}

const loaded = {};

// Render a page or component afresh (each is compiled and registered once per test file).
function render(rel, props) {
  if (!loaded[rel]) {
    loaded[rel] = simulate.load(path.join(ROOT, rel), { rootPath: ROOT, compiler: 'simulate' });
  }
  const comp = simulate.render(loaded[rel], props);
  comp.attach(document.createElement('parent-wrapper'));
  return comp;
}

// Wait until `check()` is true (the pages' work is asynchronous): fails after 5 s (a busy
// machine is slow, a wrong page never gets there).
async function until(check, what = 'the condition') {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

// Selectors may cross into a child component: 'case-card >>> .case-card'.
function all(comp, selector) {
  const [first, ...rest] = selector.split(' >>> ');
  let found = comp.querySelectorAll(first);
  rest.forEach((part) => {
    found = found.flatMap((child) => child.querySelectorAll(part));
  });
  return found;
}

function text(comp, selector) {
  const found = selector ? all(comp, selector)[0] : comp;
  return found ? found.dom.textContent.replace(/\s+/g, ' ').trim() : '';
}

function tap(comp, selector, index = 0) {
  const found = all(comp, selector);
  if (!found[index]) throw new Error(`nothing to tap at ${selector}[${index}]`);
  found[index].dispatchEvent('tap');
}

function input(comp, selector, value) {
  const found = all(comp, selector)[0];
  if (!found) throw new Error(`no input ${selector}`);
  found.dispatchEvent('input', { detail: { value } });
}

const ok = (body) => () => ({ status: 200, body });

module.exports = { ROOT, SERVER, makeWx, render, until, text, all, tap, input, ok };
