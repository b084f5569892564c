/** `npm run web`: serves the workbench on 127.0.0.1 with a random token. */
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { defaultDbPath, openDb } from '../engine/db.js';
import { setThreads } from '../engine/native/index.js';
import { packageRoot } from '../engine/paths.js';
import { cacheDir, defaultDataDir, defaultModelsDir } from '../engine/settings.js';
import { JobRunner } from '../jobs/runner.js';
import { startWebServer } from './server.js';

const ROOT = packageRoot();
const { values } = parseArgs({ options: { db: { type: 'string' }, port: { type: 'string' }, threads: { type: 'string' } } });
const dbPath = resolve(values.db ?? defaultDbPath());
const threads = Number(values.threads ?? cpus().length);
setThreads(threads);
const db = openDb(dbPath);
const jobs = new JobRunner({ db, dbPath, threads, settings: { modelsDir: defaultModelsDir(), dataDir: defaultDataDir(), outDir: join(cacheDir(), 'reports') } });
const web = await startWebServer({ db, dbPath, jobs, staticDir: join(ROOT, 'dist', 'renderer'), port: values.port ? Number(values.port) : 0, version: process.env.npm_package_version ?? 'dev' });
console.log(`embaug web mode on ${web.url}\n(database ${dbPath}; only this machine can connect; Ctrl-C stops it)`);
const stop = async () => {
  await jobs.close();
  await web.close();
  db.close();
  process.exit(0);
};
// A bug that leaves a promise rejected is logged, never the end of the server and its jobs.
process.on('unhandledRejection', (err) => console.error('embaug web: unhandled rejection (the server goes on):', err));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
