// Benchmark (not a test): a CT diagnosed in the page, stage by stage.
// Usage: [DSAN_BENCH_CORES=n] [DSAN_BENCH_COLD=1] node tests/e2e/diagnose.bench.mjs <CT: a .nii file or a DICOM folder> [bundled|tiny|web-default] [webgpu]
// (the untrained tiny and web-default networks are offered only when no default model ships)
// e.g. the 512x512x300 phantom `DSAN_BENCH_KEEP=1 cargo bench --bench preprocess` leaves behind;
// the lung mask and crop/resample stages are the browser's preprocessing figure.
import { statSync } from 'node:fs';
import { serveDist, launch, openPage, diagnoseOnPage, seeCores } from './harness.mjs';

const [input, preset = 'bundled', gpu] = process.argv.slice(2);
if (!input) {
  console.error('usage: node tests/e2e/diagnose.bench.mjs <file.nii | folder> [bundled|tiny|web-default] [webgpu]');
  process.exit(2);
}
const server = await serveDist(process.env.DIST_DIR ?? new URL('../../dist/', import.meta.url).pathname);
const browser = await launch({ webgpu: gpu === 'webgpu' });
try {
  const { page, errors } = await openPage(browser, server.url);
  // DSAN_BENCH_CORES=4 on a smaller machine: the page gives the CPU
  // diagnosis a helper worker for branch B, as it does on 4 cores or more.
  if (process.env.DSAN_BENCH_CORES) await seeCores(page, Number(process.env.DSAN_BENCH_CORES));
  await page.locator('[data-testid="backend-badge"][data-backend]').waitFor({ timeout: 60_000 });
  // On the CPU the page warms its workers' code up while it waits for a CT;
  // a user picks the files seconds after the page opens. DSAN_BENCH_COLD=1
  // drops the CT at once instead, which ends the warm-up.
  const cold = process.env.DSAN_BENCH_COLD === '1' || gpu === 'webgpu';
  if (!cold) {
    await page.locator('[data-testid="backend-badge"][data-warm="true"]').waitFor({ timeout: 120_000 });
  }
  const picker = statSync(input).isDirectory() ? 'folder-input' : 'file-input';
  // Opening a CT starts its diagnosis with the default choice: from the drop
  // to that result is what a user waits for.
  const dropped = Date.now();
  await page.getByTestId(picker).setInputFiles(input);
  const info = page.getByTestId('volume-info');
  await info.waitFor({ timeout: 600_000 });
  const shown = Date.now() - dropped;
  const readMs = Number(await page.getByTestId('read-time').getAttribute('data-ms'));
  const assembleMs = Number(await info.getAttribute('data-assemble-ms'));
  console.log(`# bench: open ${await info.textContent()}: shown ${shown} ms after the drop (read ${readMs.toFixed(0)} ms, assemble ${assembleMs.toFixed(0)} ms)`);
  const first = await diagnoseOnPage(page, 600_000);
  const helper = first.memory_mib.helper === null ? 'no helper' : 'helper for branch B';
  console.log(`# bench: drop to result on ${first.backend} (${first.model}, code ${cold ? 'cold' : 'warm'}, ${helper}): ${Date.now() - dropped} ms`);
  let report = first;
  if ((await page.getByTestId('diagnose-preset').inputValue()) !== preset) {
    await page.getByTestId('diagnose-preset').selectOption(preset);
    report = await diagnoseOnPage(page, 600_000, { rerun: true });
  }
  const { backend, diagnosis } = report;
  const ms = Object.fromEntries(diagnosis.timings.map((t) => [t.stage, t.ms]));
  console.log(`# bench: diagnose on ${backend} (${preset}): ${diagnosis.timings.map((t) => `${t.stage} ${t.ms.toFixed(0)} ms`).join(', ')}`);
  console.log(`# bench: preprocessing in the browser (lung mask + crop/resample): ${(ms.lung_mask + ms.resample).toFixed(0)} ms`);
  if (errors.length) console.log('page errors:', errors);
} finally {
  await browser.close();
  await server.close();
}
