// A grid worker in the WeCom (企业微信) app, as WeCom's servers deliver them: each message
// encrypted and signed the way WeCom does (AES-256-CBC with the app's EncodingAESKey, the
// 32-byte PKCS#7 padding, SHA-1 over token, timestamp, nonce and cipher text) and POSTed to
// the server's /wecom callback, which decrypts it with wechatpy. Replies are decrypted back.
const crypto = require('crypto');

const BLOCK = 32; // WeCom pads to 32 bytes, not AES's 16

function pad(buf) {
  const n = BLOCK - (buf.length % BLOCK);
  return Buffer.concat([buf, Buffer.alloc(n, n)]);
}

function wecomWorker({ base, corpId, token, aesKey, userId }) {
  const key = Buffer.from(`${aesKey}=`, 'base64');
  const iv = key.subarray(0, 16);
  let msgId = Date.now();

  function encrypt(xml) {
    const body = Buffer.from(xml, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(body.length);
    const plain = pad(Buffer.concat([crypto.randomBytes(16), length, body,
      Buffer.from(corpId, 'utf8')]));
    const cipher = crypto.createCipheriv('aes-256-cbc', key, iv);
    cipher.setAutoPadding(false);
    return Buffer.concat([cipher.update(plain), cipher.final()]).toString('base64');
  }

  function decrypt(encrypted) {
    const decipher = crypto.createDecipheriv('aes-256-cbc', key, iv);
    decipher.setAutoPadding(false);
    const plain = Buffer.concat([decipher.update(Buffer.from(encrypted, 'base64')),
      decipher.final()]);
    const unpadded = plain.subarray(0, plain.length - plain[plain.length - 1]);
    const length = unpadded.readUInt32BE(16);
    return unpadded.subarray(20, 20 + length).toString('utf8');
  }

  const sign = (...parts) => crypto.createHash('sha1').update(parts.sort().join('')).digest('hex');
  const cdata = (xml, tag) => ((xml.match(new RegExp(`<${tag}><!\\[CDATA\\[([\\s\\S]*?)\\]\\]></${tag}>`)) || [])[1]);

  async function send(inner) {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const nonce = String(Math.floor(Math.random() * 1e9));
    const encrypted = encrypt(inner);
    const query = new URLSearchParams({ msg_signature: sign(token, timestamp, nonce, encrypted),
      timestamp, nonce });
    const res = await fetch(`${base}/wecom?${query}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/xml' },
      body: `<xml><ToUserName><![CDATA[${corpId}]]></ToUserName><AgentID><![CDATA[1000002]]></AgentID>`
        + `<Encrypt><![CDATA[${encrypted}]]></Encrypt></xml>`
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`WeCom callback answered ${res.status}: ${text}`);
    const envelope = cdata(text, 'Encrypt');
    return envelope ? cdata(decrypt(envelope), 'Content') || '' : '';
  }

  const head = (type) => `<xml><ToUserName><![CDATA[${corpId}]]></ToUserName>`
    + `<FromUserName><![CDATA[${userId}]]></FromUserName>`
    + `<CreateTime>${Math.floor(Date.now() / 1000)}</CreateTime>`
    + `<MsgType><![CDATA[${type}]]></MsgType>`;

  return {
    // A photo from the phone: WeCom sends its media id; the server downloads it.
    photo(mediaId) {
      msgId += 1;
      return send(`${head('image')}<PicUrl><![CDATA[https://wework.qpic.cn/wwpic/${mediaId}/0]]></PicUrl>`
        + `<MediaId><![CDATA[${mediaId}]]></MediaId><MsgId>${msgId}</MsgId><AgentID>1000002</AgentID></xml>`);
    },
    say(words) {
      msgId += 1;
      return send(`${head('text')}<Content><![CDATA[${words}]]></Content>`
        + `<MsgId>${msgId}</MsgId><AgentID>1000002</AgentID></xml>`);
    }
  };
}

module.exports = { wecomWorker };
