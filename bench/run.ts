/**
 * `npm run bench -- NAME [--threads T]`: runs one benchmark (ours and its peer in the same
 * run). The peer needs Debian's python3-torch, python3-pil and libopenblas0-pthread; when
 * they are missing and we are root, they are installed here, never in the tests.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const BENCHES = ['mlp', 'extract', 'eq8', 'reproduce', 'shards', 'omega'] as const;

function ensurePeer(): void {
  const ok = spawnSync('/usr/bin/python3', ['-c', 'import torch, PIL'], { stdio: 'ignore' }).status === 0;
  const blas = existsSync('/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3') || existsSync('/usr/lib/aarch64-linux-gnu/openblas-pthread/libblas.so.3');
  if (ok && blas) return;
  if (process.getuid?.() !== 0) throw new Error('the peer needs: sudo apt-get install -y python3-torch python3-pil libopenblas0-pthread');
  console.log('installing the PyTorch peer (python3-torch, python3-pil, libopenblas0-pthread) ...');
  const r = spawnSync('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch python3-pil libopenblas0-pthread'], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('installing the peer failed');
}

const name = process.argv[2];
if (!BENCHES.includes(name as (typeof BENCHES)[number])) {
  console.error(`usage: npm run bench -- <${BENCHES.join('|')}> [--threads T]`);
  process.exit(2);
}
// The shards benchmark compares embaug with itself (one process against a job array).
if (name !== 'shards') ensurePeer();
const mod = await import(`./${name}.ts`);
await mod.main(process.argv.slice(3));
