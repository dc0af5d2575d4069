// 我的: the citizen's own cases (and those they follow), newest first, refreshed on every
// visit and by pulling down, so a status change shows the next time they look. At the foot, a
// grid worker binds their work identity with the one-time code an administrator gives them
// (`gridbot wechat worker-code`); 随手拍 is then their 巡查上报.
const api = require('../../utils/api.js');
const messages = require('../../utils/messages.js');
const { fill, when } = require('../../utils/format.js');

function row(c) {
  return {
    number: c.number,
    itemName: (c.item && c.item.name) || '',
    statusLabel: c.status_label,
    closed: c.status === 'closed' || c.status === 'rejected',
    own: c.own !== false,
    when: when(c.created_at)
  };
}

Page({
  data: {
    m: messages.mine,
    c: messages.common,
    loading: true,
    loaded: false,
    error: '',
    cases: [],
    workerLabel: '',
    workerKnown: false, // asked the server: the bind link shows only to a known non-worker
    showBind: false,
    bindCode: '',
    binding: false
  },

  onShow() {
    return Promise.all([this.load(), this.loadWorker()]);
  },

  async loadWorker() {
    try {
      const { worker } = await api.worker();
      this.setData({ workerKnown: true, workerLabel: worker ? fill(messages.mine.workerAs,
        { name: worker.name, area: (worker.area && worker.area.name) || '' }) : '' });
    } catch (err) {
      // not known now: neither the identity nor the bind link is shown
    }
  },

  openBind() {
    this.setData({ showBind: true });
  },

  onBindCode(e) {
    this.setData({ bindCode: e.detail.value });
  },

  async bind() {
    const code = (this.data.bindCode || '').trim();
    if (!code) return;
    this.setData({ binding: true, error: '' });
    try {
      const { worker } = await api.bindWorker(code);
      this.setData({ binding: false, showBind: false, bindCode: '',
        workerLabel: fill(messages.mine.workerAs, { name: worker.name,
          area: (worker.area && worker.area.name) || '' }) });
      wx.showToast({ title: messages.mine.bound, icon: 'success' });
    } catch (err) {
      this.setData({ binding: false, error: err.message });
    }
  },

  async onPullDownRefresh() {
    await this.load();
    wx.stopPullDownRefresh();
  },

  async load() {
    this.setData({ loading: true, error: '' });
    try {
      const res = await api.myCases();
      this.setData({ cases: (res.cases || []).map(row), loading: false, loaded: true });
    } catch (err) {
      this.setData({ loading: false, error: err.message });
    }
  },

  openCase(e) {
    const number = e.detail && e.detail.number;
    if (number) wx.navigateTo({ url: `/pages/case/index?number=${encodeURIComponent(number)}` });
  },

  goReport() {
    wx.switchTab({ url: '/pages/report/index' });
  }
});
