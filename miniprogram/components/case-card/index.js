// One case in 我的: what, status, when; a tap opens it.
const messages = require('../../utils/messages.js');

Component({
  properties: {
    item: { type: Object, value: {} }
  },
  data: { following: messages.mine.following },
  methods: {
    onTap() {
      this.triggerEvent('open', { number: this.data.item.number });
    }
  }
});
