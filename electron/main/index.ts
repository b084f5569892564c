/**
 * Electron's main process: app lifecycle (single instance), the window, the menu, and the
 * IPC handlers, which are the same `handle` as web mode's after a sender check. The desktop
 * app keeps its database, caches and reports in its user-data folder.
 */
import { app, BrowserWindow, dialog, ipcMain, Menu } from 'electron';
import { cpus } from 'node:os';
import { join } from 'node:path';

import { openDb } from '../engine/db.js';
import { setThreads } from '../engine/native/index.js';
import { packageRoot } from '../engine/paths.js';
import { defaultDataDir, defaultModelsDir } from '../engine/settings.js';
import { CHANNELS, JOB_EVENT_CHANNEL } from '../ipc/contract.js';
import { createHandler } from '../ipc/handlers.js';
import { JobRunner } from '../jobs/runner.js';
import { dialogPickers } from './options.js';
import { createWindow, trustedSender } from './window.js';

let win: BrowserWindow | null = null;
const root = packageRoot();
const rendererDir = join(root, 'dist', 'renderer');
const preload = join(root, 'dist', 'electron', 'preload', 'index.cjs');

function menu(): Menu {
  return Menu.buildFromTemplate([
    ...(process.platform === 'darwin' ? [{ role: 'appMenu' as const }] : []),
    { role: 'fileMenu' },
    { role: 'editMenu' },
    { label: 'View', submenu: [{ role: 'reload' }, { role: 'toggleDevTools' }, { type: 'separator' }, { role: 'resetZoom' }, { role: 'zoomIn' }, { role: 'zoomOut' }, { type: 'separator' }, { role: 'togglefullscreen' }] },
    {
      role: 'help',
      submenu: [{ label: 'About embaug', click: () => void dialog.showMessageBox({ message: `embaug ${app.getVersion()}`, detail: 'Transfer learning with augmentation in embedding space.' }) }],
    },
  ]);
}

// A second instance hands over to the first and does nothing else: no database, no window.
if (!app.requestSingleInstanceLock()) app.quit();
else start();

function start(): void {
  app.on('second-instance', () => {
    if (win) {
      if (win.isMinimized()) win.restore();
      win.focus();
    }
  });

  app.whenReady().then(() => {
    const dataDir = app.getPath('userData');
    const dbPath = join(dataDir, 'experiments.db');
    const threads = cpus().length;
    setThreads(threads);
    const db = openDb(dbPath);
    const jobs = new JobRunner({ db, dbPath, threads, settings: { modelsDir: defaultModelsDir(), dataDir: defaultDataDir(), outDir: join(dataDir, 'reports') } });
    const { pickFolder, pickFile } = dialogPickers((options) => (win ? dialog.showOpenDialog(win, options) : Promise.resolve({ canceled: true, filePaths: [] })));
    const handle = createHandler({ db, dbPath, jobs, mode: 'electron', version: app.getVersion(), pickFolder, pickFile });
    for (const channel of CHANNELS)
      ipcMain.handle(channel, (event, payload) => {
        if (!trustedSender(win, event.senderFrame, rendererDir)) {
          console.warn(`refused ${channel} from ${event.senderFrame?.url ?? 'an unknown frame'}`);
          return { ok: false, error: { code: 'E_SENDER', message: 'refused: not sent by the workbench window' } };
        }
        return handle(channel, payload);
      });
    jobs.onEvent((e) => win?.webContents.send(JOB_EVENT_CHANNEL, e));
    Menu.setApplicationMenu(menu());
    win = createWindow(rendererDir, preload);
    win.on('closed', () => (win = null));
    app.on('before-quit', () => {
      void jobs.close();
      db.close();
    });
  });

  app.on('window-all-closed', () => app.quit());
  process.on('unhandledRejection', (err) => console.error('embaug: unhandled rejection (the app goes on):', err));
}
