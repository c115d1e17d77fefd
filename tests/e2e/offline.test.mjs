// Offline use: after one visit the service worker (public/sw.js) holds every
// file of the build, so with the site down the page still loads and a sample
// case is still opened and diagnosed; a new build replaces the stored one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveDist, launch, openPage, diagnoseOnPage, assertPrivate } from './harness.mjs';

const DIST = process.env.DIST_DIR ?? new URL('../../dist/', import.meta.url).pathname;
const PRECACHE_SH = new URL('../../public/precache.sh', import.meta.url).pathname;
const SAMPLE = 'covid-19-like-1.zip';

/** Waits until the worker is active and controls the page (reloading once if needed). */
async function untilControlled(page) {
  const controlled = await page.evaluate(() =>
    Promise.race([
      navigator.serviceWorker.ready.then(() => navigator.serviceWorker.controller !== null),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no active service worker in 120 s')), 120_000)),
    ]),
  );
  if (!controlled) {
    await page.reload();
    assert.ok(await page.evaluate(() => navigator.serviceWorker.controller !== null), 'controlled after reload');
  }
  return controlled;
}

/** The page's caches: their names and the URLs in the build's own. */
function cachesOf(page) {
  return page.evaluate(async () => {
    const names = await caches.keys();
    const ours = names.find((n) => n.startsWith('dsan-ct-'));
    const urls = ours ? (await (await caches.open(ours)).keys()).map((r) => r.url) : [];
    return { names, urls };
  });
}

test('after one visit the page loads and diagnoses a sample with the site down', async () => {
  const server = await serveDist(DIST);
  const browser = await launch({ webgpu: false });
  try {
    const { page, requests, errors } = await openPage(browser, server.url);
    const badge = page.locator('[data-testid="backend-badge"][data-backend]');
    await badge.waitFor({ timeout: 60_000 });

    // Online: the worker stores the build and takes control of the page.
    const started = Date.now();
    const controlled = await untilControlled(page);
    console.log(`# bench: service worker active ${Date.now() - started} ms after the page ran${controlled ? '' : ' (and a reload)'}`);
    const listed = await page.evaluate(() => fetch('precache.json').then((r) => r.json()));
    const cached = await cachesOf(page);
    assert.deepEqual(cached.names, [`dsan-ct-${listed.version}`], 'one cache, named after the build');
    assert.deepEqual(cached.urls.sort(), listed.files.map((f) => new URL(f, server.url).href).sort());
    for (const file of ['index.html', 'boot.js', 'manifest.webmanifest', 'icon.svg', `samples/${SAMPLE}`]) {
      assert.ok(listed.files.includes(file), `${file} is stored`);
    }
    for (const ext of ['.js', '.wasm', '.css']) {
      // Trunk's content hash: up to 16 hex digits (leading zeros dropped).
      const hashed = new RegExp(`-[0-9a-f]{8,16}(_bg)?\\${ext}$`);
      assert.ok(listed.files.some((f) => hashed.test(f)), `the hashed ${ext} is stored`);
    }

    // Everything the site saw while online was a GET of one of its own paths,
    // and so was every request of the page and of its worker.
    assert.ok(server.hits.length > 0);
    for (const h of server.hits) {
      assert.equal(h.method, 'GET', `GET only: ${h.method} ${h.url}`);
      assert.ok(h.url.startsWith('/'), `a path on this site: ${h.url}`);
    }
    assert.ok(requests.some((r) => r.worker), "the worker's requests were recorded");
    assertPrivate(requests, server.url);

    // Offline: the site goes down (open connections too), the page is reloaded.
    const seen = server.hits.length;
    await server.close();
    await assert.rejects(fetch(server.url), 'the site is down');
    const responses = [];
    page.on('response', (r) => responses.push(r));
    await page.reload();
    await badge.waitFor({ timeout: 60_000 });
    await page.getByTestId('sample-menu').selectOption(SAMPLE);
    await page.getByTestId('volume-info').waitFor({ timeout: 60_000 });
    const report = await diagnoseOnPage(page, 300_000);
    const shown = Number(await page.getByTestId('result-probability').textContent());
    assert.ok(shown >= 0 && shown <= 1, `probability ${shown}`);
    assert.ok(Math.abs(shown - report.diagnosis.positive_probability) <= 1e-3);

    assert.equal(server.hits.length, seen, 'nothing reached the site');
    for (const end of ['/', '.wasm', `/samples/${SAMPLE}`]) {
      assert.ok(responses.some((r) => r.url().endsWith(end)), `loaded: ...${end}`);
    }
    for (const r of responses) assert.ok(r.fromServiceWorker(), `from the worker's cache: ${r.url()}`);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await server.close();
  }
});

test('a new build replaces the stored one', async () => {
  // Build B: build A with one file changed, listed again by the build hook.
  const dirB = mkdtempSync(join(tmpdir(), 'dsan-ct-build-b-'));
  cpSync(DIST, dirB, { recursive: true });
  const html = join(dirB, 'index.html');
  writeFileSync(html, readFileSync(html, 'utf8').replace('</head>', '<meta name="test-build" content="B"></head>'));
  execFileSync('bash', [PRECACHE_SH], { env: { ...process.env, TRUNK_STAGING_DIR: dirB } });

  let server = await serveDist(DIST);
  const browser = await launch({ webgpu: false });
  try {
    const { page, requests, errors } = await openPage(browser, server.url);
    await untilControlled(page);
    const versionA = (await page.evaluate(() => fetch('precache.json').then((r) => r.json()))).version;

    // Build B is deployed at the same address; the next visit finds the new
    // worker, which stores build B, takes over and deletes build A's cache.
    const port = new URL(server.url).port;
    await server.close();
    server = await serveDist(dirB, Number(port));
    await page.reload();
    const versionB = await page.evaluate(() =>
      fetch('precache.json', { cache: 'no-store' }).then((r) => r.json()).then((l) => l.version),
    );
    assert.notEqual(versionB, versionA);
    const deadline = Date.now() + 120_000;
    while ((await cachesOf(page)).names.join() !== `dsan-ct-${versionB}`) {
      assert.ok(Date.now() < deadline, `only the cache of build B within 120 s: ${(await cachesOf(page)).names}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assert.ok((await cachesOf(page)).urls.length > 5, "build B's files are stored");
    await page.reload();
    assert.ok(await page.locator('meta[name="test-build"][content="B"]').count(), 'the page is now build B');

    assertPrivate(requests, server.url);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await server.close();
    rmSync(dirB, { recursive: true, force: true });
  }
});
