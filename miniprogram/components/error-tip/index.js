// A failed request, said plainly, with a retry button (no blank screen, no silent failure).
const messages = require('../../utils/messages.js');

Component({
  properties: {
    message: { type: String, value: '' },
    retryText: { type: String, value: messages.common.retry },
    canRetry: { type: Boolean, value: true }
  },
  methods: {
    onRetry() {
      this.triggerEvent('retry');
    }
  }
});
