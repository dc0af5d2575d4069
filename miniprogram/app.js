// The mini-program: logs in once at launch (quietly; every request logs in again when it
// must) and keeps the community a QR code was scanned for.
const api = require('./utils/api.js');

App({
  globalData: { scene: '' },

  onLaunch(options) {
    this.globalData.scene = sceneOf(options);
    api.login().catch(() => {
      // no network at launch: the first request tries again and says so
    });
  },

  onShow(options) {
    const scene = sceneOf(options);
    if (scene) this.globalData.scene = scene;
  }
});

// The community code a QR code (gridbot qrcode --community CODE) carries as its scene.
function sceneOf(options) {
  const raw = options && options.query && options.query.scene;
  if (!raw) return '';
  try {
    return decodeURIComponent(raw).slice(0, 32);
  } catch (err) {
    return '';
  }
}
