// The diagnosis pipeline in the page: a real CT series opened in headless
// Chromium and diagnosed on WebGPU (SwiftShader) and on the CPU fallback
// must give the native `dsan predict` result (same seeded model): the
// probabilities within 1e-3 and attention maps correlated above 0.999. The
// diagnosis runs in a Web Worker: the page keeps answering meanwhile, a
// WebGPU device lost mid-run makes it run again on the CPU, and a helper
// worker that dies makes it run again without one. The overlay must
// colour the lungs, the JSON export must hold the result, and nothing may
// leave the page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  serveDist,
  launch,
  openPage,
  diagnoseOnPage,
  assertPrivate,
  recordPauses,
  longestPause,
  defaultModelArgs,
  seeCores,
} from './harness.mjs';

const DIST = process.env.DIST_DIR ?? new URL('../../dist/', import.meta.url).pathname;
const DSAN = process.env.DSAN_BIN ?? 'dsan';
const DATA = process.env.DSAN_SHARED_DATA ?? new URL('../../../shared/data/', import.meta.url).pathname;
const ARTIFACTS = process.env.E2E_ARTIFACTS ?? new URL('./artifacts/', import.meta.url).pathname;
const CAP001 = join(DATA, 'ct-real/covid-ct-md/subsampled-every-4th/CAP/cap001');

let server;
let native;
before(async () => {
  server = await serveDist(DIST);
  mkdirSync(ARTIFACTS, { recursive: true });
  native = JSON.parse(
    execFileSync(DSAN, ['predict', CAP001, ...defaultModelArgs()], {
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    }),
  ).diagnosis;
});
after(async () => {
  await server?.close();
});

