// scripts/check.js, the build check: the real mini-program passes; each kind of breakage in a
// copy of it is caught (so the check can fail).
const fs = require('fs');
const os = require('os');
const path = require('path');
const { check } = require('../scripts/check');
const { ROOT } = require('./helpers');

function copy() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mp-check-'));
  ['app.js', 'app.json', 'app.wxss', 'config.js', 'project.config.json', 'sitemap.json']
    .forEach((f) => fs.copyFileSync(path.join(ROOT, f), path.join(dir, f)));
  ['pages', 'components', 'utils'].forEach((d) => fs.cpSync(path.join(ROOT, d), path.join(dir, d),
    { recursive: true }));
  return dir;
}

function edit(dir, file, change) {
  const p = path.join(dir, file);
  fs.writeFileSync(p, change(fs.readFileSync(p, 'utf8')));
}

test('the mini-program as committed passes the build check', () => {
  expect(check(ROOT)).toEqual([]);
}, 30000);

test('a page named in app.json but missing a file is caught', () => {
  const dir = copy();
  fs.rmSync(path.join(dir, 'pages/mine/index.wxss'));
  edit(dir, 'app.json', (s) => s.replace('"pages/case/index"', '"pages/case/index", "pages/gone/index"'));
  const problems = check(dir);
  expect(problems).toContain('pages/mine/index.wxss: missing (page in app.json)');
  expect(problems.filter((p) => p.startsWith('pages/gone/index'))).toHaveLength(4);
}, 30000);

test('WXML that does not parse is caught by the compiler', () => {
  const dir = copy();
  edit(dir, 'pages/case/index.wxml', (s) => s.replace('</block>', '</view>'));
  expect(check(dir).join('\n')).toMatch(/WXML does not compile: .*pages\/case\/index\.wxml/);
}, 30000);

test('a binding to a handler the page does not define is caught', () => {
  const dir = copy();
  edit(dir, 'pages/report/index.wxml', (s) => s.replace('bindtap="submit"', 'bindtap="sumbit"'));
  edit(dir, 'components/case-card/index.wxml', (s) => s.replace('bindtap="onTap"', 'bind:tap="onTapp"'));
  const problems = check(dir);
  expect(problems).toContain('pages/report/index.wxml: bindtap="sumbit" but pages/report/index.js defines no sumbit');
  expect(problems).toContain('components/case-card/index.wxml: bind:tap="onTapp" but components/case-card/index.js defines no onTapp');
}, 30000);

test('broken JSON and a missing component are caught', () => {
  const dir = copy();
  edit(dir, 'pages/mine/index.json', (s) => s.replace('"/components/case-card/index"', '"/components/card/index"'));
  edit(dir, 'pages/case/index.json', (s) => s.replace('{', '{,'));
  const problems = check(dir).join('\n');
  expect(problems).toContain('pages/mine/index.json: component <case-card> not found at /components/card/index');
  expect(problems).toMatch(/pages\/case\/index\.json: not valid JSON/);
}, 30000);
