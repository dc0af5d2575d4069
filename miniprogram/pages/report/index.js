// 随手拍: photos, place, a few words → the dialog's questions (category, place) → 「是这个吗？」
// (nearby open cases of the same kind, to follow instead) → confirm → the case number.
// For a bound grid worker the same form is 巡查上报: the server files it as a patrol find, and
// once filed they may close it on the spot (即办) with a photo after the work.
const api = require('../../utils/api.js');
const config = require('../../config.js');
const messages = require('../../utils/messages.js');
const subscribe = require('../../utils/subscribe.js');
const { fill } = require('../../utils/format.js');

const CHOICE_STEPS = ['choose_item', 'choose_place', 'choose_big_class', 'offer_file'];

function fresh() {
  return {
    phase: 'form', // form | busy | choose | place | nearby | confirm | done | followed | info
    photos: [],
    text: '',
    address: '',
    location: null,
    placeLabel: '',
    busyText: '',
    error: '',
    retryAction: '',
    prompt: '',
    choices: [],
    nearby: [],
    summary: '',
    caseNumber: '',
    onSpotNote: '',
    afterPhoto: ''
  };
}

function repliesText(turn) {
  return ((turn && turn.replies) || []).map((r) => r.text).filter(Boolean).join('\n');
}

function lastButtons(turn) {
  const replies = (turn && turn.replies) || [];
  for (let i = replies.length - 1; i >= 0; i -= 1) {
    if (replies[i].buttons && replies[i].buttons.length) return replies[i].buttons;
  }
  return [];
}

function call(fn) {
  return new Promise((resolve, reject) => fn({ success: resolve, fail: reject }));
}

function cancelled(err) {
  return Boolean(err && err.errMsg && /cancel/i.test(err.errMsg));
}