function correlation(a, b) {
  const n = a.length;
  const mean = (v) => v.reduce((s, x) => s + x, 0) / n;
  const [ma, mb] = [mean(a), mean(b)];
  let [sab, saa, sbb] = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

function assertSameMap(ours, theirs, what) {
  assert.equal(ours.length, theirs.length, `${what}: cells`);
  const spread = Math.max(...theirs) - Math.min(...theirs);
  if (spread < 1e-6) {
    // A flat map (an untrained branch may have no positive activation).
    ours.forEach((v, i) => assert.ok(Math.abs(v - theirs[i]) <= 1e-3, `${what}[${i}]`));
    return;
  }
  const r = correlation(ours, theirs);
  assert.ok(r > 0.999, `${what}: correlation ${r}`);
}

// On the CPU the page warms its workers' code up on the default model while
// it waits for a CT. The CPU diagnosis runs branch B in a helper worker where
// the page sees 4 or more cores, and on 2 once the code is warm (`warm`: the
// CT is dropped after the warm-up; otherwise at once, which keeps the warm-up
// from starting or ends it).
for (const [webgpu, cores, warm] of [[true, 2, false], [false, 2, false], [false, 2, true], [false, 4, false]]) {
  const backend = webgpu ? 'WebGPU' : 'CPU';
  const helped = !webgpu && (cores >= 4 || warm);
  test(`a CT diagnosed on ${backend}, ${cores} cores${warm ? ', code warm' : ''}, gives the native result`, async () => {
    const browser = await launch({ webgpu });
    try {
      const { page, requests, errors } = await openPage(browser, server.url);
      await seeCores(page, cores);
      const badge = page.locator('[data-testid="backend-badge"][data-backend]');
      await badge.waitFor({ timeout: 60_000 });
      assert.equal(await badge.getAttribute('data-backend'), backend);
      if (warm) {
        await page.locator('[data-testid="backend-badge"][data-warm="true"]').waitFor({ timeout: 120_000 });
      }
      const files = readdirSync(CAP001).sort().map((f) => join(CAP001, f));
      await page.getByTestId('file-input').setInputFiles(files);
      await page.getByTestId('volume-info').waitFor({ timeout: 120_000 });
      // Opening the CT starts its diagnosis.
      const started = Date.now();
      await recordPauses(page);
      const running = diagnoseOnPage(page, 400_000);
      // While the worker computes, the page answers: a key moves the slice.
      await page.waitForFunction(
        () => /Running: /.test(document.querySelector('[data-testid="progress"]')?.textContent ?? ''),
        null,
        { timeout: 120_000 },
      );
      const slice = () => page.getByTestId('slice-axial').inputValue().then(Number);
      const before = await slice();
      await page.getByTestId('slice-axial').focus();
      await page.keyboard.press('ArrowLeft');
      assert.equal(await slice(), before - 1);
      assert.ok(await page.getByTestId('progress').isVisible(), 'the key was answered while the diagnosis ran');
      const report = await running;
      const pause = await longestPause(page);
      const ours = report.diagnosis;
      assert.equal(report.backend, backend);
      assert.equal(report.fallback, null);
      const timings = ours.timings.map((t) => `${t.stage} ${t.ms.toFixed(0)} ms`).join(', ');
      console.log(`# bench: diagnose cap001 (42 x 512 x 512) on ${backend}: ${Date.now() - started} ms in all; ${timings}`);
      console.log(`# bench: longest pause of the page's thread during it: ${pause.toFixed(0)} ms`);
      const memory = report.memory_mib;
      console.log(`# bench: WebAssembly memory after it: page ${memory.page.toFixed(0)} MiB, worker ${memory.worker.toFixed(0)} MiB, helper ${memory.helper?.toFixed(0) ?? 'none'}`);
      assert.equal(memory.helper !== null, helped, 'a helper answered where one should run');
      if (!warm) assert.equal(await badge.getAttribute('data-warm'), 'false', 'no warm-up ran to its end');
      // The inference alone takes seconds; on the page's thread it froze the page that long.
      assert.ok(pause < 1000, `the page paused ${pause} ms`);
      assertSameProbabilities(ours);
      assert.equal(ours.predicted_class, native.predicted_class);
      assert.deepEqual(ours.mapping, native.mapping, 'same crop box and grid');
      assert.ok(Math.abs(ours.lung_volume_ml - native.lung_volume_ml) < 1e-6, 'same lung mask');
      for (const key of ['ensemble', 'uniform', 'balanced']) {
        assertSameMap(ours.feature_attention[key], native.feature_attention[key], `attention ${key}`);
      }
      const shown = Number(await page.getByTestId('result-probability').textContent());
      assert.ok(Math.abs(shown - native.positive_probability) <= 1e-3, `shown ${shown}`);

      // The overlay colours pixels (attention heat or the cyan lung outline).
      const coloured = await page.getByTestId('overlay-canvas').evaluate((canvas) => {
        const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
        let n = 0;
        for (let i = 0; i < data.length; i += 4) if (data[i] !== data[i + 1] || data[i + 1] !== data[i + 2]) n++;
        return n;
      });
      assert.ok(coloured > 1000, `coloured overlay pixels: ${coloured}`);
      await page.screenshot({ path: join(ARTIFACTS, `diagnosis-${backend}-${cores}.png`), fullPage: true });

      // The JSON export is made in the page and holds what the page shows.
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByTestId('export-json').click(),
      ]);
      assert.equal(download.suggestedFilename(), 'dsan-ct-result.json');
      assert.deepEqual(JSON.parse(readFileSync(await download.path(), 'utf8')), report);

      // The worker's own files were fetched, and recorded with the page's.
      assert.ok(requests.some((r) => r.url.endsWith('/dsan-worker_bg.wasm')), 'worker requests recorded');
      assertPrivate(requests, server.url);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });
}

