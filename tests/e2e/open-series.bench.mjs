// Benchmark (not a test): time to open a DICOM series in the page.
// Usage: node tests/e2e/open-series.bench.mjs <folder of DICOM files>
// e.g. the 300-slice series `DSAN_BENCH_KEEP=1 cargo bench --bench dicom_read` leaves behind.
import { serveDist, launch, openPage } from './harness.mjs';

const folder = process.argv[2];
if (!folder) {
  console.error('usage: node tests/e2e/open-series.bench.mjs <folder>');
  process.exit(2);
}
const server = await serveDist(process.env.DIST_DIR ?? new URL('../../dist/', import.meta.url).pathname);
const browser = await launch({ webgpu: false });
try {
  const { page, errors } = await openPage(browser, server.url);
  await page.getByTestId('folder-input').setInputFiles(folder);
  const info = page.getByTestId('volume-info');
  await info.waitFor({ timeout: 600_000 });
  const readMs = Number(await page.getByTestId('read-time').getAttribute('data-ms'));
  const assembleMs = Number(await info.getAttribute('data-assemble-ms'));
  console.log(`# bench: open ${await info.textContent()}`);
  console.log(`# bench: read + decode ${readMs.toFixed(0)} ms, assemble ${assembleMs.toFixed(0)} ms, total ${(readMs + assembleMs).toFixed(0)} ms`);
  if (errors.length) console.log('page errors:', errors);
} finally {
  await browser.close();
  await server.close();
}
