/**
 * How smooth the curation map is with all 60,000 CIFAR-10 images, in Debian's Chromium: the time
 * from a wheel event (zoom) or a pointer move (hover) until two animation frames have passed.
 * Start web mode on a database holding cifar10 and the resnet18-w16-hflip backbone, then:
 *   node --import tsx docs/curation/map-60k.mts 'http://127.0.0.1:PORT/?token=…'
 */
import { chromium } from 'playwright-core';
const url = process.argv[2];
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
await page.goto(`${url}#curation`);
await page.locator('select[name="dataset"]').selectOption({ label: 'cifar10' });
await page.locator('select[name="backbone"]').selectOption({ label: 'resnet18-w16-hflip (D=128)' });
const t0 = Date.now();
await page.getByRole('button', { name: 'Draw the map' }).click();
const map = page.getByTestId('map');
await map.waitFor({ timeout: 600_000 });
console.log(`map job done and shown after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
await map.scrollIntoViewIfNeeded();
const box = (await map.boundingBox())!;
// Time to the next frame after an input event, measured in the page.
const frame = (kind: 'wheel' | 'move', i: number) => page.evaluate(([kind, i, b]) => new Promise<number>((done) => {
  const c = document.querySelector('[data-testid="map"]') as HTMLCanvasElement;
  const x = b.x + b.width * (0.3 + 0.4 * ((i * 37) % 100) / 100), y = b.y + b.height * (0.3 + 0.4 * ((i * 53) % 100) / 100);
  const t = performance.now();
  if (kind === 'wheel') c.dispatchEvent(new WheelEvent('wheel', { deltaY: i % 2 ? 120 : -120, clientX: x, clientY: y, bubbles: true, cancelable: true }));
  else c.dispatchEvent(new PointerEvent('pointermove', { clientX: x, clientY: y, bubbles: true }));
  requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t)));
}), [kind, i, box] as const);
for (const kind of ['wheel', 'move'] as const) {
  const ms: number[] = [];
  for (let i = 0; i < 30; i++) ms.push(await frame(kind, i));
  ms.sort((a, b) => a - b);
  console.log(`${kind}: median ${ms[15].toFixed(1)} ms, p90 ${ms[27].toFixed(1)} ms to the next frame (30 events)`);
}
const n = await page.evaluate(() => document.querySelector('[data-testid="map-legend"]')?.textContent);
console.log(`legend: ${n}`);
await browser.close();
