// `wx` for node: wx.request and wx.uploadFile over real HTTP (node's fetch), wx.login with a
// code the test chooses, storage in memory. What the mini-program's request layer needs,
// nothing more: the end-to-end test runs utils/api.js unchanged against a real server.
const fs = require('fs');
const path = require('path');

function makeNodeWx() {
  const storage = {};
  const wx = {
    code: 'e2e-citizen',
    storage,
    getStorageSync: (k) => (k in storage ? storage[k] : ''),
    setStorageSync: (k, v) => {
      storage[k] = v;
    },
    removeStorageSync: (k) => {
      delete storage[k];
    },
    login: ({ success }) => setTimeout(() => success({ code: wx.code }), 0),
    request({ url, method = 'GET', data, header = {}, timeout = 15000, success, fail }) {
      const init = { method, headers: header, signal: AbortSignal.timeout(timeout) };
      if (method !== 'GET' && data !== undefined) init.body = JSON.stringify(data);
      fetch(url, init)
        .then(async (res) => {
          const raw = await res.text();
          let body = raw;
          try {
            body = JSON.parse(raw);
          } catch (err) {
            // not JSON: handed over as text, as wx.request does
          }
          success({ statusCode: res.status, data: body, header: Object.fromEntries(res.headers) });
        })
        .catch((err) => fail({ errMsg: `request:fail ${err.message}` }));
    },
    uploadFile({ url, filePath, name, formData = {}, header = {}, timeout = 60000, success, fail }) {
      const form = new FormData();
      Object.entries(formData).forEach(([k, v]) => form.append(k, String(v)));
      let bytes;
      try {
        bytes = fs.readFileSync(filePath);
      } catch (err) {
        setTimeout(() => fail({ errMsg: `uploadFile:fail ${err.message}` }), 0);
        return;
      }
      form.append(name, new Blob([bytes], { type: 'image/jpeg' }), path.basename(filePath));
      fetch(url, { method: 'POST', headers: header, body: form,
        signal: AbortSignal.timeout(timeout) })
        .then(async (res) => success({ statusCode: res.status, data: await res.text() }))
        .catch((err) => fail({ errMsg: `uploadFile:fail ${err.message}` }));
    }
  };
  return wx;
}

module.exports = { makeNodeWx };
