/**
 * The desktop shell's parts that run without Electron's binary: the sandboxed preload,
 * loaded with a stand-in for `electron`, and the window's options.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { CHANNELS, type EmbaugBridge } from '../../electron/ipc/contract.js';
import { CHANNELS_ARG, channelsArgument, dialogPickers, type OpenDialogLike, windowOptions } from '../../electron/main/options.js';
import { REPO } from '../helpers/shared.js';

const require = createRequire(import.meta.url);

/** Loads the preload as Electron would, with `electron` replaced by a recorder. */
function loadPreload(argv: string[]) {
  const invoked: string[] = [];
  let exposed: { key: string; api: EmbaugBridge } | undefined;
  const fake = {
    contextBridge: { exposeInMainWorld: (key: string, api: EmbaugBridge) => (exposed = { key, api }) },
    ipcRenderer: {
      invoke: (channel: string) => (invoked.push(channel), Promise.resolve({ ok: true, value: channel })),
      on: () => undefined,
      removeListener: () => undefined,
    },
  };
  const Module = require('node:module') as { _load: (req: string, ...rest: unknown[]) => unknown };
  const load = Module._load;
  const argv0 = process.argv;
  Module._load = function (req: string, ...rest: unknown[]) {
    return req === 'electron' ? fake : load.call(this, req, ...rest);
  };
  process.argv = [...argv0, ...argv];
  const file = join(REPO, 'electron', 'preload', 'index.cts');
  try {
    delete require.cache[require.resolve(file)];
    require(file);
  } finally {
    Module._load = load;
    process.argv = argv0;
  }
  assert.ok(exposed);
  return { key: exposed.key, api: exposed.api, invoked };
}

describe('the preload', () => {
  it('passes every channel of the contract, and nothing else, to ipcRenderer', async () => {
    const { key, api, invoked } = loadPreload([channelsArgument()]);
    assert.equal(key, 'embaug');
    for (const c of CHANNELS) assert.deepEqual(await api.call(c, {} as never), { ok: true, value: c }, c);
    assert.deepEqual(invoked, [...CHANNELS]);
    assert.ok(CHANNELS.includes('backbones:addClassifier'), 'the channel with an upper-case letter is in the contract');
    for (const bad of ['jobs:event', 'datasets:nope', 'ELECTRON_BROWSER_REQUIRE', '', 'system:info ', '__proto__'] as string[]) {
      const r = (await api.call(bad as never, {} as never)) as { ok: boolean; error?: { code: string } };
      assert.equal(r.ok, false, bad);
      assert.equal(r.error?.code, 'E_CHANNEL');
    }
    assert.equal(invoked.length, CHANNELS.length);
  });

  it('without the channel list from main it lets nothing through', async () => {
    const { api, invoked } = loadPreload([]);
    const r = (await api.call('system:info', undefined as never)) as { ok: boolean };
    assert.equal(r.ok, false);
    assert.equal(invoked.length, 0);
  });
});

describe('the window', () => {
  it('is isolated and sandboxed, with no Node in the page, and hands the preload the channel list', () => {
    const o = windowOptions('/app/preload.cjs');
    assert.equal(o.webPreferences.preload, '/app/preload.cjs');
    assert.equal(o.webPreferences.contextIsolation, true);
    assert.equal(o.webPreferences.sandbox, true);
    assert.equal(o.webPreferences.nodeIntegration, false);
    assert.equal(o.webPreferences.webSecurity, true);
    assert.deepEqual(o.webPreferences.additionalArguments, [`${CHANNELS_ARG}${CHANNELS.join(',')}`]);
  });
});

describe('the system dialogs', () => {
  it('ask for a folder (which may be created) or a file of the given kinds, and give the first path, or null when cancelled', async () => {
    const asked: OpenDialogLike[] = [];
    let answer = { canceled: false, filePaths: ['/home/u/pictures', '/home/u/other'] };
    const { pickFolder, pickFile } = dialogPickers(async (o) => (asked.push(o), answer));
    assert.equal(await pickFolder(), '/home/u/pictures');
    assert.deepEqual(asked[0], { properties: ['openDirectory', 'createDirectory'] });
    answer = { canceled: false, filePaths: ['/m/resnet.onnx'] };
    assert.equal(await pickFile(['onnx']), '/m/resnet.onnx');
    assert.deepEqual(asked[1], { properties: ['openFile'], filters: [{ name: 'onnx', extensions: ['onnx'] }] });
    answer = { canceled: true, filePaths: ['/stale'] };
    assert.equal(await pickFile(['json']), null);
    answer = { canceled: false, filePaths: [] };
    assert.equal(await pickFolder(), null);
  });
});

describe('the main process', () => {
  it('a second instance hands over and quits without opening the database or a window', async () => {
    const { register } = await import('node:module');
    const calls: string[] = [];
    const g = globalThis as unknown as { __electronFake: unknown };
    const fakeApp = (lock: boolean) => ({
      requestSingleInstanceLock: () => (calls.push('lock'), lock),
      quit: () => calls.push('quit'),
      on: (ev: string) => calls.push(`on:${ev}`),
      whenReady: () => (calls.push('whenReady'), new Promise(() => undefined)),
      getPath: () => '/nonexistent',
      getVersion: () => 'test',
    });
    // The module is loaded once; each export reads the stand-in of the moment.
    const fake = ['app', 'BrowserWindow', 'dialog', 'ipcMain', 'Menu', 'shell']
      .map((k) => `export const ${k} = new Proxy({}, { get: (_, p) => globalThis.__electronFake.${k}[p] });`)
      .join('\n');
    const hook = `export async function resolve(s, c, next) { return s === 'electron' ? { url: 'data:text/javascript,${encodeURIComponent(fake)}', shortCircuit: true } : next(s, c); }`;
    register(`data:text/javascript,${encodeURIComponent(hook)}`);
    const main = new URL(`../../electron/main/index.ts`, import.meta.url);
    g.__electronFake = { app: fakeApp(false), BrowserWindow: class {}, dialog: {}, ipcMain: {}, Menu: {}, shell: {} };
    await import(`${main.href}?second`);
    assert.deepEqual(calls, ['lock', 'quit']);
    calls.length = 0;
    g.__electronFake = { app: fakeApp(true), BrowserWindow: class {}, dialog: {}, ipcMain: {}, Menu: {}, shell: {} };
    await import(`${main.href}?first`);
    assert.deepEqual(calls, ['lock', 'on:second-instance', 'whenReady', 'on:window-all-closed']);
  });
});
