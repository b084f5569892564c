import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { samples, writeShard } from '../helpers/fixtures.js';
import { MODELS, REPO, WDS, tempDir } from '../helpers/shared.js';

const tmp = tempDir();
const db = join(tmp.dir, 'cli.db');

function embaug(...args: string[]) {
  const r = spawnSync(process.execPath, [join(REPO, 'bin', 'embaug.js'), ...args], { encoding: 'utf8', cwd: tmp.dir, env: { ...process.env, EMBAUG_DB: db } });
  return { code: r.status, out: r.stdout, err: r.stderr, json: () => JSON.parse(r.stdout) };
}

describe('the embaug command', () => {
  before(async () => {
    const dir = join(tmp.dir, 'shards');
    mkdirSync(dir);
    await writeShard(join(dir, 'train-000000.tar'), await samples('train-000000.tar', 120));
    await writeShard(join(dir, 'test-000000.tar'), await samples('test-000000.tar', 40));
    copyFileSync(join(WDS, 'classes.txt'), join(dir, 'classes.txt'));
  });
  after(() => tmp.cleanup());

  it('imports, registers, extracts and reports, with --json for scripts', () => {
    const imp = embaug('data', 'import', join(tmp.dir, 'shards'), '--kind', 'wds', '--name', 'mini', '--json');
    assert.equal(imp.code, 0, imp.err);
    assert.equal(imp.json().imageCount, 160);
    assert.match(imp.err, /checking images: 160\/160 images \(100%\)/);
    const bb = embaug('backbone', 'add', join(MODELS, 'tiny-resnet18-w4.onnx'), '--json');
    assert.equal(bb.code, 0, bb.err);
    assert.equal(bb.json().dim, 32);
    const ex = embaug('extract', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--aug', 'vflip', '--split', 'train', '--classes', '0-4');
    assert.equal(ex.code, 0, ex.err);
    assert.match(ex.out, /^embedding set \d+: \d+ extracted, 0 already cached, \d+ images\/s \(the main thread busy [\d.]+% of the time, waiting on ONNX Runtime the rest\)/);
    assert.match(ex.err, /extracting embeddings: \d+\/\d+ images \(100%\)\s+\d+ images\/s\s+ETA/);
    const stats = embaug('cache', 'stats', '--json').json();
    assert.equal(stats.sets[0].augKey, 'vflip');
    const list = embaug('data', 'list');
    assert.match(list.out, /^id\s+name\s+kind\s+images/m);
    assert.match(list.out, /mini\s+wds\s+160\s+10/);
    const runs = embaug('runs', 'list', '--json').json();
    assert.equal(runs[0].kind, 'extract');
    assert.equal(runs[0].status, 'completed');
    const show = embaug('runs', 'show', String(runs[0].id));
    assert.match(show.out, /config: \{"aug":"vflip"/);
  });

  it('exit codes say what failed: usage 2, not found 3, bad input 4', () => {
    const usage = embaug('extract', '--dataset', 'mini');
    assert.equal(usage.code, 2);
    assert.match(usage.err, /extract needs --dataset and --backbone/);
    assert.equal(embaug('frobnicate').code, 2);
    const missing = embaug('extract', '--dataset', 'nope', '--backbone', 'tiny-resnet18-w4', '--json');
    assert.equal(missing.code, 3);
    assert.equal(missing.json().error.code, 'E_NOT_FOUND');
    const bad = embaug('data', 'import', join(tmp.dir, 'shards'), '--kind', 'cifar');
    assert.equal(bad.code, 4);
    assert.match(bad.err, /not a CIFAR binary folder/);
    const aug = embaug('extract', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--aug', 'hflop');
    assert.equal(aug.code, 2);
    assert.match(aug.err, /unknown augmentation "hflop"/);
    const base = embaug('reproduce', '--per-class', '4', '--bases', 'none,vflip');
    assert.equal(base.code, 2);
    assert.match(base.err, /unknown base "vflip": expected none or hflip/);
  });

  it('edits a data set into versions, diffs, restores and exports them, and curates it', () => {
    const v0 = embaug('data', 'versions', 'mini', '--json').json();
    assert.equal(v0.length, 1);
    const edit = embaug('data', 'edit', 'mini', '--relabel', '0,1', '--to', '7', '--exclude', 'split=test', '--message', 'check');
    assert.equal(edit.code, 0, edit.err);
    assert.match(edit.out, /^new version [0-9a-f]{16}… \(120 images, 10 classes\): check/);
    const vs = embaug('data', 'versions', 'mini', '--json').json();
    const diff = embaug('data', 'diff', 'mini', vs[0].hash.slice(0, 10), vs[1].hash.slice(0, 10), '--json').json();
    assert.equal(diff.removed.length, 40);
    assert.ok(diff.relabelled.every((r: { to: number }) => r.to === 7));
    assert.equal(embaug('data', 'restore', 'mini', vs[0].hash).code, 0);
    assert.equal(embaug('data', 'list', '--json').json()[0].version, vs[0].hash);
    const out = join(tmp.dir, 'exported');
    assert.equal(embaug('data', 'export', 'mini', '--format', 'wds', '--out', out).code, 0);
    assert.equal(embaug('data', 'import', out, '--kind', 'wds', '--name', 'again', '--json').json().version, vs[0].hash);
    const bad = embaug('data', 'edit', 'mini', '--relabel', '0', '--to', '12');
    assert.equal(bad.code, 2);
    assert.match(bad.err, /label 12 is not a class of mini/);
    // Mistakes in a selection or a missing partner flag are named; no version is made.
    for (const [args, message] of [
      [['--exclude', 'label=3,label=4'], /^embaug: selector "label=3,label=4" gives label= twice: a filter selects the images that meet all its conditions; make one edit per label$/m],
      [['--exclude', 'label=cat'], /^embaug: selector "label=cat": a label is a class number/m],
      [['--exclude', 'split=tset'], /^embaug: no image of mini matches \{"split":"tset"\}: its splits are "test", "train" and its labels 0\.\.9$/m],
      [['--relabel', '3'], /^embaug: --relabel needs --to$/m],
      [['--tag', '3', '--tags', ',,'], /^embaug: tag needs at least one tag$/m],
    ] as const) {
      const r = embaug('data', 'edit', 'mini', ...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, message, args.join(' '));
    }
    assert.equal(embaug('data', 'versions', 'mini', '--json').json().length, vs.length + 1);
    const dup = embaug('curate', 'duplicates', '--dataset', 'again', '--backbone', 'tiny-resnet18-w4', '--json');
    assert.equal(dup.code, 0, dup.err);
    assert.ok(Array.isArray(dup.json().near));
    assert.match(embaug('curate', 'balance', '--dataset', 'mini').out, /^class\s+split\s+images/);
  });

  it('trains Ω and Ψ from the terminal, with global options before or after the command, every --aug honoured', () => {
    // Global options before the command, and two --aug: one Ω each.
    const om = spawnSync(process.execPath, [join(REPO, 'bin', 'embaug.js'), '--db', db, '--json', 'omega', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--aug', 'hflip', '--aug', 'vflip', '--classes', '0-4', '--epochs', '2'], { encoding: 'utf8', cwd: tmp.dir });
    assert.equal(om.status, 0, om.stderr);
    const omegas = JSON.parse(om.stdout) as { aug: string; runId: number; fidelity: { heldOutMse: number } }[];
    assert.deepEqual(omegas.map((o) => o.aug), ['hflip', 'vflip']);
    assert.ok(omegas.every((o) => o.fidelity.heldOutMse > 0));
    const head = embaug('head', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--classes', '5-9', '--mode', 'embed', '--aug', 'hflip', '--epochs', '3', '--seed', '4');
    assert.equal(head.code, 0, head.err);
    assert.match(head.out, /^Ψ embed hflip \(run \d+\): test accuracy \d+\.\d\d% after 3 epochs/);
    assert.ok(head.err.includes(`embed mode: Ω for hflip from run ${omegas[0].runId}`), head.err);
    // The same head again by the CLI's --json: the same run config, the same accuracy (its seed).
    const again = embaug('head', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--classes', '5-9', '--mode', 'embed', '--aug', 'hflip', '--omega', `hflip=${omegas[0].runId}`, '--epochs', '3', '--seed', '4', '--json').json();
    assert.equal(`${(100 * again.testAccuracy).toFixed(2)}%`, /(\d+\.\d\d%)/.exec(head.out)![1]);
    // An Ω for another augmentation is refused, and a class the data set lacks.
    const wrong = embaug('head', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--classes', '5-9', '--mode', 'embed', '--aug', 'hflip', '--omega', `hflip=${omegas[1].runId}`);
    assert.equal(wrong.code, 2);
    assert.match(wrong.err, /the Ω of run \d+ is for "vflip", not "hflip"/);
    const classes = embaug('head', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--classes', '0-40');
    assert.equal(classes.code, 2);
    assert.match(classes.err, /classes 10, 11, 12, 13, 14, …: data set "mini" has 10 classes, numbered 0 to 9/);
    // runs compare: a value a run does not have is a dash, never "undefined".
    const cmp = embaug('runs', 'compare', String(omegas[0].runId), String(again.runId));
    assert.equal(cmp.code, 0, cmp.err);
    assert.ok(!cmp.out.includes('undefined'), cmp.out);
    assert.match(cmp.out, /—/);
    // A stochastic form of Ω, in a later process than the Ω's: --sampling draws from the shift
    // models the Ω keeps with its run; an Ω without them is passed over, or refused when named.
    const noModels = embaug('head', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--classes', '5-9', '--mode', 'embed', '--aug', 'hflip', '--sampling', 'residual-gauss');
    assert.equal(noModels.code, 2);
    assert.match(noModels.err, /no Ω for "hflip" on tiny-resnet18-w4 with its shift models .*embaug omega --stochastic/);
    const st = embaug('omega', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--aug', 'hflip', '--classes', '0-4', '--epochs', '2', '--stochastic');
    assert.equal(st.code, 0, st.err);
    assert.match(st.out, /held-out MSE of the mean \/ energy score of the draws: identity [\d.e-]+ \/ [\d.e-]+, mean .*, residual-gauss .*, mdn [\d.e-]+ \/ [\d.e-]+$/m);
    const drawn = embaug('head', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--classes', '5-9', '--mode', 'embed', '--aug', 'hflip', '--sampling', 'residual-gauss', '--epochs', '3', '--seed', '4');
    assert.equal(drawn.code, 0, drawn.err);
    assert.match(drawn.out, /^Ψ embed hflip \(residual-gauss\) \(run \d+\): test accuracy/);
    const named = embaug('head', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--classes', '5-9', '--mode', 'embed', '--aug', 'hflip', '--omega', `hflip=${omegas[0].runId}`, '--sampling', 'knn-shift');
    assert.equal(named.code, 2);
    assert.match(named.err, new RegExp(`the Ω of run ${omegas[0].runId} was trained without them`));
  });

  it('exports the runs in MLflow\'s file-store layout; every run\'s params and final metrics read back from the files', () => {
    const out = join(tmp.dir, 'mlruns');
    const best = (embaug('runs', 'list', '--kind', 'head', '--status', 'completed', '--json').json() as { id: number }[])[0].id;
    const tagged = embaug('runs', 'tag', String(best), 'keep', 'best');
    assert.equal(tagged.code, 0, tagged.err);
    assert.match(tagged.out, new RegExp(`^run ${best}: tags keep, best; note \\(none\\)`));
    assert.equal(embaug('runs', 'note', String(best), 'the', 'one', 'to', 'keep').code, 0);
    const r = embaug('runs', 'export', '--format', 'mlflow', '--out', out, '--json');
    assert.equal(r.code, 0, r.err);
    const runs = embaug('runs', 'list', '--limit', '10000', '--json').json() as { id: number; kind: string; name: string; status: string; config: Record<string, unknown>; summary: Record<string, unknown> | null; parentId: number | null }[];
    assert.equal(r.json().runs, runs.length);
    // A small reader of the documented layout: experiments, runs, meta.yaml, params, metrics, tags.
    const yaml = (f: string) => Object.fromEntries(readFileSync(f, 'utf8').trim().split('\n').map((l) => {
      const [k, ...v] = l.split(': ');
      const t = v.join(': ');
      return [k, /^'.*'$/.test(t) ? t.slice(1, -1).replace(/''/g, "'") : t];
    }));
    const found = new Map<number, { dir: string; meta: Record<string, string> }>();
    for (const exp of readdirSync(out)) {
      assert.match(exp, /^\d+$/);
      assert.equal(yaml(join(out, exp, 'meta.yaml')).experiment_id, exp);
      for (const run of readdirSync(join(out, exp)).filter((f) => f !== 'meta.yaml')) {
        const dir = join(out, exp, run);
        const meta = yaml(join(dir, 'meta.yaml'));
        assert.equal(meta.run_id, run);
        found.set(Number(readFileSync(join(dir, 'tags', 'embaug.run_id'), 'utf8')), { dir, meta });
      }
    }
    assert.equal(found.size, runs.length);
    const byId = new Map(runs.map((x) => [x.id, x]));
    let checkedMetrics = 0;
    for (const run of runs) {
      const f = found.get(run.id)!;
      assert.equal(f.meta.run_name, run.name);
      assert.equal(f.meta.status, run.status === 'completed' ? '3' : run.status === 'failed' ? '4' : run.status === 'running' ? '1' : '5');
      assert.equal(readFileSync(join(f.dir, 'tags', 'mlflow.runName'), 'utf8'), run.name);
      if (run.parentId !== null && byId.has(run.parentId)) assert.equal(readFileSync(join(f.dir, 'tags', 'mlflow.parentRunId'), 'utf8'), found.get(run.parentId)!.meta.run_id);
      for (const [k, v] of Object.entries(run.config))
        if (v !== null && v !== undefined && typeof v !== 'object') assert.equal(readFileSync(join(f.dir, 'params', k), 'utf8'), typeof v === 'string' ? v : JSON.stringify(v), `run ${run.id} param ${k}`);
      for (const [k, v] of Object.entries(run.summary ?? {}))
        if (typeof v === 'number') {
          const last = readFileSync(join(f.dir, 'metrics', k), 'utf8').trim().split('\n').at(-1)!.split(' ');
          assert.equal(Number(last[1]), v, `run ${run.id} metric ${k}`);
          checkedMetrics++;
        }
    }
    assert.ok(checkedMetrics > 5);
    assert.equal(readFileSync(join(found.get(best)!.dir, 'tags', 'embaug.tags'), 'utf8'), 'keep, best');
    assert.equal(readFileSync(join(found.get(best)!.dir, 'tags', 'mlflow.note.content'), 'utf8'), 'the one to keep');
    // A head's per-epoch series, one line per epoch: "<timestamp> <value> <step>".
    const head = runs.find((x) => x.kind === 'head' && x.status === 'completed')!;
    const lines = readFileSync(join(found.get(head.id)!.dir, 'metrics', 'test_acc'), 'utf8').trim().split('\n');
    assert.deepEqual(lines.map((l) => Number(l.split(' ')[2])), [1, 2, 3]);
    // Exporting again writes the same run folders; a folder with other files is refused.
    assert.equal(embaug('runs', 'export', '--format', 'mlflow', '--out', out).code, 0);
    assert.equal(readdirSync(out).reduce((n, e) => n + readdirSync(join(out, e)).length - 1, 0), runs.length);
    const refused = embaug('runs', 'export', '--format', 'mlflow', '--out', join(tmp.dir, 'shards'));
    assert.equal(refused.code, 4);
    assert.match(refused.err, /holds files that are not MLflow experiments/);
    // Deleting a run (its child runs, metrics and artifacts with it); the rest stay.
    const del = embaug('runs', 'delete', String(best), '--json');
    assert.equal(del.code, 0, del.err);
    const under = runs.filter((c) => c.parentId === best).map((c) => c.id);
    assert.deepEqual(del.json().deleted, [best, ...under].sort((a, b) => a - b));
    assert.equal((embaug('runs', 'list', '--limit', '10000', '--json').json() as unknown[]).length, runs.length - 1 - under.length);
    assert.equal(embaug('runs', 'show', String(best)).code, 3);
  });

  it('read-only commands do not create a database where there is none', () => {
    const nowhere = join(tmp.dir, 'nowhere.db');
    for (const args of [['runs', 'list'], ['data', 'list'], ['backbone', 'list'], ['cache', 'stats']]) {
      const r = spawnSync(process.execPath, [join(REPO, 'bin', 'embaug.js'), ...args, '--db', nowhere], { encoding: 'utf8', cwd: tmp.dir });
      assert.equal(r.status, 3, args.join(' '));
      assert.match(r.stderr, /There is no database at .*nowhere\.db: nothing has been recorded there yet/);
      assert.ok(!existsSync(nowhere), args.join(' '));
    }
  });

  it('writes only where told: a file given as a folder, or an existing file, is refused in words before any work and left as it was', () => {
    const file = join(tmp.dir, 'notes.txt');
    writeFileSync(file, 'mine');
    const head = (embaug('runs', 'list', '--kind', 'head', '--json').json() as { id: number; status: string }[]).find((r) => r.status === 'completed')!;
    const asFolder = /^embaug: Could not create the folder .*notes\.txt(\/array)?: .*notes\.txt is a file, not a folder\. Nothing was written; choose another folder\.$/m;
    const exists = /^embaug: .*notes\.txt exists: embaug does not overwrite files; choose another name or remove it\.$/m;
    for (const [args, code, message] of [
      [['runs', 'export', '--format', 'mlflow', '--out', file], 2, asFolder],
      [['data', 'export', 'mini', '--format', 'folder', '--out', file], 2, asFolder],
      [['export', '--run', String(head.id), '--out', file], 4, asFolder],
      [['reproduce', '--out', file, '--subset', '20', '--seeds', '1', '--epochs', '1'], 2, asFolder],
      [['extract', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--shard', '1/2', '--out', file], 2, asFolder],
      [['cluster', 'slurm', '--tasks', '2', '--out', join(file, 'array'), 'extract', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4'], 2, asFolder],
      [['cache', 'export', '--format', 'parquet', '--out', join(file, 'x.parquet')], 2, asFolder],
      [['cache', 'export', '--format', 'parquet', '--out', file], 4, exists],
      [['curate', 'map', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--out', file], 4, exists],
    ] as const) {
      const r = embaug(...args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, message, args.join(' '));
      assert.doesNotMatch(r.err, /\n\s+at /, `${args.join(' ')}: a stack trace`);
      assert.doesNotMatch(r.err, /extracting|importing/, args.join(' '));
      assert.equal(readFileSync(file, 'utf8'), 'mine');
    }
  });

  it('says what was wrong with a flag and exits 2, before any work; a kind that matches no run is named', () => {
    for (const [args, message] of [
      [['head', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--classes', '4-0'], /^embaug: --classes 4-0 runs backwards: give the lower class first \(--classes 0-4\)$/m],
      [['head', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--epochs', '0'], /^embaug: epochs must be in \[1, 100000\], got 0$/m],
      [['omega', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--aug', 'rotate:min=20,max=10'], /^embaug: rotate:min is 20, above max 10/m],
      [['runs', 'list', '--status', 'done'], /^embaug: status must be one of "running", .*got "done"$/m],
      [['backbone', 'add', join(MODELS, 'tiny-resnet18-w4.onnx'), '--size', '0'], /^embaug: --size is read only with --input NAME \(with --size HxW and --embedding OUTPUT\): without --input the model's manifest is used as it stands\. Give --input too, or leave it out$/m],
      [['backbone', 'add', join(MODELS, 'tiny-resnet18-w4.onnx'), '--from-classifier', '--embedding', 'x'], /^embaug: --embedding is not read with --from-classifier/m],
      [['head', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--aug', 'hflip'], /^embaug: --mode none trains without an augmentation, so --aug would be ignored: add --mode pixel or --mode embed, or leave --aug out$/m],
      [['head', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--mode', 'pixel', '--aug', 'hflip', '--omega', 'hflip=1'], /^embaug: --omega names the Ω that embed mode applies/m],
      [['head', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--mode', 'embed', '--aug', 'hflip', '--omega', 'vflip=1'], /^embaug: --omega vflip=… names an augmentation this head does not train with \(--aug hflip\)/m],
      [['data', 'import', join(tmp.dir, 'shards'), '--kind', 'wds', '--name', 'split', '--test-fraction', '0.3'], /^embaug: --test-fraction splits an image folder that has no train\/test folders; WebDataset shards carry their own splits: leave it out$/m],
      [['data', 'import', join(tmp.dir, 'shards'), '--kind', 'folder', '--name', 'split', '--test-fraction', '2'], /^embaug: the test fraction must be in \[0, 0\.99\], got 2$/m],
      [['extract', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--aug', 'hflip', 'vflip'], /^embaug: unexpected word "vflip" \(--aug takes one value each time: --aug hflip --aug vflip\); see --help$/m],
      [['head', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4', '--mode', 'pixel', '--aug', 'hflip', '--aug', 'hflip:p=1'], /^embaug: --aug gives hflip twice: give each once$/m],
      [['runs', 'list', 'head'], /^embaug: unexpected word "head"; see --help$/m],
      [['runs', 'show', 'abc'], /^embaug: "abc" is not a run id: a run id is a whole number from 1 \(see embaug runs list\)$/m],
      [['runs', 'compare', '1', '0'], /^embaug: "0" is not a run id/m],
      [['--threads', '0', 'head', '--dataset', 'mini', '--backbone', 'tiny-resnet18-w4'], /^embaug: --threads is the number of cores to use, at least 1 \(this machine has \d+\); got 0$/m],
    ] as const) {
      const r = embaug(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
      assert.match(r.err, message);
      assert.doesNotMatch(r.err, /extracting/);
    }
    const none = embaug('runs', 'list', '--kind', 'heads');
    assert.equal(none.code, 0, none.err);
    assert.match(none.out, /^No runs of kind "heads"; the kinds of runs here: .*\bhead\b/);
    // A filter that matches nothing deletes and writes nothing, and says so; a limit of 0 is refused.
    const noGroup = embaug('runs', 'delete', '--group', 'nope');
    assert.equal(noGroup.code, 3, noGroup.err);
    assert.match(noGroup.err, /^embaug: There are no runs in group "nope": nothing was deleted\. Groups here: /m);
    const noKind = embaug('runs', 'export', '--format', 'mlflow', '--out', join(tmp.dir, 'mlruns-none'), '--kind', 'heads');
    assert.equal(noKind.code, 3, noKind.err);
    assert.match(noKind.err, /^embaug: No runs with kind "heads": nothing was written/m);
    assert.ok(!existsSync(join(tmp.dir, 'mlruns-none')));
    assert.equal(embaug('runs', 'delete', '1', '--group', 'g').code, 2);
    assert.match(embaug('runs', 'list', '--limit', '0').err, /^embaug: --limit takes a whole number from 1, got 0$/m);
    const running = embaug('runs', 'list', '--status', 'running', '--kind', 'head');
    assert.equal(running.code, 0, running.err);
    assert.equal(running.out.trim(), 'No runs with kind "head", status "running".');
  });

  it('prints help for every command', () => {
    const h = embaug('--help');
    assert.equal(h.code, 0);
    for (const c of ['embaug data <command>', 'import <path>', 'embaug backbone <command>', 'embaug extract', 'embaug omega', 'embaug head', 'embaug cache <command>', 'embaug runs <command>', 'embaug cluster <command>', 'embaug merge DIR']) assert.ok(h.out.includes(c), c);
  });
});
