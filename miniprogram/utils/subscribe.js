// The subscribe-message consent: asked only inside a tap (WeChat's rule), for the one
// template of case updates; an 'accept' is told to the server (one grant = one message).
const config = require('../config.js');
const api = require('./api.js');
const messages = require('./messages.js');

function enabled() {
  return Boolean(config.subscribeTemplateId);
}

function ask() {
  const id = config.subscribeTemplateId;
  if (!id) return Promise.resolve(false);
  return new Promise((resolve) => {
    wx.requestSubscribeMessage({
      tmplIds: [id],
      success(res) {
        resolve(res && res[id] === 'accept');
      },
      fail() {
        resolve(false);
      }
    });
  }).then(async (accepted) => {
    if (accepted) await api.subscribed(id, 1);
    wx.showToast({ title: accepted ? messages.subscribe.accepted : messages.subscribe.rejected,
      icon: 'none', duration: 2500 });
    return accepted;
  });
}

module.exports = { enabled, ask };
