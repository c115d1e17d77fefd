// Trained models in the page: a model trained and exported by `dsan` (a tiny
// network, one epoch on phantoms), loaded as the site's own or bundled in
// model-weights/ as the page's default, is checked in the page and diagnoses a
// bundled sample with the probability `dsan predict --weights` gives; weights
// that do not match their card are refused with the reason and the page keeps
// working.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { serveDist, launch, openPage, diagnoseOnPage, assertPrivate, tempDir } from './harness.mjs';
import { runDsan, trainTinyModel } from './tiny-model.mjs';

const DIST = process.env.DIST_DIR ?? new URL('../../dist/', import.meta.url).pathname;
const SAMPLES = new URL('../../public/samples/', import.meta.url).pathname;
const SAMPLE = 'cap-like-1.zip';

const run = runDsan;

let server;
let work;
let card;
let weights;
let native;
before(async () => {
  server = await serveDist(DIST);
  ({ work, card, weights } = trainTinyModel('site test model', 77));
  native = JSON.parse(run(['predict', join(SAMPLES, SAMPLE), '--weights', card])).diagnosis;
});
after(async () => {
  await server?.close();
});

test('a site model is verified, named and used for the diagnosis; a mismatched one is refused', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const { page, requests, errors } = await openPage(browser, server.url);
    await page.locator('[data-testid="backend-badge"][data-backend]').waitFor({ timeout: 60_000 });

    // A weights file that is not the card's (one byte changed): refused, with the reason.
    const bad = tempDir('dsan-bad-model-');
    const badWeights = join(bad, weights.split('/').pop());
    const bytes = readFileSync(weights);
    bytes[bytes.length >> 1] ^= 0xff;
    writeFileSync(badWeights, bytes);
    copyFileSync(card, join(bad, 'card.json'));
    await page.getByTestId('model-input').setInputFiles([join(bad, 'card.json'), badWeights]);
    const refusal = page.getByTestId('model-error');
    await refusal.waitFor({ timeout: 60_000 });
    assert.match(await refusal.textContent(), /SHA-256 .* the file is corrupted or belongs to another card/);
    assert.equal(await page.getByTestId('model-loaded').count(), 0, 'nothing loaded');

    // A truncated one: refused by its size, which the page compares with the card's before reading it.
    const short = tempDir('dsan-short-model-');
    const shortWeights = join(short, weights.split('/').pop());
    writeFileSync(shortWeights, readFileSync(weights).subarray(0, -1));
    copyFileSync(card, join(short, 'card.json'));
    await page.getByTestId('model-input').setInputFiles([join(short, 'card.json'), shortWeights]);
    await page.getByTestId('model-error').filter({ hasText: /bytes but the model card expects/ }).waitFor({ timeout: 60_000 });
    assert.match(await refusal.textContent(), new RegExp(`${bytes.length - 1} bytes but the model card expects ${bytes.length}`));
    assert.equal(await page.getByTestId('model-loaded').count(), 0, 'nothing loaded');

    // The real pair loads and names itself.
    await page.getByTestId('model-input').setInputFiles([card, weights]);
    const loaded = page.getByTestId('model-loaded');
    await loaded.waitFor({ timeout: 60_000 });
    assert.match(await loaded.textContent(), /site test model 1\.0\.0/);
    assert.match(await loaded.textContent(), /synthetic/);
    assert.equal(await refusal.count(), 0, 'the earlier refusal is cleared');

    await page.getByTestId('sample-menu').selectOption(SAMPLE);
    await page.getByTestId('volume-info').waitFor({ timeout: 60_000 });
    await page.getByTestId('diagnose-preset').selectOption('own');
    const report = await diagnoseOnPage(page, 120_000);
    assert.equal(report.model, 'site test model');
    report.diagnosis.probabilities.forEach((p, i) =>
      assert.ok(Math.abs(p - native.probabilities[i]) <= 1e-3, `probability ${i}: ${p} vs ${native.probabilities[i]}`),
    );
    const shown = Number(await page.getByTestId('result-probability').textContent());
    assert.ok(Math.abs(shown - native.positive_probability) <= 1e-3, `shown ${shown}`);

    assertPrivate(requests, server.url);
    // Only the bundled default model's weights come from the site; the site's own never leave the disk.
    const own = weights.split('/').pop();
    assert.ok(!requests.some((r) => r.url.endsWith(`/${own}`)), 'the model file is read locally, never requested');
    assert.ok(
      requests.filter((r) => r.url.endsWith('.mpk')).every((r) => r.url.startsWith(`${server.url}model-weights/`)),
      'any weights fetched are the bundled ones',
    );
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

/** A copy of the page with `dsan export --default` of the test run in its model-weights/. */
function distWithBundledModel(name) {
  const dist = tempDir('dsan-bundled-');
  cpSync(DIST, dist, { recursive: true });
  const bundled = run(['export', '--run', join(work, 'run'), '--out', join(dist, 'model-weights'), '--name', name, '--synthetic', '--default']).trim();
  return { dist, card: bundled, weights: join(dirname(bundled), JSON.parse(readFileSync(bundled, 'utf8')).weights.file) };
}

test('a model bundled in model-weights/ is the default: fetched from the site, named, and used', async () => {
  const bundled = distWithBundledModel('bundled test model');
  const expected = JSON.parse(run(['predict', join(SAMPLES, SAMPLE), '--weights', bundled.card])).diagnosis;
  const site = await serveDist(bundled.dist);
  const browser = await launch({ webgpu: false });
  try {
    const { page, requests, errors } = await openPage(browser, site.url);
    const shown = page.getByTestId('model-default');
    await shown.waitFor({ timeout: 60_000 });
    assert.match(await shown.textContent(), /bundled test model 1\.0\.0/);
    assert.match(await shown.textContent(), /synthetic/);
    await page.locator('[data-testid="backend-badge"][data-backend]').waitFor({ timeout: 60_000 });

    await page.getByTestId('sample-menu').selectOption(SAMPLE);
    await page.getByTestId('volume-info').waitFor({ timeout: 60_000 });
    assert.equal(await page.getByTestId('diagnose-preset').inputValue(), 'bundled', 'the bundled model is preselected');
    // With a default model the untrained networks are left to the self-check.
    for (const untrained of ['web-default', 'tiny']) {
      const option = page.getByTestId('diagnose-preset').locator(`option[value="${untrained}"]`);
      assert.equal(await option.isDisabled(), true, `${untrained} is not offered`);
      assert.equal(await option.evaluate((o) => o.hidden), true, `${untrained} is hidden`);
    }
    const report = await diagnoseOnPage(page, 120_000);
    assert.equal(report.model, 'bundled test model');
    // Its probability is said to come from synthetic-data weights, on the page and in the report.
    assert.match(await page.getByTestId('result-caveat').textContent(), /Synthetic-data weights .* not a diagnosis of a patient/);
    assert.match(report.caveat, /Synthetic-data weights/);
    report.diagnosis.probabilities.forEach((p, i) =>
      assert.ok(Math.abs(p - expected.probabilities[i]) <= 1e-3, `probability ${i}: ${p} vs ${expected.probabilities[i]}`),
    );

    assertPrivate(requests, site.url);
    const file = bundled.weights.split('/').pop();
    assert.ok(requests.some((r) => r.url === `${site.url}model-weights/${file}` && r.method === 'GET'), 'the weights come from the site');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await site.close();
  }
});

test('bundled weights that do not match their card are refused; the page offers the untrained network', async () => {
  const bundled = distWithBundledModel('damaged bundled model');
  const bytes = readFileSync(bundled.weights);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(bundled.weights, bytes);
  const site = await serveDist(bundled.dist);
  const browser = await launch({ webgpu: false });
  try {
    const { page, requests, errors } = await openPage(browser, site.url);
    const refusal = page.getByTestId('bundled-error');
    await refusal.waitFor({ timeout: 60_000 });
    assert.match(await refusal.textContent(), /SHA-256 .* the file is corrupted or belongs to another card/);
    assert.equal(await page.getByTestId('model-default').count(), 0, 'no default model');

    await page.getByTestId('sample-menu').selectOption(SAMPLE);
    await page.getByTestId('volume-info').waitFor({ timeout: 60_000 });
    const preset = page.getByTestId('diagnose-preset');
    assert.equal(await preset.inputValue(), 'web-default');
    assert.equal(await preset.locator('option[value="bundled"]').isDisabled(), true);
    await preset.selectOption('tiny');
    const report = await diagnoseOnPage(page, 120_000);
    assert.equal(report.diagnosis.probabilities.length, 2, 'the page still diagnoses');
    assertPrivate(requests, site.url);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await site.close();
  }
});
