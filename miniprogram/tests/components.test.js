// The two components: error-tip (a failure said, with retry) and case-card (a case in 我的).
const h = require('./helpers');
const messages = require('../utils/messages');

test('error-tip shows nothing without a message', () => {
  const tip = h.render('components/error-tip/index', { message: '' });
  expect(h.all(tip, '.error-tip')).toHaveLength(0);
});

test('error-tip says the message and fires retry on its button', async () => {
  const tip = h.render('components/error-tip/index', { message: '网络不太好' });
  expect(h.text(tip, '.error-text')).toBe('网络不太好');
  expect(h.text(tip, '.error-retry')).toBe(messages.common.retry);
  const retried = jest.fn();
  tip.addEventListener('retry', retried);
  h.tap(tip, '.error-retry');
  await h.until(() => retried.mock.calls.length === 1, 'retry');
});

test('error-tip without retry has no button', () => {
  const tip = h.render('components/error-tip/index', { message: '请先选择分数。', canRetry: false });
  expect(h.text(tip)).toBe('请先选择分数。');
  expect(h.all(tip, '.error-retry')).toHaveLength(0);
});

test('case-card shows the case and opens it by number', async () => {
  const card = h.render('components/case-card/index', { item: { number: 'N7', itemName: '路灯',
    statusLabel: '已结案', closed: true, own: false, when: '12月3日 09:00' } });
  const shown = h.text(card);
  ['路灯', '已结案', 'N7', '12月3日 09:00', messages.mine.following]
    .forEach((part) => expect(shown).toContain(part));
  expect(h.all(card, '.case-status-done')).toHaveLength(1);
  const opened = jest.fn();
  card.addEventListener('open', opened);
  h.tap(card, '.case-card');
  await h.until(() => opened.mock.calls.length === 1, 'open');
  expect(opened.mock.calls[0][0].detail).toEqual({ number: 'N7' });
});

test('case-card of my own open case has no following mark', () => {
  const card = h.render('components/case-card/index', { item: { number: 'N8', itemName: '井盖',
    statusLabel: '处置中', closed: false, own: true, when: '' } });
  expect(h.text(card)).not.toContain(messages.mine.following);
  expect(h.all(card, '.case-status-done')).toHaveLength(0);
});
