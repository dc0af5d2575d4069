// Staff acting on a case the way they do in the console: log in through the form (its
// double-submit token), then the case action API with the session's CSRF token.
function cookiesOf(res) {
  const all = typeof res.headers.getSetCookie === 'function' ? res.headers.getSetCookie() : [];
  return Object.fromEntries(all.map((c) => c.split(';')[0].split('=')).map(([k, ...v]) => [k, v.join('=')]));
}

function cookieHeader(jar) {
  return Object.entries(jar).map(([k, v]) => `${k}=${v}`).join('; ');
}

async function consoleLogin(base, username, password) {
  const jar = {};
  const form = await fetch(`${base}/console/login`);
  Object.assign(jar, cookiesOf(form));
  const html = await form.text();
  const token = (html.match(/name="csrf_token" value="([^"]+)"/) || [])[1];
  if (!token) throw new Error('no login token on the console login page');
  const res = await fetch(`${base}/console/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: cookieHeader(jar) },
    body: new URLSearchParams({ username, password, csrf_token: token }).toString()
  });
  if (res.status !== 302) throw new Error(`console login failed: ${res.status} ${await res.text()}`);
  Object.assign(jar, cookiesOf(res));
  const page = await fetch(`${base}/console/cases`, { headers: { Cookie: cookieHeader(jar) } });
  const csrf = ((await page.text()).match(/<meta name="csrf-token" content="([^"]+)"/) || [])[1];
  if (!csrf) throw new Error('no CSRF token in the console page');
  return {
    async act(number, action, reason = '') {
      const r = await fetch(`${base}/console/api/cases/${encodeURIComponent(number)}/actions/${action}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf,
          Cookie: cookieHeader(jar) },
        body: JSON.stringify(reason ? { reason } : {})
      });
      const body = await r.json();
      if (r.status !== 200) throw new Error(`${action} on ${number}: ${r.status} ${JSON.stringify(body)}`);
      return body;
    }
  };
}

module.exports = { consoleLogin };
