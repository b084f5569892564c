/** The one window, with Electron's security checklist applied. */
import { BrowserWindow, shell } from 'electron';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { windowOptions } from './options.js';

export function createWindow(rendererDir: string, preload: string): BrowserWindow {
  const win = new BrowserWindow(windowOptions(preload));
  const index = pathToFileURL(join(rendererDir, 'index.html')).href;
  // Navigation stays on the app's page; links to the web open in the user's browser.
  win.webContents.on('will-navigate', (e, url) => {
    if (url !== index) e.preventDefault();
  });
  win.webContents.setWindowOpenHandler(({ url }) => {
    const u = new URL(url);
    if (u.protocol === 'https:') void shell.openExternal(u.href);
    return { action: 'deny' };
  });
  win.once('ready-to-show', () => win.show());
  void win.loadURL(index);
  return win;
}

/** An IPC sender is trusted only if it is our window's top frame showing our page. */
export function trustedSender(win: BrowserWindow | null, frame: Electron.WebFrameMain | null, rendererDir: string): boolean {
  if (!win || !frame || frame !== win.webContents.mainFrame) return false;
  try {
    const u = new URL(frame.url);
    return u.protocol === 'file:' && u.pathname === new URL(pathToFileURL(join(rendererDir, 'index.html')).href).pathname;
  } catch {
    return false;
  }
}
