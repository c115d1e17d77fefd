// The "try a sample" menu: a bundled sample case (public/samples/, synthetic
// phantoms) is fetched from the site itself, opened like dropped files and
// diagnosed with the result `dsan predict` gives for the same .zip natively.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { serveDist, launch, openPage, diagnoseOnPage } from './harness.mjs';

const DIST = process.env.DIST_DIR ?? new URL('../../dist/', import.meta.url).pathname;
const DSAN = process.env.DSAN_BIN ?? 'dsan';
const SAMPLES = new URL('../../public/samples/', import.meta.url).pathname;
const ARTIFACTS = process.env.E2E_ARTIFACTS ?? new URL('./artifacts/', import.meta.url).pathname;
const SAMPLE = 'covid-19-like-1.zip';

let server;
let native;
before(async () => {
  server = await serveDist(DIST);
  mkdirSync(ARTIFACTS, { recursive: true });
  native = JSON.parse(
    execFileSync(DSAN, ['predict', join(SAMPLES, SAMPLE), '--preset', 'web-default', '--seed', '42'], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    }),
  ).diagnosis;
});
after(async () => {
  await server?.close();
});

test('a bundled sample opens from the menu and is diagnosed like natively', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const { page, requests, errors } = await openPage(browser, server.url);
    await page.locator('[data-testid="backend-badge"][data-backend]').waitFor({ timeout: 60_000 });
    const menu = page.getByTestId('sample-menu');
    const offered = await menu.locator('option').evaluateAll((o) => o.map((x) => x.value).filter(Boolean));
    assert.equal(offered.length, 4);
    await menu.selectOption(SAMPLE);
    const info = page.getByTestId('volume-info');
    await info.waitFor({ timeout: 60_000 });
    assert.match(await info.textContent(), /synthetic chest phantom: 48 slices of 160x160/);
    const report = await diagnoseOnPage(page, 300_000);
    const ours = report.diagnosis;
    ours.probabilities.forEach((p, i) =>
      assert.ok(Math.abs(p - native.probabilities[i]) <= 1e-3, `probability ${i}: ${p} vs ${native.probabilities[i]}`),
    );
    assert.ok(Math.abs(ours.lung_volume_ml - native.lung_volume_ml) < 1e-6, 'same lung mask');
    await page.screenshot({ path: join(ARTIFACTS, 'sample.png'), fullPage: true });

    // The PNG report is drawn in the page and downloaded from a blob of this origin.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByTestId('export-png').click(),
    ]);
    assert.equal(download.suggestedFilename(), 'dsan-ct-report.png');
    const png = readFileSync(await download.path());
    assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], 'PNG signature');
    const [width, height] = [png.readUInt32BE(16), png.readUInt32BE(20)];
    assert.equal(width, 1024);
    assert.ok(height >= 512, `height ${height}`);
    assert.ok(png.length > 50_000, `a CT image and text, ${png.length} bytes`);
    await download.saveAs(join(ARTIFACTS, 'report.png'));

    // The sample came from the site itself, as a plain GET.
    const fetched = requests.filter((r) => r.url.endsWith(`/samples/${SAMPLE}`));
    assert.equal(fetched.length, 1, 'the sample was fetched once');
    for (const r of requests) {
      assert.equal(new URL(r.url).origin, new URL(server.url).origin, `same origin: ${r.url}`);
      assert.equal(r.method, 'GET', `GET only: ${r.url}`);
    }
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
