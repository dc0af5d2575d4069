// One case: its status, what and where, the timeline in public words (the handler's note
// and after-photos at 办结 included: thumbnails, tapped open full-size), the rating 1–5 with a comment once it is closed, and the consent to be
// told of the next step.
const api = require('../../utils/api.js');
const messages = require('../../utils/messages.js');
const subscribe = require('../../utils/subscribe.js');
const { fill, when } = require('../../utils/format.js');

const STARS = [1, 2, 3, 4, 5];

function view(c) {
  return {
    number: c.number,
    statusLabel: c.status_label,
    itemName: (c.item && c.item.label) || (c.item && c.item.name) || '',
    address: c.address || (c.grid && c.grid.name) || '',
    text: c.text || '',
    own: c.own !== false,
    photos: c.photos ? fill(messages.caseView.photos, { n: c.photos }) : '',
    due: c.status === 'closed' || c.status === 'rejected' ? '' : when(c.handling_due),
    open: c.status !== 'closed' && c.status !== 'rejected',
    rating: c.rating,
    ratedText: c.rating ? fill(messages.caseView.rated, { score: c.rating }) : '',
    canRate: c.status === 'closed' && !c.rating && c.own !== false,
    timeline: (c.timeline || []).map((e, index) => ({ key: `${index}`, when: when(e.at),
      label: e.status_label, note: e.note,
      photos: (e.photos || []).map((p, n) => ({ thumb: api.photoUrl(p.thumb),
        full: api.photoUrl(p.full), label: fill(messages.caseView.afterPhoto, { n: n + 1 }) })) }))
  };
}

Page({
  data: {
    m: messages.caseView,
    c: messages.common,
    stars: STARS.map((n) => ({ n, label: fill(messages.caseView.star, { n }) })),
    number: '',
    item: null,
    loading: true,
    error: '',
    retryAction: '',
    score: 0,
    comment: '',
    sending: false,
    thanks: '',
    canNotify: subscribe.enabled(),
    notifyText: messages.report.notify
  },

  onLoad(options) {
    this.setData({ number: (options && options.number) || '' });
    return this.load();
  },

  async onPullDownRefresh() {
    await this.load();
    wx.stopPullDownRefresh();
  },

  async load() {
    this.setData({ loading: true, error: '' });
    try {
      const found = await api.caseDetail(this.data.number);
      this.setData({ item: view(found), loading: false });
    } catch (err) {
      this.setData({ loading: false, error: err.message, retryAction: 'load' });
    }
  },

  onRetry() {
    const action = this.data.retryAction;
    this.setData({ error: '' });
    if (action && typeof this[action] === 'function') this[action]();
  },

  pickScore(e) {
    this.setData({ score: Number(e.currentTarget.dataset.score), error: '' });
  },

  // A thumbnail tapped: that step's photos full-size, starting from the one tapped.
  previewPhoto(e) {
    const { step, index } = e.currentTarget.dataset;
    const found = this.data.item && this.data.item.timeline[Number(step)];
    if (!found || !found.photos.length) return;
    const urls = found.photos.map((p) => p.full);
    wx.previewImage({
      current: urls[Number(index)] || urls[0],
      urls,
      fail: () => this.setData({ error: messages.caseView.photoFailed, retryAction: '' })
    });
  },

  onComment(e) {
    this.setData({ comment: e.detail.value });
  },

  async submitRating() {
    if (!this.data.score) {
      this.setData({ error: messages.caseView.rateChoose, retryAction: '' });
      return;
    }
    this.setData({ sending: true, error: '' });
    try {
      const rated = await api.rate(this.data.number, this.data.score, this.data.comment);
      const thanks = this.data.score <= 2 ? messages.caseView.lowScore : messages.caseView.thanks;
      this.setData({ sending: false, thanks });
      await this.load(); // the timeline and status after the rating (1–2 reopens the case)
      if (!this.data.item) this.setData({ item: view(rated) });
    } catch (err) {
      this.setData({ sending: false, error: err.message, retryAction: 'submitRating' });
    }
  },

  notify() {
    return subscribe.ask().catch((err) => this.setData({ error: err.message, retryAction: '' }));
  }
});
