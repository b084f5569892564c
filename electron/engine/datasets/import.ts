/** Importing a data set from any of the source layouts: read, then write all or nothing. */
import type { Db } from '../db.js';
import * as v from '../validate.js';
import { type SplitRule, readCifarBinary, readFolder, readWds } from './sources.js';
import { type DatasetInfo, type ImportOptions, writeDataset } from './store.js';

export const IMPORT_KINDS = ['folder', 'wds', 'cifar'] as const;
export type ImportKind = (typeof IMPORT_KINDS)[number];

export interface ImportRequest extends ImportOptions {
  kind: ImportKind;
  path: string;
  splitRule?: SplitRule;
}

/** Imports a data set from a folder, WebDataset shards or CIFAR binary files; all or nothing. */
export async function importDataset(db: Db, req: ImportRequest): Promise<DatasetInfo> {
  if (req.splitRule) {
    v.num('the test fraction', req.splitRule.test, 0, 0.99);
    v.int('the split seed', req.splitRule.seed, 0);
  }
  const src =
    req.kind === 'folder' ? readFolder(req.path, req.splitRule) : req.kind === 'wds' ? await readWds(req.path) : readCifarBinary(req.path);
  return writeDataset(db, src, req);
}
