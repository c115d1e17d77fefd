// A 1,000-slice 512 x 512 series (a synthetic chest phantom written by
// `dsan phantoms`, 506 MB of DICOM files) opened as a folder in the page: it
// must load into one volume (1 GB of f32 voxels in wasm memory) without
// running out of memory, and the page must stay alive.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveDist, launch, openPage } from './harness.mjs';

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

test('a 1,000-slice 512 x 512 series loads in the browser', async () => {
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
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