test('a WebGPU device lost during the diagnosis: it runs again on the CPU', async () => {
  const browser = await launch({ webgpu: true });
  try {
    const { page, requests, errors } = await openPage(browser, server.url);
    const badge = page.locator('[data-testid="backend-badge"][data-backend]');
    await badge.waitFor({ timeout: 60_000 });
    assert.equal(await badge.getAttribute('data-backend'), 'WebGPU');
    // In every compute worker, the GPU device is destroyed at its 20th buffer
    // (as when the GPU process crashes or the driver resets).
    let workers = 0;
    page.on('worker', (worker) => {
      workers += 1;
      worker
        .evaluate(() => {
          const create = GPUDevice.prototype.createBuffer;
          let buffers = 0;
          GPUDevice.prototype.createBuffer = function (descriptor) {
            buffers += 1;
            if (buffers === 20) this.destroy();
            return create.call(this, descriptor);
          };
        })
        .catch(() => {});
    });
    await page.getByTestId('file-input').setInputFiles(readdirSync(CAP001).sort().map((f) => join(CAP001, f)));
    await page.getByTestId('volume-info').waitFor({ timeout: 120_000 });
    const report = await diagnoseOnPage(page, 400_000);
    assert.equal(report.backend, 'CPU');
    assert.equal(
      report.fallback,
      'WebGPU failed (the computation stopped: Failed to map buffer: BufferAsyncError); ran again on the CPU',
    );
    assert.equal(workers, 2, 'one worker for WebGPU, a fresh one for the CPU');
    assertSameProbabilities(report.diagnosis);
    assert.match(await page.getByTestId('diagnosis-result').textContent(), /Ran onCPU \(WebGPU failed/);
    assertPrivate(requests, server.url);
    // The worker's panic is logged to the console (with its stack), nothing else.
    assert.deepEqual(errors.filter((e) => !e.includes('Failed to map buffer')), []);
  } finally {
    await browser.close();
  }
});

test('a helper worker that dies during the diagnosis: it runs again without one', async () => {
  const browser = await launch({ webgpu: false });
  try {
    const { page, requests, errors } = await openPage(browser, server.url);
    await seeCores(page, 4);
    await page.locator('[data-testid="backend-badge"][data-warm="true"]').waitFor({ timeout: 120_000 });
    const started = [];
    page.on('worker', (worker) => started.push(worker));
    await page.getByTestId('file-input').setInputFiles(readdirSync(CAP001).sort().map((f) => join(CAP001, f)));
    await page.getByTestId('volume-info').waitFor({ timeout: 120_000 });
    // While the diagnosing worker segments the lungs, its helper, its model
    // loaded, waits for the network input: of the two, only the helper runs
    // a script now, and it throws an uncaught error (as a crashing worker
    // does). The diagnosing worker is ended before it would run it.
    await page.waitForFunction(
      () => /Running: lung mask/.test(document.querySelector('[data-testid="progress"]')?.textContent ?? ''),
      null,
      { timeout: 120_000 },
    );
    for (const worker of started) {
      worker
        .evaluate(() =>
          setTimeout(() => {
            throw new Error('helper stopped by the test');
          }),
        )
        .catch(() => {});
    }
    const report = await diagnoseOnPage(page, 400_000);
    assert.equal(report.backend, 'CPU');
    assert.equal(started.length, 3, 'a diagnosing worker and its helper, then one worker for the rerun');
    assert.equal(report.memory_mib.helper, null, 'the rerun ran both branches itself');
    assertSameProbabilities(report.diagnosis);
    assert.equal(report.diagnosis.predicted_class, native.predicted_class);
    assertPrivate(requests, server.url);
    assert.deepEqual(errors.filter((e) => !e.includes('helper stopped by the test')), []);
  } finally {
    await browser.close();
  }
});

function assertSameProbabilities(ours) {
  for (const key of ['probabilities', 'uniform_probabilities', 'balanced_probabilities']) {
    ours[key].forEach((p, i) =>
      assert.ok(Math.abs(p - native[key][i]) <= 1e-3, `${key}[${i}]: ${p} vs native ${native[key][i]}`),
    );
  }
}
