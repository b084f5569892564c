/**
 * The workbench in Debian's Chromium against web mode: import, add a backbone, extract,
 * train Ω and Ψ with live charts, compare runs, cancel a job; screenshots at 1280×800 go to
 * test-artifacts/ and every page is checked for horizontal overflow.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';

import { openDb, type Db } from '../../electron/engine/db.js';
import { decodeModel, encodeModel } from '../../electron/engine/export/index.js';
import { JobRunner } from '../../electron/jobs/runner.js';
import { startWebServer } from '../../electron/web/server.js';
import { CIFAR10_CLASSES, samples } from '../helpers/fixtures.js';
import { MODELS, REPO, tempDir } from '../helpers/shared.js';

const CHROMIUM = process.env.EMBAUG_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(REPO, 'test-artifacts');

describe('the workbench UI in Chromium (web mode)', { skip: !existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM}: install Debian's chromium (.ci/run does)` }, () => {
  const tmp = tempDir();
  let db: Db, jobs: JobRunner, web: Awaited<ReturnType<typeof startWebServer>>, browser: Browser, page: Page;
  const errors: string[] = [];

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    // An image folder with classes 5–9 of CIFAR-10 (the target task), train and test.
    const root = join(tmp.dir, 'images');
    for (const [split, shard, n] of [['train', 'train-000000.tar', 500], ['test', 'test-000000.tar', 200]] as const)
      for (const s of await samples(shard, n)) {
        const dir = join(root, split, CIFAR10_CLASSES[s.label]);
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, `${s.key}.jpg`), s.jpeg);
      }
    writeFileSync(join(root, 'train', 'cat', 'broken.jpg'), 'not a jpeg');
    const dbPath = join(tmp.dir, 'ui.db');
    db = openDb(dbPath);
    jobs = new JobRunner({ db, dbPath, threads: 2, settings: { modelsDir: MODELS, dataDir: tmp.dir, outDir: tmp.dir } });
    web = await startWebServer({ db, dbPath, jobs, staticDir: join(REPO, 'dist', 'renderer'), version: 'test' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-gpu'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(web.url);
  });

  after(async () => {
    await browser?.close();
    await jobs?.close();
    await web?.close();
    db?.close();
    tmp.cleanup();
  });

  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  const view = (name: string) => page.getByRole('navigation').getByRole('button', { name, exact: true }).click();
  const finished = (title: RegExp, status = 'completed') =>
    page.getByTestId('job').filter({ hasText: title }).first().locator(`.badge.${status}`).waitFor({ timeout: 120_000 });

  async function noOverflow(where: string) {
    const over = await page.evaluate(() => {
      const out: string[] = [];
      if (document.documentElement.scrollWidth > window.innerWidth) out.push(`page ${document.documentElement.scrollWidth}px`);
      for (const el of document.querySelectorAll('.panel, nav, aside'))
        if (el.scrollWidth > el.clientWidth + 1) out.push(`${el.className} ${el.scrollWidth}>${el.clientWidth}`);
      return out;
    });
    assert.deepEqual(over, [], `${where}: content overflows`);
  }

  it('imports an image folder, showing progress, the skipped file, the histogram and the thumbnails', async () => {
    await page.getByLabel('Source').selectOption('folder');
    await page.getByLabel('Path').fill(join(tmp.dir, 'images'));
    await page.getByLabel('Name').fill('target');
    await page.getByRole('button', { name: 'Import' }).click();
    await finished(/Import target/);
    await page.getByTestId('skipped').getByText('broken.jpg').waitFor();
    await page.getByRole('cell', { name: 'target' }).click();
    const grid = page.getByTestId('thumb-grid');
    await grid.locator('img').first().waitFor();
    // 500 train and 200 test images; broken.jpg is skipped.
    assert.equal(await grid.getAttribute('data-total'), '700');
    await page.getByLabel('Split').selectOption('test');
    await page.waitForFunction(() => document.querySelector('[data-testid="thumb-grid"]')?.getAttribute('data-total') === '200');
    await grid.locator('button.cell').first().click();
    await page.getByTestId('image-details').getByText('test', { exact: true }).waitFor();
    await noOverflow('datasets');
    await shot('01-datasets');
  });

  it('adds the tiny backbone and shows its details; a wrong path is explained', async () => {
    await view('Backbones');
    await page.getByLabel('ONNX file').fill(join(tmp.dir, 'missing.onnx'));
    await page.getByRole('button', { name: 'Add backbone' }).click();
    await page.getByRole('alert').getByText(/No ONNX file at/).waitFor();
    await page.getByLabel('ONNX file').fill(join(MODELS, 'tiny-resnet18-w4.onnx'));
    await page.getByRole('button', { name: 'Add backbone' }).click();
    await page.getByRole('cell', { name: 'tiny-resnet18-w4' }).click();
    await page.getByTestId('backbone-details').getByText('"architecture": "resnet18"').waitFor();
    // A classifier without an embedding output, cut at the suggested tensor.
    const m = decodeModel(readFileSync(join(MODELS, 'tiny-resnet18-w4.onnx')));
    m.graph!.output = m.graph!.output!.filter((o) => o.name === 'logits');
    writeFileSync(join(tmp.dir, 'classifier.onnx'), encodeModel(m));
    const form = page.getByTestId('classifier-form');
    await form.getByLabel('Classifier ONNX').fill(join(tmp.dir, 'classifier.onnx'));
    await form.getByRole('button', { name: 'Find embedding candidates' }).click();
    assert.equal(await form.locator('select[name="tensor"]').inputValue(), 'embedding');
    await form.getByRole('button', { name: 'Cut and add' }).click();
    await page.getByRole('cell', { name: 'classifier', exact: true }).waitFor();
    await noOverflow('backbones');
    await shot('02-backbones');
  });

  it('extracts embeddings with progress and shows the cache', async () => {
    await view('Embeddings');
    await page.getByLabel('Augmentations').fill('identity hflip');
    await page.getByRole('button', { name: 'Extract' }).click();
    await finished(/Extract identity, hflip/);
    await page.getByTestId('cache-stats').getByRole('cell', { name: 'hflip', exact: true }).waitFor();
    await noOverflow('embeddings');
    await shot('03-embeddings');
  });

  it('trains Ω with a live MSE chart and fidelity figures', async () => {
    await view('Augmentations (Ω)');
    await page.getByLabel('Augmentations').fill('hflip');
    await page.getByLabel('Epochs').fill('6');
    await page.getByRole('button', { name: 'Train Ω' }).click();
    const chart = page.getByTestId('chart').first();
    await chart.waitFor();
    await finished(/Train Ω hflip/);
    assert.equal(await chart.getAttribute('data-points'), '6');
    await page.getByTestId('omega-runs').getByRole('cell', { name: 'hflip' }).first().waitFor();
    // A random augmentation with the conditional form: its row shows MSE against |θ|.
    await page.getByLabel('Augmentations').fill('rotate');
    await page.getByLabel('Epochs').fill('2');
    await page.getByLabel('Form').selectOption('conditional-fourier');
    await page.getByRole('button', { name: 'Train Ω' }).click();
    await finished(/Train Ω rotate/);
    const row = page.getByTestId('omega-runs').getByRole('row').filter({ hasText: 'rotate:max=15,min=-15' }).first();
    await row.getByRole('cell', { name: 'conditional-fourier' }).waitFor();
    const bins = page.getByTestId('omega-runs').getByRole('cell', { name: /held-out MSE against \|θ\|/ }).first();
    assert.match(await bins.innerText(), /0\.75–1: [\d.]+ \/ – \/ [\d.]+/);
    await page.getByLabel('Form').selectOption('auto');
    await noOverflow('omega');
    await shot('04-omega');
  });

  it('trains heads with live loss and accuracy curves, in pixel and embed modes', async () => {
    await view('Heads (Ψ)');
    await page.getByLabel('Epochs').fill('5');
    await page.getByRole('button', { name: 'Train Ψ' }).click();
    await page.getByTestId('head-result').waitFor({ timeout: 120_000 });
    assert.match(await page.getByTestId('head-result').innerText(), /Test accuracy: \d+\.\d\d%/);
    assert.equal(await page.getByTestId('chart').first().getAttribute('data-points'), '5');
    await page.locator('select[name="mode"]').selectOption('embed');
    await page.getByRole('button', { name: 'Train Ψ' }).click();
    await finished(/Train Ψ \(embed\)/);
    await page.locator('select[name="mode"]').selectOption('isda');
    assert.equal(await page.getByLabel('Augmentations').count(), 0, 'an Ω-free baseline takes no augmentation');
    await page.getByRole('button', { name: 'Train Ψ' }).click();
    await finished(/Train Ψ \(isda\)/);
    // The advisor on the same data set: every arm cross-validated, a recommendation, and a button that trains it.
    await page.getByRole('button', { name: 'Advise' }).click();
    await finished(/Advise: augment or not\?/);
    const advice = page.getByTestId('advice');
    for (const arm of ['none', 'noise', 'mixup', 'isda', 'embed hflip', 'pixel hflip']) await advice.getByRole('cell', { name: arm, exact: true }).waitFor();
    const sentence = await page.getByTestId('recommendation').innerText();
    assert.match(sentence, /^(Augment with (none|noise|mixup|isda|embed hflip|pixel hflip): \+|Do not augment: no mode gains beyond the noise over 5-fold cross-validation on split "train")/);
    const before = await page.getByTestId('head-result').innerText();
    await page.getByRole('button', { name: 'Train the recommended head' }).click();
    // The result of the new head: shown once it completes, with its own run id.
    await page.waitForFunction((old) => {
      const t = document.querySelector('[data-testid="head-result"]')?.textContent;
      return !!t && t !== old;
    }, before, { timeout: 120_000 });
    const expected = /^Do not/.test(sentence) ? 'none' : /^Augment with (\w+)/.exec(sentence)![1];
    assert.equal(await page.locator('select[name="mode"]').inputValue(), expected);
    await noOverflow('heads');
    await shot('05-heads');
  });

  it('cancels a running job', async () => {
    await page.getByLabel('Epochs').fill('5000');
    await page.getByRole('button', { name: 'Train Ψ' }).click();
    const job = page.getByTestId('job').filter({ hasText: /Train Ψ/ }).first();
    await job.locator('.badge.running').waitFor();
    await job.getByRole('button', { name: 'Cancel' }).click();
    await job.locator('.badge.cancelled').waitFor({ timeout: 60_000 });
  });

  it('lists runs with their status, and compares two runs with overlaid curves', async () => {
    await view('Runs');
    const table = page.getByTestId('runs-table');
    await table.locator('tr[data-status="cancelled"]').first().waitFor();
    await page.getByLabel('Kind').selectOption('head');
    const boxes = table.locator('tbody tr[data-status="completed"] input[type="checkbox"]');
    await boxes.nth(0).check();
    await boxes.nth(1).check();
    await page.getByRole('button', { name: /Compare 2/ }).click();
    const cmp = page.getByTestId('comparison');
    await cmp.getByRole('cell', { name: 'mode' }).waitFor();
    assert.ok((await cmp.getByTestId('chart').count()) >= 3);
    await noOverflow('runs');
    await shot('06-runs');
    // Export the first completed head, verified, from the Runs view.
    await page.getByRole('button', { name: /Compare 2/ }).waitFor();
    await boxes.nth(1).uncheck();
    const form = page.getByTestId('export-form');
    await form.getByLabel('Destination folder').fill(join(tmp.dir, 'exports'));
    await form.getByRole('button', { name: 'Export' }).click();
    await page.getByTestId('export-result').getByText(/verified .*merged\.onnx/).waitFor({ timeout: 60_000 });
    await shot('07-export');
    await view('Paper');
    await page.getByText('No reproduction yet').waitFor();
    await shot('09-paper');
    assert.deepEqual(errors, []);
  });

  it('curates: duplicates, label errors decided by key into a new version, a map with lasso selection, versions restored', async () => {
    await view('Curation');
    await page.locator('select[name="dataset"]').selectOption({ label: 'target' });
    await page.getByRole('button', { name: 'Find duplicates' }).click();
    await page.getByTestId('duplicates').waitFor({ timeout: 120_000 });
    await page.getByRole('button', { name: 'Find label errors' }).click();
    const table = page.getByTestId('label-errors');
    await table.waitFor({ timeout: 120_000 });
    await page.keyboard.press('x');
    await page.keyboard.press('a');
    await page.getByRole('button', { name: 'Apply 2 decisions' }).click();
    await table.getByText(/new version [0-9a-f]{10}/).waitFor();
    await page.getByRole('button', { name: 'Find outliers' }).click();
    await page.getByTestId('outliers').waitFor({ timeout: 120_000 });
    await page.getByRole('button', { name: 'Draw the map' }).click();
    const map = page.getByTestId('map');
    await map.waitFor({ timeout: 120_000 });
    await map.scrollIntoViewIfNeeded();
    const box = (await map.boundingBox())!;
    await page.mouse.move(box.x + 5, box.y + 5);
    await page.mouse.down();
    for (const [fx, fy] of [[0.95, 0.05], [0.95, 0.95], [0.05, 0.95], [0.05, 0.06]]) await page.mouse.move(box.x + fx * box.width, box.y + fy * box.height, { steps: 4 });
    await page.mouse.up();
    assert.match(await page.getByTestId('map-selection').innerText(), /^\d+ selected$/);
    await page.getByLabel('Colour by').selectOption('outlier score');
    await noOverflow('curation');
    await shot('08-curation');
    await view('Datasets');
    await page.getByRole('cell', { name: 'target', exact: true }).click();
    const versions = page.getByTestId('versions');
    await versions.locator('summary').click();
    assert.match(await versions.locator('summary').innerText(), /^2 versions/);
    await versions.getByRole('button', { name: 'Restore' }).click();
    await versions.locator('summary').getByText(/^3 versions/).waitFor();
  });

  it('refuses API calls without the token and from other origins', async () => {
    const call = (headers: Record<string, string>) =>
      fetch(new URL('/api/call', web.url), { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify({ channel: 'datasets:list' }) });
    assert.equal((await call({})).status, 401);
    assert.equal((await call({ 'X-Embaug-Token': web.token, Origin: 'http://evil.example' })).status, 403);
    const ok = await call({ 'X-Embaug-Token': web.token });
    assert.equal(ok.status, 200);
    assert.equal((await ok.json()).ok, true);
    const bad = await fetch(new URL('/api/call', web.url), { method: 'POST', headers: { 'X-Embaug-Token': web.token }, body: JSON.stringify({ channel: 'jobs:start', payload: { kind: 'head', args: { epochs: -1 } } }) });
    assert.match((await bad.json()).error.message, /jobs:start: /);
  });
});
