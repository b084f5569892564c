/** Argument parsing on node:util parseArgs, with usage errors that say what to type. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {}

export type Options = NonNullable<ParseArgsConfig['options']>;

export const GLOBAL: Options = {
  db: { type: 'string' },
  json: { type: 'boolean', default: false },
  threads: { type: 'string' },
  quiet: { type: 'boolean', short: 'q', default: false },
  help: { type: 'boolean', short: 'h', default: false },
};

/** The global options with their values, wherever they stand, apart from the other words. */
export function splitGlobals(argv: string[]): { globals: string[]; rest: string[] } {
  const globals: string[] = [], rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--db' || a === '--threads') globals.push(a, ...argv.slice(i + 1, ++i + 1));
    else if (['--json', '--quiet', '-q'].includes(a) || a.startsWith('--db=') || a.startsWith('--threads=')) globals.push(a);
    else rest.push(a);
  }
  return { globals, rest };
}

/**
 * The command's options, and at most `words` words beside them (a path, a name, run ids). A
 * word beyond those is refused: most often the second value of an option that takes several,
 * which parseArgs would otherwise leave aside (`--aug hflip vflip` extracted hflip alone).
 */
export function parse(argv: string[], options: Options, words = 0) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...GLOBAL, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const extra = parsed.positionals.slice(words);
  if (extra.length) {
    // Right after the value of an option that may be repeated: a second value meant for it.
    const at = argv.indexOf(extra[0]);
    const before = at >= 2 ? argv[at - 2] : '';
    const repeated = before.startsWith('--') && options[before.slice(2)]?.multiple ? ` (${before} takes one value each time: ${before} ${argv[at - 1]} ${before} ${extra[0]})` : '';
    throw new UsageError(`unexpected ${extra.length === 1 ? 'word' : 'words'} ${extra.map((w) => `"${w}"`).join(' ')}${repeated}; see --help`);
  }
  return parsed;
}

export function intOpt(v: unknown, name: string, def?: number): number | undefined {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} takes a whole number, got "${v}"`);
  return n;
}

export function numOpt(v: unknown, name: string, def?: number): number | undefined {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} takes a number, got "${v}"`);
  return n;
}

export function listOpt(v: unknown, name: string): number[] | undefined {
  if (v === undefined) return undefined;
  const xs = String(v).split(',').map((s) => Number(s.trim()));
  if (xs.some((x) => !Number.isFinite(x))) throw new UsageError(`--${name} takes comma-separated numbers, got "${v}"`);
  return xs;
}

/** `a, b,c` → ['a', 'b', 'c'] (empty entries dropped). */
export function namesOpt(v: unknown): string[] | undefined {
  return v === undefined ? undefined : String(v).split(',').map((s) => s.trim()).filter(Boolean);
}

/** `0-4` or `0,1,2` → [0, 1, 2, ...]. */
export function classesOpt(v: unknown): number[] | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)-(\d+)$/.exec(String(v));
  if (m && Number(m[1]) > Number(m[2])) throw new UsageError(`--classes ${m[0]} runs backwards: give the lower class first (--classes ${m[2]}-${m[1]})`);
  if (m) return Array.from({ length: Number(m[2]) - Number(m[1]) + 1 }, (_, i) => Number(m[1]) + i);
  return listOpt(v, 'classes');
}