Page({
  data: {
    m: messages.report,
    c: messages.common,
    maxPhotos: config.maxPhotos,
    photoHint: fill(messages.report.photoHint, { n: config.maxPhotos }),
    canNotify: subscribe.enabled(),
    community: null, // { code, name, center } from a community QR code
    communityLabel: '',
    workerLabel: '', // set for a bound grid worker: their reports are patrol finds
    ...fresh()
  },

  onLoad(options) {
    let scene = '';
    try {
      scene = options && options.scene ? decodeURIComponent(options.scene) : '';
    } catch (err) {
      scene = '';
    }
    if (!scene && typeof getApp === 'function') {
      const app = getApp();
      scene = (app && app.globalData && app.globalData.scene) || '';
    }
    if (scene) this.loadCommunity(scene.slice(0, 32));
  },

  onShow() {
    return this.loadWorker();
  },

  // Whether this user is a bound worker (bound in 我的 since the last visit, perhaps).
  async loadWorker() {
    try {
      const { worker } = await api.worker();
      this.setData({ workerLabel: worker ? fill(messages.report.patrolAs, { name: worker.name,
        area: (worker.area && worker.area.name) || '' }) : '' });
    } catch (err) {
      // unknown for now: the form works the same, the server decides what a report is
    }
  },

  // The community the QR code names; an unknown one is still sent along with the report.
  async loadCommunity(code) {
    this.setData({ community: { code, name: '', center: null },
      communityLabel: fill(messages.report.communityUnknown, { code }) });
    try {
      const found = await api.community(code);
      this.setData({ community: { code, name: found.name, center: found.center },
        communityLabel: fill(messages.report.community, { name: found.name }) });
    } catch (err) {
      // Not known to the server (404) or not reachable: the code still goes with the report.
    }
  },

  // -- the form -----------------------------------------------------------------------------

  async addPhoto() {
    const room = this.data.maxPhotos - this.data.photos.length;
    if (room <= 0) return;
    let chosen;
    try {
      chosen = await call((cb) => wx.chooseMedia({ count: room, mediaType: ['image'],
        sourceType: ['camera', 'album'], sizeType: ['compressed'], ...cb }));
    } catch (err) {
      if (!cancelled(err)) this.setData({ error: messages.errors.photoCompress, retryAction: '' });
      return;
    }
    const added = [];
    try {
      for (const file of chosen.tempFiles || []) {
        const small = await call((cb) => wx.compressImage({ src: file.tempFilePath,
          quality: config.photoQuality, ...cb }));
        added.push(small.tempFilePath);
      }
    } catch (err) {
      this.setData({ error: messages.errors.photoCompress, retryAction: '' });
    }
    if (added.length) this.setData({ photos: this.data.photos.concat(added).slice(0, this.data.maxPhotos) });
  },

  removePhoto(e) {
    const index = Number(e.currentTarget.dataset.index);
    this.setData({ photos: this.data.photos.filter((p, i) => i !== index) });
  },

  onText(e) {
    this.setData({ text: e.detail.value });
  },

  onAddress(e) {
    this.setData({ address: e.detail.value });
  },

  // The map picker (GCJ-02, as WeChat's maps give it), opened on the community if scanned.
  async choosePlace() {
    const where = {};
    const center = this.data.community && this.data.community.center;
    if (center) {
      where.latitude = center.lat;
      where.longitude = center.lon;
    }
    try {
      const res = await call((cb) => wx.chooseLocation({ ...where, ...cb }));
      const location = { lat: res.latitude, lon: res.longitude, coord: 'gcj02' };
      this.setData({ location, error: '',
        placeLabel: fill(messages.report.placeChosen, { name: res.name || res.address || '' }) });
      return location;
    } catch (err) {
      if (!cancelled(err)) this.setData({ error: messages.errors.chooseLocation, retryAction: '' });
      return null;
    }
  },

  async useCurrent() {
    try {
      const res = await call((cb) => wx.getLocation({ type: 'gcj02', ...cb }));
      const location = { lat: res.latitude, lon: res.longitude, coord: 'gcj02' };
      this.setData({ location, placeLabel: messages.report.placeCurrent, error: '' });
      return location;
    } catch (err) {
      const denied = err && err.errMsg && /auth|deny|denied/i.test(err.errMsg);
      this.setData({ error: denied ? messages.errors.locationDenied : messages.errors.chooseLocation,
        retryAction: '' });
      return null;
    }
  },

  async submit() {
    const text = (this.data.text || '').trim();
    if (!text) {
      this.setData({ error: messages.report.needWords, retryAction: '' });
      return;
    }
    const address = (this.data.address || '').trim();
    const community = this.data.community ? this.data.community.code : '';
    if (!this.data.location && !address && !community) {
      this.setData({ error: messages.report.needPlace, retryAction: '' });
      return;
    }
    this.setData({ phase: 'busy', busyText: messages.common.sending, error: '' });
    try {
      const turn = await api.startReport({ text, address, community,
        location: this.data.location, photos: this.data.photos }, (p) => this.progress(p));
      await this.handleTurn(turn);
    } catch (err) {
      this.failed(err, 'submit', 'form');
    }
  },

  progress(p) {
    const busyText = p.retry ? fill(messages.report.retrying, { n: p.retry })
      : fill(messages.report.uploading, { i: p.photo, n: p.photos });
    this.setData({ busyText });
  },

  failed(err, retryAction, phase) {
    const message = err && err.message ? err.message : messages.errors.server;
    this.setData({ phase, error: message, retryAction });
  },

  onRetry() {
    const action = this.data.retryAction;
    this.setData({ error: '' });
    if (action && typeof this[action] === 'function') this[action]();
  },

  // -- the dialog's answers -------------------------------------------------------------------

  async handleTurn(turn) {
    const prompt = repliesText(turn);
    if (turn.case) {
      this.setData({ phase: 'done', caseNumber: turn.case.number, prompt, error: '' });
      return;
    }
    if (turn.step === 'confirm') {
      this.setData({ summary: prompt });
      await this.checkNearby();
      return;
    }
    if (CHOICE_STEPS.includes(turn.step)) {
      this.setData({ phase: 'choose', prompt, choices: lastButtons(turn), error: '' });
      return;
    }
    if (turn.step === 'await_location') {
      this.setData({ phase: 'place', prompt, error: '' });
      return;
    }
    // Not filed and nothing asked (a question answered, emergency advice, refused): say it.
    this.setData({ phase: 'info', prompt, choices: lastButtons(turn), error: '' });
  },

  // 「是这个吗？」: open cases of the same kind nearby, before filing a new one.
  async checkNearby() {
    this.setData({ phase: 'busy', busyText: messages.common.loading });
    try {
      const found = await api.nearby();
      const nearby = (found.cases || []).map((c) => ({
        number: c.number,
        line: fill(messages.report.nearbyItem, { item: c.item.name, status: c.status_label,
          distance: c.distance_m })
      }));
      this.setData({ phase: nearby.length ? 'nearby' : 'confirm', nearby, error: '' });
    } catch (err) {
      // Not shown, but nothing lost: the report can still be confirmed.
      this.setData({ phase: 'confirm', nearby: [], error: err.message, retryAction: 'checkNearby' });
    }
  },

  async send(text, location) {
    this.setData({ phase: 'busy', busyText: messages.common.sending, error: '' });
    this.lastSent = { text, location };
    try {
      await this.handleTurn(await api.reply(text, location));
    } catch (err) {
      this.failed(err, 'resend', 'info');
    }
  },

  resend() {
    const last = this.lastSent || { text: '' };
    return this.send(last.text, last.location);
  },

  pick(e) {
    return this.send(String(e.currentTarget.dataset.value));
  },

  async answerPlace() {
    const location = await this.choosePlace();
    if (location) await this.send('', location);
  },

  notThis() {
    this.setData({ phase: 'confirm' });
  },

  confirm() {
    return this.send('确认');
  },

  async follow(e) {
    const number = String(e.currentTarget.dataset.number);
    this.setData({ phase: 'busy', busyText: messages.common.sending, error: '' });
    try {
      const res = await api.follow(number);
      this.setData({ phase: 'followed', caseNumber: res.case.number,
        prompt: fill(messages.report.followed, { number: res.case.number }) });
    } catch (err) {
      this.setData({ phase: 'nearby', error: err.message, retryAction: '' });
    }
  },

  async startOver() {
    const pending = ['choose', 'place', 'nearby', 'confirm', 'info'].includes(this.data.phase);
    this.setData(fresh());
    if (pending) {
      try {
        await api.reply('取消');
      } catch (err) {
        // the unfinished report expires on the server by itself
      }
    }
  },

  notify() {
    return subscribe.ask().catch((err) => this.setData({ error: err.message, retryAction: '' }));
  },

  // -- 即办: a worker closes their own find with the photo after the work --------------------------

  onSpotNote(e) {
    this.setData({ onSpotNote: e.detail.value });
  },

  async onSpot() {
    let chosen;
    try {
      chosen = await call((cb) => wx.chooseMedia({ count: 1, mediaType: ['image'],
        sourceType: ['camera', 'album'], sizeType: ['compressed'], ...cb }));
      const small = await call((cb) => wx.compressImage({ src: chosen.tempFiles[0].tempFilePath,
        quality: config.photoQuality, ...cb }));
      this.setData({ afterPhoto: small.tempFilePath });
    } catch (err) {
      if (!cancelled(err)) this.setData({ error: messages.errors.photoCompress, retryAction: '' });
      return;
    }
    await this.sendOnSpot();
  },

  async sendOnSpot() {
    const number = this.data.caseNumber;
    this.setData({ phase: 'busy', busyText: fill(messages.report.uploading, { i: 1, n: 1 }),
      error: '' });
    try {
      await api.onSpot(number, this.data.afterPhoto, this.data.onSpotNote,
        (n) => this.setData({ busyText: fill(messages.report.retrying, { n }) }));
      this.setData({ phase: 'onspot', prompt: fill(messages.report.onSpotDone, { number }) });
    } catch (err) {
      this.failed(err, 'sendOnSpot', 'done');
    }
  },

  viewCase() {
    wx.navigateTo({ url: `/pages/case/index?number=${encodeURIComponent(this.data.caseNumber)}` });
  }
});
