/** What every command gets: the database (opened on first use), output mode, cancellation. */
import { cpus } from 'node:os';

import { type Db, defaultDbPath, openDb } from '../engine/db.js';
import { setThreads } from '../engine/native/index.js';
import type { OnProgress } from '../engine/jobs/index.js';
import { intOpt } from './args.js';
import { progressPrinter } from './progress.js';

export interface Ctx {
  db(): Db;
  dbPath: string;
  json: boolean;
  threads: number;
  signal: AbortSignal;
  progress: OnProgress;
  /** Prints an object as JSON with --json, else the text. */
  out(value: unknown, text: string | (() => string)): void;
}

export function makeCtx(values: Record<string, unknown>, signal: AbortSignal): Ctx {
  const dbPath = (values.db as string | undefined) ?? defaultDbPath();
  const threads = intOpt(values.threads, 'threads', cpus().length)!;
  let db: Db | undefined;
  return {
    dbPath,
    json: values.json as boolean,
    threads,
    signal,
    progress: progressPrinter((values.quiet as boolean) || false),
    db: () => {
      if (!db) {
        db = openDb(dbPath);
        setThreads(threads);
      }
      return db;
    },
    out(value, text) {
      process.stdout.write(values.json ? `${JSON.stringify(value, null, 2)}\n` : `${typeof text === 'function' ? text() : text}\n`);
    },
  };
}

export function table(rows: (string | number)[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  return rows.map((r) => r.map((x, c) => String(x).padEnd(widths[c])).join('  ').trimEnd()).join('\n');
}
