// The page's model self-check in headless Chromium (in the "About this model
// / diagnostics" dialog): the seeded random model runs in the compute worker on WebGPU (SwiftShader) and on the CPU fallback,
// both must equal the native CPU forward of the same model, the page must keep
// answering meanwhile, and make no request but same-origin GETs of its own files.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { serveDist, launch, openPage, assertPrivate, recordPauses, longestPause } from './harness.mjs';

const DIST = process.env.DIST_DIR ?? new URL('../../dist/', import.meta.url).pathname;
const DSAN = process.env.DSAN_BIN ?? 'dsan';
const TOLERANCE = 1e-3;

let server;
before(async () => {
  server = await serveDist(DIST);
});
after(async () => {
  await server?.close();
});

function nativeReference(preset) {
  const out = execFileSync(DSAN, ['self-check', '--preset', preset, '--seed', '42'], {
    encoding: 'utf8',
  });
  return JSON.parse(out);
}

function assertClose(actual, expected, what) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  actual.forEach((a, i) => {
    assert.ok(Number.isFinite(a), `${what}[${i}] is finite`);
    assert.ok(Math.abs(a - expected[i]) <= TOLERANCE, `${what}[${i}]: ${a} vs native ${expected[i]}`);
  });
}

/** Runs the self-check with `preset` (in the About dialog, opened if need be); returns the page's report. */
async function runSelfCheck(page, preset, timeout) {
  if (!(await page.getByTestId('about').isVisible())) await page.getByTestId('about-button').click();
  await page.getByTestId('model-preset').selectOption(preset);
  await page.getByTestId('run-model').click();
  const json = page.locator(`[data-testid="forward-json"][data-config="${preset}"]`);
  const failure = page.getByTestId('error-list');
  await Promise.race([
    json.waitFor({ state: 'attached', timeout }),
    failure.waitFor({ state: 'attached', timeout }).then(async () => {
      throw new Error(`self-check failed: ${await failure.textContent()}`);
    }),
  ]);
  return JSON.parse(await json.textContent());
}

for (const webgpu of [true, false]) {
  const expected = webgpu ? 'WebGPU' : 'CPU';
  test(`self-check on ${expected} equals the native CPU forward`, async () => {
    const browser = await launch({ webgpu });
    try {
      const { page, requests, errors } = await openPage(browser, server.url);
      await page.getByRole('heading', { name: 'DSAN-CT' }).waitFor();
      const badge = page.locator(`[data-testid="backend-badge"][data-backend]`);
      await badge.waitFor({ timeout: 60_000 });
      assert.equal(await badge.getAttribute('data-backend'), expected);
      if (!webgpu) assert.match(await badge.textContent(), /running on the CPU/);
      assert.match(await page.getByTestId('privacy-statement').textContent(), /leaves this computer/);

      // The tiny network, then the web default (whose timings are the
      // browser figures of the forward benchmark).
      for (const preset of ['tiny', 'web-default']) {
        const reference = nativeReference(preset);
        await recordPauses(page);
        const report = await runSelfCheck(page, preset, 300_000);
        // The network runs in the compute worker: the page keeps answering.
        const pause = await longestPause(page);
        console.log(`# bench: longest pause of the page's thread during it: ${pause.toFixed(0)} ms`);
        assert.ok(pause < 1000, `the page paused ${pause} ms during the ${preset} self-check`);
        assert.equal(report.backend, expected);
        assert.equal(report.config, preset);
        console.log(
          `# bench: ${expected} ${preset} (${report.parameters} parameters): build ` +
            `${report.build_ms.toFixed(0)} ms, first forward ${report.first_forward_ms.toFixed(0)} ms, ` +
            `forward ${report.forward_ms.toFixed(0)} ms`,
        );
        assertClose(report.summary.ensemble, reference.ensemble, `${preset} ensemble`);
        assertClose(report.summary.uniform, reference.uniform, `${preset} branch U`);
        assertClose(report.summary.balanced, reference.balanced, `${preset} branch B`);
        assert.deepEqual(report.summary.attention_grid, reference.attention_grid);
        assertClose(report.summary.attention, reference.attention, `${preset} attention`);
      }

      assertPrivate(requests, new URL(server.url).origin);
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });
}

test("the page's own WebAssembly holds no network code; the compute worker's does", () => {
  const wasm = (pattern) => {
    const name = readdirSync(DIST).find((f) => pattern.test(f));
    assert.ok(name, `a file matching ${pattern} in ${DIST}`);
    return readFileSync(join(DIST, name)).toString('latin1');
  };
  // Burn's crates leave their paths in the module (panic locations).
  const burn = /burn-(core|tensor|flex|ndarray|cubecl)-\d/;
  assert.ok(burn.test(wasm(/^dsan-worker_bg\.wasm$/)), 'the marker is found where Burn is');
  assert.ok(!burn.test(wasm(/^dsan-ct-[0-9a-f]+_bg\.wasm$/)), "Burn is not in the page's module");
});
