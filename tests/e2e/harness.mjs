// Shared set-up of the browser tests: a static server for dist/ on loopback,
// headless Debian Chromium through playwright-core, and a record of every
// request the page makes.
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.mpk': 'application/octet-stream',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.webmanifest': 'application/manifest+json',
};

/**
 * Serves `dir` on 127.0.0.1 (`port`, or a free one); resolves to
 * { url, close, hits }. `close` also drops open keep-alive connections, so
 * the site is then down.
 */
export async function serveDist(dir, port = 0) {
  const hits = [];
  const server = createServer(async (req, res) => {
    hits.push({ method: req.method, url: req.url });
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    let file = normalize(join(dir, path));
    if (!file.startsWith(normalize(dir))) {
      res.writeHead(403).end();
      return;
    }
    try {
      if ((await stat(file)).isDirectory()) file = join(file, 'index.html');
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/`,
    hits,
    close: () =>
      new Promise((resolve) => {
        server.close(resolve);
        server.closeAllConnections();
      }),
  };
}

const madeDirs = [];
process.on('exit', () => {
  for (const dir of madeDirs) rmSync(dir, { recursive: true, force: true });
});

/** A new folder under the system's temporary one (`prefix` + a random tail), removed when the test process exits. */
export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  madeDirs.push(dir);
  return dir;
}

const BASE_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** Starts Chromium; `webgpu` adds the flag that exposes SwiftShader's WebGPU adapter. */
export async function launch({ webgpu }) {
  const args = webgpu ? [...BASE_FLAGS, '--enable-unsafe-webgpu'] : BASE_FLAGS;
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args });
}

/**
 * One server of `dir` and one browser (`launch(options)`) for every test of a
 * file: registers the file's `before` and `after` hooks and returns an object
 * whose `server` and `browser` are set once `before` has run.
 */
export function sharedBrowser(dir, options) {
  const shared = {};
  before(async () => {
    shared.server = await serveDist(dir);
    shared.browser = await launch(options);
  });
  after(async () => {
    await shared.browser?.close();
    await shared.server?.close();
  });
  return shared;
}

/**
 * Opens the page in a fresh context (no service worker or cache from another
 * test) and records every request, the page's and its service worker's
 * (`worker: true`), and every page error / console error. `contextOptions`
 * are Playwright's (viewport, touch...). Returns { page, requests, errors }.
 */
export async function openPage(browser, url, contextOptions = {}) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  const requests = [];
  const errors = [];
  const record = (r, worker) =>
    requests.push({ url: r.url(), method: r.method(), body: r.postDataBuffer(), worker });
  page.on('request', (r) => record(r, false));
  context.on('request', (r) => r.serviceWorker() && record(r, true));
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  await page.goto(url);
  return { page, requests, errors };
}

/**
 * Makes `page` see `cores` cores (`navigator.hardwareConcurrency`) from a
 * reload on: the page gives a CPU diagnosis a helper worker for branch B
 * only where it has cores to spare.
 */
export async function seeCores(page, cores) {
  await page.addInitScript((n) => Object.defineProperty(navigator, 'hardwareConcurrency', { get: () => n }), cores);
  await page.reload();
}

/**
 * The privacy invariant: requests were recorded, and every one (the page's
 * and its service worker's) is a GET of `origin` without a body.
 */
export function assertPrivate(requests, origin) {
  assert.ok(requests.length > 0, 'requests were recorded');
  for (const r of requests) {
    assert.equal(new URL(r.url).origin, new URL(origin).origin, `same origin: ${r.url}`);
    assert.equal(r.method, 'GET', `GET only: ${r.method} ${r.url}`);
    assert.equal(r.body, null, `no body: ${r.url}`);
  }
}

/**
 * Waits for the diagnosis of the CT on screen by the network chosen in the
 * menu (opening a CT starts one by itself, and so does picking another
 * network) or fails with the page's error message; returns the report the
 * page publishes as JSON. With `rerun`, clicks "Diagnose" first (once the
 * current run has ended) and waits for that new run.
 */
export async function diagnoseOnPage(page, timeout, { rerun = false } = {}) {
  const preset = await page.getByTestId('diagnose-preset').inputValue();
  let which = `[data-preset="${preset}"]`;
  if (rerun) {
    // The button is aria-disabled while a run is going.
    await page.locator('[data-testid="diagnose"][aria-disabled="false"]').waitFor({ timeout });
    const ended = page.locator('[data-testid="diagnosis-json"], [data-testid="diagnosis-error"]');
    const last = Number(await ended.getAttribute('data-run'));
    await page.getByTestId('diagnose').click();
    which += `[data-run="${last + 1}"]`;
  }
  const json = page.locator(`[data-testid="diagnosis-json"]${which}`);
  const failure = page.locator(`[data-testid="diagnosis-error"]${which}`);
  await Promise.race([
    json.waitFor({ state: 'attached', timeout }),
    failure.waitFor({ state: 'attached', timeout }).then(async () => {
      throw new Error(`diagnosis failed: ${await failure.textContent()}`);
    }),
  ]);
  return JSON.parse(await json.textContent());
}

/** Starts recording the longest gap between ticks of a 20 ms timer on the page's thread. */
export async function recordPauses(page) {
  await page.evaluate(() => {
    const pauses = { last: performance.now(), longest: 0 };
    window.dsanPauses = pauses;
    pauses.timer = setInterval(() => {
      const now = performance.now();
      pauses.longest = Math.max(pauses.longest, now - pauses.last);
      pauses.last = now;
    }, 20);
  });
}

/** Stops the recording; the longest pause in ms. */
export async function longestPause(page) {
  return page.evaluate(() => {
    clearInterval(window.dsanPauses.timer);
    return window.dsanPauses.longest;
  });
}

const MODEL_WEIGHTS = new URL('../../model-weights/', import.meta.url).pathname;

/**
 * `dsan predict`'s model options for the model the page diagnoses with by
 * default: the bundled default model that model-weights/models.json names,
 * or the seeded untrained web-default network when none ships.
 */
export function defaultModelArgs() {
  const index = JSON.parse(readFileSync(join(MODEL_WEIGHTS, 'models.json'), 'utf8'));
  return index.default
    ? ['--weights', join(MODEL_WEIGHTS, index.default)]
    : ['--preset', 'web-default', '--seed', '42'];
}
