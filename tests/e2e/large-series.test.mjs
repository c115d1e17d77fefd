// A 1,000-slice 512 x 512 series (a synthetic chest phantom written by
// `dsan phantoms`, 506 MB of DICOM files) opened as a folder in the page: it
// must load into one volume (1 GB of f32 voxels in wasm memory) without
// running out of memory, be diagnosed on the CPU, and the page must stay
// alive. The WebAssembly memory of the page and of the worker are printed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveDist, launch, openPage, diagnoseOnPage, recordPauses, longestPause } from './harness.mjs';

const DIST = process.env.DIST_DIR ?? new URL('../../dist/', import.meta.url).pathname;
const DSAN = process.env.DSAN_BIN ?? 'dsan';

let server;
let dir;
before(async () => {
  server = await serveDist(DIST);
  dir = mkdtempSync(join(tmpdir(), 'dsan-large-'));
  execFileSync(DSAN, ['phantoms', '--out', dir, '--n', '1', '--slices', '1000', '--size', '512'], {
    stdio: 'ignore',
  });
});
after(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a 1,000-slice 512 x 512 series loads and is diagnosed in the browser', async () => {
  const series = join(dir, readdirSync(dir).find((f) => f.startsWith('phantom-') && !f.endsWith('.gz')));
  assert.equal(readdirSync(series).length, 1000);
  const browser = await launch({ webgpu: false });
  try {
    const { page, errors } = await openPage(browser, server.url);
    await page.getByTestId('folder-input').setInputFiles(series);
    const info = page.getByTestId('volume-info');
    const failure = page.getByTestId('volume-error');
    await Promise.race([
      info.waitFor({ timeout: 600_000 }),
      failure.waitFor({ timeout: 600_000 }).then(async () => {
        throw new Error(`volume refused: ${await failure.textContent()}`);
      }),
    ]);
    assert.match(await info.textContent(), /1000 slices of 512x512/);
    const readMs = Number(await page.getByTestId('read-time').getAttribute('data-ms'));
    const assembleMs = Number(await info.getAttribute('data-assemble-ms'));
    console.log(`# bench: 1000 x 512 x 512 series in the page: read + decode ${readMs.toFixed(0)} ms, assemble ${assembleMs.toFixed(0)} ms`);
    // The page still answers and shows the slice.
    assert.equal(await page.getByRole('heading', { name: 'DSAN-CT' }).isVisible(), true);
    const drawn = await page.getByTestId('axial-canvas').evaluate((canvas) => {
      const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
      return new Set(Array.from({ length: 512 }, (_, i) => data[i * 4 * 509])).size;
    });
    assert.ok(drawn > 5, `the middle slice is drawn (${drawn} grey levels)`);
    // Opening the CT starts its diagnosis, here on the CPU.
    await recordPauses(page);
    const started = Date.now();
    const report = await diagnoseOnPage(page, 900_000);
    const pause = await longestPause(page);
    const { page: pageMib, worker: workerMib } = report.memory_mib;
    const stages = report.diagnosis.timings.map((t) => `${t.stage} ${t.ms.toFixed(0)} ms`).join(', ');
    console.log(`# bench: 1000 x 512 x 512 series diagnosed on ${report.backend}: ${Date.now() - started} ms; ${stages}`);
    console.log(`# bench: WebAssembly memory after it: page ${pageMib.toFixed(0)} MiB, worker ${workerMib.toFixed(0)} MiB; longest pause of the page ${pause.toFixed(0)} ms`);
    assert.equal(report.diagnosis.mapping.volume_dims.join('x'), '1000x512x512');
    assert.ok(report.diagnosis.lung_volume_ml > 1000, `lungs found (${report.diagnosis.lung_volume_ml} mL)`);
    // The volume alone is 1000 MiB of f32 in each; nothing else near its size.
    assert.ok(workerMib > 1000 && workerMib < 4096, `worker ${workerMib} MiB`);
    assert.ok(pageMib > 1000 && pageMib < 4096, `page ${pageMib} MiB`);
    // Measured on 2 cores: 2.5 s before Mask::bounds scanned row by row (1.1 s
    // of it), 0.8 s of it the copy of the 1 GB volume out of the page's wasm
    // memory for the worker, in one call on the page's thread.
    assert.ok(pause < 2000, `the page paused ${pause} ms`);
    assert.ok(await page.getByTestId('overlay-canvas').isVisible(), 'the result shows its overlay');
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
