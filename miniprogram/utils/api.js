// The one request layer every page uses: login by wx.login + /api/mp/login (the session
// token kept in storage), JSON requests by wx.request, photos by wx.uploadFile with retries,
// and an ApiError whose `message` is a plain-Chinese sentence the page can show as it is.
const config = require('../config.js');
const messages = require('./messages.js');
const { fill } = require('./format.js');

const TOKEN_KEY = 'gridbot.session';
const settings = {
  serverUrl: config.serverUrl,
  retryDelaysMs: config.retryDelaysMs,
  requestTimeoutMs: config.requestTimeoutMs,
  uploadTimeoutMs: config.uploadTimeoutMs,
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms))
};

class ApiError extends Error {
  constructor(message, { status = 0, retryable = false, field = '' } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status; // 0: no answer (network)
    this.retryable = retryable;
    this.field = field;
  }
}

// Tests and the end-to-end run point the layer elsewhere (a loopback server, no waits).
function configure(options) {
  Object.assign(settings, options);
}

function hasChinese(text) {
  return typeof text === 'string' && /[\u4e00-\u9fff]/.test(text);
}

// The server's own words when they are for people (Chinese), else ours by status.
function errorFor(status, body) {
  const said = body && typeof body === 'object' ? body.error : '';
  const field = body && typeof body === 'object' && body.field ? body.field : '';
  const retryable = status >= 500 || status === 408;
  if (hasChinese(said) && status < 500) return new ApiError(said, { status, retryable, field });
  const e = messages.errors;
  const text = status === 404 ? e.notFound
    : status === 409 ? e.conflict
      : status === 429 ? e.tooMany
        : status === 401 ? e.login
          : status >= 500 ? e.server
            : e.badRequest;
  return new ApiError(text, { status, retryable, field });
}

function networkError(err) {
  const msg = err && err.errMsg ? String(err.errMsg) : '';
  return new ApiError(/timeout/i.test(msg) ? messages.errors.timeout : messages.errors.network,
    { status: 0, retryable: true });
}

function loadToken() {
  try {
    const saved = wx.getStorageSync(TOKEN_KEY);
    if (saved && saved.token && saved.expiresAt > Date.now()) return saved.token;
  } catch (err) {
    // storage unreadable: log in again
  }
  return '';
}

function saveToken(token, expiresIn) {
  // A minute early, so that a request never goes out with a token about to lapse.
  const expiresAt = Date.now() + Math.max(0, (expiresIn || 0) - 60) * 1000;
  try {
    wx.setStorageSync(TOKEN_KEY, { token, expiresAt });
  } catch (err) {
    // not kept: the next request logs in again
  }
}

function clearToken() {
  try {
    wx.removeStorageSync(TOKEN_KEY);
  } catch (err) {
    // nothing to clear
  }
}

function rawRequest(method, path, data, token) {
  return new Promise((resolve, reject) => {
    const header = { 'Content-Type': 'application/json' };
    if (token) header.Authorization = `Bearer ${token}`;
    wx.request({
      url: settings.serverUrl + path,
      method,
      data: method === 'GET' ? undefined : (data || {}),
      header,
      timeout: settings.requestTimeoutMs,
      dataType: 'json',
      success(res) {
        resolve({ status: res.statusCode, body: res.data });
      },
      fail(err) {
        reject(networkError(err));
      }
    });
  });
}

function wxLogin() {
  return new Promise((resolve, reject) => {
    wx.login({
      success(res) {
        if (res && res.code) resolve(res.code);
        else reject(new ApiError(messages.errors.login));
      },
      fail() {
        reject(new ApiError(messages.errors.login, { retryable: true }));
      }
    });
  });
}

let loggingIn = null;

// wx.login's code for a session token; concurrent callers share one login.
function login() {
  if (!loggingIn) {
    loggingIn = (async () => {
      const code = await wxLogin();
      const res = await rawRequest('POST', '/api/mp/login', { code }, '');
      if (res.status !== 200 || !res.body || !res.body.token) throw errorFor(res.status, res.body);
      saveToken(res.body.token, res.body.expires_in);
      return res.body.token;
    })().finally(() => {
      loggingIn = null;
    });
  }
  return loggingIn;
}

async function token() {
  return loadToken() || login();
}

// One authenticated call; a 401 (token expired or the server's secret changed) logs in
// once more and repeats it.
async function call(send) {
  let res = await send(await token());
  if (res.status === 401) {
    clearToken();
    res = await send(await login());
  }
  if (res.status < 200 || res.status >= 300) throw errorFor(res.status, res.body);
  return res.body;
}

function request(method, path, data) {
  return call((tok) => rawRequest(method, path, data, tok));
}

