// 我的: the citizen's own cases (and those they follow), newest first, refreshed on every
// visit and by pulling down, so a status change shows the next time they look.
const api = require('../../utils/api.js');
const messages = require('../../utils/messages.js');
const { when } = require('../../utils/format.js');

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
    cases: []
  },

  onShow() {
    return this.load();
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
