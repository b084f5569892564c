/**
 * The `embaug` command. Exit codes: 0 done, 1 unexpected failure, 2 usage error, 3 not
 * found, 4 bad input data or model, 5 compute backend failure, 130 cancelled (Ctrl-C).
 */
import { errorInfo, type ErrorCode } from '../engine/errors.js';
import { UsageError, splitGlobals } from './args.js';
import { DATA_HELP, data } from './commands/data.js';
import { BACKBONE_HELP, CACHE_HELP, EXTRACT_HELP, backbone, cache, extractCmd } from './commands/model.js';
import { CLUSTER_HELP, MERGE_HELP, cluster, mergeCmd } from './commands/cluster.js';
import { CURATE_HELP, curate } from './commands/curate.js';
import { REPRODUCE_HELP, reproduceCmd } from './commands/reproduce.js';
import { EXPORT_HELP, RUNS_HELP, exportCmd, runs } from './commands/runs.js';
import { ADVISE_HELP, STUDY_HELP, adviseCmd, studyCmd } from './commands/study.js';
import { HEAD_HELP, OMEGA_HELP, headCmd, omegaCmd } from './commands/train.js';
import { makeCtx, type Ctx } from './context.js';

type Command = { run: (ctx: Ctx, argv: string[]) => Promise<void>; help: string };

const COMMANDS: Record<string, Command> = {
  data: { run: data, help: DATA_HELP },
  backbone: { run: backbone, help: BACKBONE_HELP },
  extract: { run: extractCmd, help: EXTRACT_HELP },
  omega: { run: omegaCmd, help: OMEGA_HELP },
  head: { run: headCmd, help: HEAD_HELP },
  cache: { run: cache, help: CACHE_HELP },
  runs: { run: runs, help: RUNS_HELP },
  reproduce: { run: reproduceCmd, help: REPRODUCE_HELP },
  study: { run: studyCmd, help: STUDY_HELP },
  advise: { run: adviseCmd, help: ADVISE_HELP },
  export: { run: exportCmd, help: EXPORT_HELP },
  curate: { run: curate, help: CURATE_HELP },
  cluster: { run: cluster, help: CLUSTER_HELP },
  merge: { run: mergeCmd, help: MERGE_HELP },
};

const HELP = () => `embaug: transfer learning with augmentation in embedding space

usage: embaug <command> [options]   (global: --db PATH, --json, --threads N, --quiet)

${Object.values(COMMANDS).map((c) => c.help).join('\n\n')}

The database defaults to ./experiments.db (or $EMBAUG_DB).`;

const EXIT: Partial<Record<ErrorCode, number>> = {
  E_ARG: 2, E_USAGE: 2, E_NOT_FOUND: 3, E_IMPORT: 4, E_MODEL: 4, E_CHECKSUM: 4, E_DOWNLOAD: 4, E_EXPORT: 4, E_EXISTS: 4,
  E_NATIVE: 5, E_NATIVE_ALLOC: 5, E_NATIVE_DEVICE: 5, E_NATIVE_LOAD: 5, E_BACKEND_UNAVAILABLE: 5, E_CANCELLED: 130,
};

export async function main(argv: string[]): Promise<number> {
  const ac = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    // First Ctrl-C cancels cleanly (the run is recorded as cancelled); a second one quits now.
    if (++interrupts > 1) process.exit(130);
    process.stderr.write('\ncancelling… (Ctrl-C again to quit at once)\n');
    ac.abort();
  };
  process.on('SIGINT', onSigint);
  // Global options may stand anywhere, before the command too: `embaug --db x.db runs list`.
  // They go after the command's own words, so sub-commands (`runs list`) still come first.
  const { globals, rest: words } = splitGlobals(argv);
  const name = words[0];
  const rest = [...words.slice(1), ...globals];
  const json = argv.includes('--json');
  try {
    if (!name || name === 'help' || name === '--help' || name === '-h') {
      process.stdout.write(`${HELP()}\n`);
      return name ? 0 : 2;
    }
    const cmd = COMMANDS[name];
    if (!cmd) throw new UsageError(`unknown command "${name}": try embaug --help`);
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(`${cmd.help}\n`);
      return 0;
    }
    await cmd.run(makeCtx(globalValues(globals), ac.signal), rest);
    return 0;
  } catch (err) {
    const info = err instanceof UsageError ? { code: 'E_USAGE' as const, message: err.message } : errorInfo(err);
    const code = EXIT[info.code] ?? 1;
    const message = info.message;
    if (json) process.stdout.write(`${JSON.stringify({ error: info })}\n`);
    process.stderr.write(`embaug: ${message}\n`);
    if (code === 1 && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return code;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/** Global options may stand anywhere; commands parse their own with the globals included. */
function globalValues(argv: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = { json: false, quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') out.json = true;
    else if (a === '--quiet' || a === '-q') out.quiet = true;
    else if (a === '--db' || a === '--threads') out[a.slice(2)] = argv[++i];
    else if (a.startsWith('--db=') || a.startsWith('--threads=')) out[a.slice(2, a.indexOf('='))] = a.slice(a.indexOf('=') + 1);
  }
  return out;
}
