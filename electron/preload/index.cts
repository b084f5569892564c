/**
 * The preload: the page's only way to the engine is window.embaug, with one call function
 * and one event subscription. It runs sandboxed (CommonJS, `electron` only), so channel
 * checking is by shape here and by the handler table in main.
 */
import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';

import type { EmbaugBridge, JobEvent } from '../ipc/contract.js';

const CHANNEL = /^[a-z]+:[a-z]+$/;

const bridge: EmbaugBridge = {
  call: (channel, req) => {
    if (typeof channel !== 'string' || !CHANNEL.test(channel) || (channel as string) === 'jobs:event')
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
