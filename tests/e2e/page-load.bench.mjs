// Benchmark (not a test): page weight and time to interactive on localhost.
// Usage: node tests/e2e/page-load.bench.mjs [runs]   (after `trunk build --release`)
// Weight: every file of dist/, raw and gzip -9, grouped as the page itself, the
// compute worker (fetched at the first diagnosis), the default model's
// card and weights (model-weights/) and the bundled samples (stored for
// offline use). Time to interactive: from navigation until the
// page has chosen its backend and takes files, in a fresh browser context
// (nothing cached) and on a second visit (served by the service worker), the
// fastest of `runs` each.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { serveDist, launch } from './harness.mjs';

const DIST = process.env.DIST_DIR ?? new URL('../../dist/', import.meta.url).pathname;
const runs = Number(process.argv[2] ?? 5);

function files(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

const groups = { page: [0, 0], worker: [0, 0], model: [0, 0], samples: [0, 0] };
for (const path of files(DIST)) {
  const name = relative(DIST, path);
  const bytes = readFileSync(path);
  const group = name.startsWith('samples/')
    ? 'samples'
    : name.startsWith('dsan-worker')
      ? 'worker'
      : name.startsWith('model-weights/')
        ? 'model'
        : 'page';
  const gz = gzipSync(bytes, { level: 9 }).length;
  groups[group][0] += bytes.length;
  groups[group][1] += gz;
  if (bytes.length > 100_000) console.log(`# bench: ${name}: ${(bytes.length / 1e6).toFixed(2)} MB, ${(gz / 1e6).toFixed(2)} MB gzip`);
}
for (const [group, [raw, gz]] of Object.entries(groups)) {
  console.log(`# bench: weight of the ${group}: ${(raw / 1e6).toFixed(2)} MB, ${(gz / 1e6).toFixed(2)} MB gzip`);
}
const app = groups.page[1] + groups.worker[1] + groups.model[1];
console.log(`# bench: page + worker + default model gzip: ${(app / 1e6).toFixed(2)} MB (target under 15 MB)`);

const server = await serveDist(DIST);
const browser = await launch({ webgpu: false });
/** Milliseconds from navigation until the backend badge is set and the file input is enabled. */
async function interactive(page) {
  await page.goto(server.url);
  await page.locator('[data-testid="backend-badge"][data-backend]').waitFor({ timeout: 60_000 });
  await page.getByTestId('file-input').waitFor();
  return page.evaluate(() => performance.now());
}
try {
  const first = [];
  const again = [];
  for (let n = 0; n < runs; n++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    first.push(await interactive(page));
    await page.evaluate(() => navigator.serviceWorker.ready);
    again.push(await interactive(page));
    await context.close();
  }
  const best = (v) => Math.min(...v);
  console.log(`# bench: time to interactive, first visit: ${best(first).toFixed(0)} ms (fastest of ${runs}: ${first.map((t) => t.toFixed(0)).join(', ')})`);
  console.log(`# bench: time to interactive, second visit (service worker): ${best(again).toFixed(0)} ms (${again.map((t) => t.toFixed(0)).join(', ')})`);
  console.log(`# bench: first / second visit: ${(best(first) / best(again)).toFixed(2)}x`);
} finally {
  await browser.close();
  await server.close();
}
