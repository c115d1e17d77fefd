// The shipped default model on the four bundled samples (synthetic phantoms
// from a seed outside its training and held-out sets): in the page, on
// WebGPU (SwiftShader) and on the CPU fallback, each sample is classified as
// the class its name says, with the probabilities `dsan predict` gives for
// the same .zip natively (within 1e-3), and the result says the weights were
// trained on synthetic data.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { serveDist, launch, openPage, diagnoseOnPage, assertPrivate, defaultModelArgs } from './harness.mjs';

const DIST = process.env.DIST_DIR ?? new URL('../../dist/', import.meta.url).pathname;
const DSAN = process.env.DSAN_BIN ?? 'dsan';
const SAMPLES = new URL('../../public/samples/', import.meta.url).pathname;
const MODEL_WEIGHTS = new URL('../../model-weights/', import.meta.url).pathname;

/** The class a sample's file name says it is: `cap-like-N.zip` or `covid-19-like-N.zip`. */
function classOf(file) {
  return { cap: 'CAP', 'covid-19': 'COVID-19' }[file.replace(/-like-\d+\.zip$/, '')];
}

const index = JSON.parse(readFileSync(join(MODEL_WEIGHTS, 'models.json'), 'utf8'));

/** What the page should show first of the default card: its ensemble AUC, sensitivity and specificity on the held-out phantoms. */
function headline() {
  const card = JSON.parse(readFileSync(join(MODEL_WEIGHTS, index.default), 'utf8'));
  const on = card.metrics.find((m) => m.measured_on.includes('held-out')).measured_on;
  const figure = (name) => card.metrics.find((m) => m.measured_on === on && m.name === `${name} (ensemble)`);
  const auc = figure('AUC');
  return [
    `AUC ${auc.value.toFixed(2)} (95 % CI ${auc.ci95[0].toFixed(2)}-${auc.ci95[1].toFixed(2)})`,
    `sensitivity ${figure('sensitivity').value.toFixed(2)}`,
    `specificity ${figure('specificity').value.toFixed(2)}`,
  ].join(', ');
}

const files = readdirSync(SAMPLES).filter((f) => f.endsWith('.zip')).sort();
let server;
const native = {};
before(async () => {
  server = await serveDist(DIST);
  for (const file of files) {
    native[file] = JSON.parse(
      execFileSync(DSAN, ['predict', join(SAMPLES, file), ...defaultModelArgs()], {
        encoding: 'utf8',
        maxBuffer: 64 << 20,
      }),
    ).diagnosis;
  }
});
after(async () => {
  await server?.close();
});

test('a default model ships, and natively it classifies every bundled sample as its class', () => {
  assert.ok(index.default, 'model-weights/models.json names a default model');
  assert.equal(files.length, 4);
  for (const file of files) {
    assert.ok(classOf(file), `${file}: a class in its name`);
    assert.equal(native[file].predicted_class, classOf(file), `${file}: P = ${native[file].probabilities}`);
  }
});

for (const webgpu of [true, false]) {
  const backend = webgpu ? 'WebGPU' : 'CPU';
  test(`on ${backend}, the page classifies every bundled sample as its class, as natively`, async () => {
    const browser = await launch({ webgpu });
    try {
      for (const file of files) {
        const { page, requests, errors } = await openPage(browser, server.url);
        const badge = page.locator('[data-testid="backend-badge"][data-backend]');
        await badge.waitFor({ timeout: 60_000 });
        assert.equal(await badge.getAttribute('data-backend'), backend);
        await page.getByTestId('model-default').waitFor({ timeout: 60_000 });
        assert.equal(await page.getByTestId('model-default-headline').textContent(), headline());
        await page.getByTestId('sample-menu').selectOption(file);
        await page.getByTestId('volume-info').waitFor({ timeout: 60_000 });
        const { diagnosis } = await diagnoseOnPage(page, 600_000);
        assert.equal(diagnosis.predicted_class, classOf(file), `${file} on ${backend}: P = ${diagnosis.probabilities}`);
        for (const key of ['probabilities', 'uniform_probabilities', 'balanced_probabilities']) {
          diagnosis[key].forEach((p, i) =>
            assert.ok(Math.abs(p - native[file][key][i]) <= 1e-3, `${file} ${key}[${i}]: ${p} vs native ${native[file][key][i]}`),
          );
        }
        assert.match(await page.getByTestId('result-caveat').textContent(), /Synthetic-data weights .* not a diagnosis of a patient/);
        assertPrivate(requests, server.url);
        assert.deepEqual(errors, []);
        await page.context().close();
      }
    } finally {
      await browser.close();
    }
  });
}
