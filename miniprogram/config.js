// What a city sets before uploading the mini-program (README: "WeChat mini-program").
// serverUrl: the HTTPS address of its gridbot server, which must also be listed as a
// "request" and "uploadFile" legal domain in the mini-program's admin console.
// subscribeTemplateId: the subscribe-message template of case updates (the same id as
// wechat.mp_subscribe_template_id on the server); empty = no consent is asked.
module.exports = {
  serverUrl: 'https://gridbot.example.gov.cn',
  subscribeTemplateId: '',
  // Photos: at most this many per report (the server takes 9), compressed to this quality.
  maxPhotos: 9,
  photoQuality: 60,
  // Upload retries on a poor network: the waits before the 2nd and 3rd attempts (ms).
  retryDelaysMs: [1000, 3000],
  requestTimeoutMs: 15000,
  uploadTimeoutMs: 60000
};
