/**
 * The preload: the page's only way to the engine is window.embaug, with one call function
 * and one event subscription. It runs sandboxed (CommonJS, `electron` only) and cannot
 * import the contract, so the main process passes the contract's channel list on its
 * command line (main/options.ts); a channel outside it never reaches ipcRenderer, and the
 * handler table in main checks again.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';

import type { EmbaugBridge, JobEvent } from '../ipc/contract.js';

const ARG = '--embaug-channels=';
const CHANNELS = new Set((process.argv.find((a) => a.startsWith(ARG)) ?? ARG).slice(ARG.length).split(',').filter(Boolean));

const bridge: EmbaugBridge = {
  call: (channel, req) => {
    if (typeof channel !== 'string' || !CHANNELS.has(channel))
      return Promise.resolve({ ok: false, error: { code: 'E_CHANNEL', message: `unknown channel ${String(channel)}` } });
    return ipcRenderer.invoke(channel, req);
  },
  onJobEvent: (listener) => {
    const wrapped = (_e: IpcRendererEvent, ev: JobEvent) => listener(ev);
    ipcRenderer.on('jobs:event', wrapped);
    return () => ipcRenderer.removeListener('jobs:event', wrapped);
  },
};

contextBridge.exposeInMainWorld('embaug', bridge);