function rawUpload(path, filePath, formData, tok) {
  return new Promise((resolve, reject) => {
    wx.uploadFile({
      url: settings.serverUrl + path,
      filePath,
      name: 'photos',
      formData: formData || {},
      header: { Authorization: `Bearer ${tok}` },
      timeout: settings.uploadTimeoutMs,
      success(res) {
        let body = res.data;
        try {
          body = typeof body === 'string' ? JSON.parse(body) : body;
        } catch (err) {
          body = null;
        }
        resolve({ status: res.statusCode, body });
      },
      fail(err) {
        reject(networkError(err));
      }
    });
  });
}

// Retries what may succeed next time (no answer, a 5xx), waiting longer each time;
// `onRetry(n)` lets the page say so. A refusal (400, 429 …) is not retried.
async function withRetry(work, onRetry) {
  const delays = settings.retryDelaysMs || [];
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await work();
    } catch (err) {
      if (!(err instanceof ApiError) || !err.retryable || attempt >= delays.length) {
        if (err instanceof ApiError && err.retryable && attempt > 0) {
          throw new ApiError(fill(messages.errors.uploadFailed, { n: attempt }),
            { status: err.status, retryable: true });
        }
        throw err;
      }
      if (onRetry) onRetry(attempt + 1);
      await settings.sleep(delays[attempt]);
    }
  }
}

function upload(path, filePath, formData, onRetry) {
  return withRetry(() => call((tok) => rawUpload(path, filePath, formData, tok)), onRetry);
}

// -- the API --------------------------------------------------------------------------------

function reportFields(report) {
  const fields = { text: report.text };
  if (report.address) fields.address = report.address;
  if (report.community) fields.community = report.community;
  if (report.location) {
    fields.lat = report.location.lat;
    fields.lon = report.location.lon;
    fields.coord = report.location.coord || 'gcj02';
  }
  return fields;
}

// A new report: the words, the place, the photos (compressed file paths). Returns the
// dialog's answer { replies, case, step } once every photo is up.
async function startReport(report, progress) {
  const photos = report.photos || [];
  const tell = progress || (() => {});
  if (!photos.length) {
    const body = { text: report.text };
    if (report.address) body.address = report.address;
    if (report.community) body.community = report.community;
    if (report.location) {
      body.location = { lat: report.location.lat, lon: report.location.lon,
        coord: report.location.coord || 'gcj02' };
    }
    return request('POST', '/api/mp/reports', body);
  }
  tell({ photo: 1, photos: photos.length });
  const turn = await upload('/api/mp/reports', photos[0], reportFields(report),
    (n) => tell({ photo: 1, photos: photos.length, retry: n }));
  for (let i = 1; i < photos.length && turn.step; i += 1) {
    tell({ photo: i + 1, photos: photos.length });
    await upload('/api/mp/reports/photos', photos[i], {},
      (n) => tell({ photo: i + 1, photos: photos.length, retry: n }));
  }
  return turn;
}

// A photo link the server gave (a path with its own signed token) as a full address for
// <image src> and wx.previewImage, which send no Authorization header.
function photoUrl(path) {
  return /^https?:\/\//.test(path) ? path : settings.serverUrl + path;
}

const api = {
  ApiError,
  configure,
  photoUrl,
  login,
  clearToken,
  withRetry,
  startReport,
  reply: (text, location) => request('POST', '/api/mp/reports/reply',
    location ? { text: text || '', location } : { text }),
  nearby: () => request('GET', '/api/mp/reports/nearby'),
  follow: (number) => request('POST', '/api/mp/reports/follow', { number }),
  community: (code) => request('GET', `/api/mp/communities/${encodeURIComponent(code)}`),
  myCases: () => request('GET', '/api/mp/cases'),
  caseDetail: (number) => request('GET', `/api/mp/cases/${encodeURIComponent(number)}`),
  rate: (number, score, note) => request('POST',
    `/api/mp/cases/${encodeURIComponent(number)}/rating`, { score, note: note || '' }),
  subscribed: (templateId, accepted) => request('POST', '/api/mp/subscriptions',
    { template_id: templateId, accepted }),
  // Worker mode: who I am as a worker (null: a citizen), binding with a one-time code, and
  // 即办 of my own find with the after-photo (one compressed file path) and a note.
  worker: () => request('GET', '/api/mp/worker'),
  bindWorker: (code) => request('POST', '/api/mp/worker/bind', { code }),
  onSpot: (number, photo, note, onRetry) => upload(
    `/api/mp/worker/cases/${encodeURIComponent(number)}/on-spot`, photo, { note: note || '' },
    onRetry)
};

module.exports = api;
