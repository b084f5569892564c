/**
 * The window's options and what the sandboxed preload is told, without importing electron,
 * so that they can be tested where Electron's binary is missing.
 */
import { CHANNELS } from '../ipc/contract.js';

/** The preload runs sandboxed and can import nothing of ours: it gets the channels on its command line. */
export const CHANNELS_ARG = '--embaug-channels=';

export function channelsArgument(): string {
  return `${CHANNELS_ARG}${CHANNELS.join(',')}`;
}

/** Electron's security checklist: isolated, sandboxed, no Node in the page. */
export function windowOptions(preload: string) {
  return {
    width: 1280,
    height: 800,
    minWidth: 960,
    minHeight: 600,
    title: 'embaug',
    show: false,
    webPreferences: {
      preload,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webSecurity: true,
      spellcheck: false,
      additionalArguments: [channelsArgument()],
    },
  };
}
