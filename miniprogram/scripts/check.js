#!/usr/bin/env node
// The build check, without the WeChat developer tools: app.json and every page and component
// it reaches (the four files, JSON that parses, usingComponents that exist), the WXML and
// WXSS through WeChat's own compilers (wcc / wcsc, from the miniprogram-compiler package),
// and every bind/catch handler in a template defined by that page's or component's JS.
//   node scripts/check.js [ROOT]   (exit 1 and one line per problem when something is wrong)
const fs = require('fs');
const path = require('path');
const vm = require('vm');

const ROOT = path.resolve(__dirname, '..');
const PARTS = ['.js', '.wxml', '.wxss', '.json'];
const LIFECYCLE = new Set(['onLoad', 'onShow', 'onReady', 'onHide', 'onUnload']);

function readJson(file, problems) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    problems.push(`${file}: ${fs.existsSync(file) ? `not valid JSON (${err.message})` : 'missing'}`);
    return null;
  }
}

// The definition a page's or component's JS registers, with wx and the rest stubbed.
function definitionOf(jsFile, problems) {
  let found = null;
  const capture = (def) => {
    found = def;
  };
  const moduleCache = new Map();
  function requireFrom(dir) {
    return (spec) => {
      if (!spec.startsWith('.') && !spec.startsWith('/')) return require(spec);
      const target = require.resolve(path.resolve(dir, spec));
      if (!moduleCache.has(target)) {
        const mod = { exports: {} };
        moduleCache.set(target, mod);
        run(target, mod);
      }
      return moduleCache.get(target).exports;
    };
  }
  const sandbox = {
    Page: capture, Component: capture, App: capture, Behavior: (d) => d,
    getApp: () => ({ globalData: {} }), wx: new Proxy({}, { get: () => () => undefined }),
    console, setTimeout, clearTimeout, Promise, Date, JSON, Math, Number, String, Object,
    Array, Error, RegExp, encodeURIComponent, decodeURIComponent
  };
  function run(file, mod) {
    const code = fs.readFileSync(file, 'utf8');
    const fn = vm.runInNewContext(
      `(function (require, module, exports) {${code}\n})`, sandbox, { filename: file });
    fn(requireFrom(path.dirname(file)), mod, mod.exports);
  }
  try {
    run(jsFile, { exports: {} });
  } catch (err) {
    problems.push(`${jsFile}: does not load (${err.message})`);
    return null;
  }
  if (!found) problems.push(`${jsFile}: registers no Page or Component`);
  return found;
}

function handlersOf(def, isComponent) {
  const names = new Set();
  if (!def) return names;
  const source = isComponent ? def.methods || {} : def;
  Object.keys(source).forEach((k) => {
    if (typeof source[k] === 'function') names.add(k);
  });
  return names;
}

// bindtap="x", bind:tap="x", catchtap="x", capture-bind:tap="x": the named handler.
function boundHandlers(wxml) {
  const found = [];
  const re = /\s((?:capture-)?(?:bind|catch|mut-bind):?[\w-]+)\s*=\s*"([^"]*)"/g;
  let m = re.exec(wxml);
  while (m) {
    if (!m[2].includes('{{')) found.push({ attr: m[1], name: m[2].trim() });
    m = re.exec(wxml);
  }
  return found;
}

function checkUnit(root, rel, kind, problems, seen) {
  if (seen.has(rel)) return;
  seen.add(rel);
  const base = path.join(root, rel);
  const missing = PARTS.filter((ext) => !fs.existsSync(base + ext));
  missing.forEach((ext) => problems.push(`${rel}${ext}: missing (${kind} in app.json)`));
  if (missing.length) return;
  const json = readJson(`${base}.json`, problems);
  if (!json) return;
  const isComponent = kind === 'component';
  if (isComponent && json.component !== true) {
    problems.push(`${rel}.json: a component needs "component": true`);
  }
  Object.entries(json.usingComponents || {}).forEach(([tag, ref]) => {
    const target = ref.startsWith('/') ? ref.slice(1)
      : path.posix.join(path.posix.dirname(rel), ref);
    if (!fs.existsSync(path.join(root, `${target}.json`))) {
      problems.push(`${rel}.json: component <${tag}> not found at ${ref}`);
      return;
    }
    checkUnit(root, target, 'component', problems, seen);
  });
  const wxml = fs.readFileSync(`${base}.wxml`, 'utf8');
  const defined = handlersOf(definitionOf(`${base}.js`, problems), isComponent);
  boundHandlers(wxml).forEach(({ attr, name }) => {
    if (!defined.has(name)) problems.push(`${rel}.wxml: ${attr}="${name}" but ${rel}.js defines no ${name}`);
  });
  if (!isComponent) {
    const def = definitionOf(`${base}.js`, []);
    Object.keys(def || {}).filter((k) => LIFECYCLE.has(k) && typeof def[k] !== 'function')
      .forEach((k) => problems.push(`${rel}.js: ${k} is not a function`));
  }
}

function compile(root, problems) {
  let compiler;
  try {
    compiler = require('miniprogram-compiler');
  } catch (err) {
    problems.push('miniprogram-compiler is not installed: run npm ci in miniprogram/');
    return;
  }
  try {
    compiler.wxmlToJs(root);
  } catch (err) {
    problems.push(`WXML does not compile: ${String(err.message || err).trim()}`);
  }
  try {
    compiler.wxssToJs(root);
  } catch (err) {
    problems.push(`WXSS does not compile: ${String(err.message || err).trim()}`);
  }
}

function check(root = ROOT) {
  const problems = [];
  const app = readJson(path.join(root, 'app.json'), problems);
  readJson(path.join(root, 'project.config.json'), problems);
  if (!app) return problems;
  if (!Array.isArray(app.pages) || !app.pages.length) problems.push('app.json: no pages');
  if (!fs.existsSync(path.join(root, 'app.js'))) problems.push('app.js: missing');
  const seen = new Set();
  (app.pages || []).forEach((page) => checkUnit(root, page, 'page', problems, seen));
  ((app.tabBar && app.tabBar.list) || []).forEach((tab) => {
    if (!(app.pages || []).includes(tab.pagePath)) {
      problems.push(`app.json: tabBar page ${tab.pagePath} is not in pages`);
    }
  });
  if (app.sitemapLocation && !fs.existsSync(path.join(root, app.sitemapLocation))) {
    problems.push(`app.json: sitemap ${app.sitemapLocation} missing`);
  }
  compile(root, problems);
  return problems;
}

module.exports = { check, boundHandlers };

if (require.main === module) {
  const problems = check(path.resolve(process.argv[2] || ROOT));
  problems.forEach((p) => console.error(p));
  console.log(problems.length ? `${problems.length} problem(s)` : 'mini-program check: OK');
  process.exit(problems.length ? 1 : 0);
}
