/**
 * Extraction throughput of resnet18-w16-hflip over the 10,000 CIFAR-10 test images, decoding
 * and cache writes included, beside PyTorch running the same network on the same images and
 * threads. Five rounds, each: ours, then ONNX Runtime alone on the same network (its fastest
 * configuration on the same threads, nothing else in the loop, run again once picked: see
 * ortAlone), then the peer at its best (batch and BLAS threads, its pick run again the same
 * way); every round compared within itself, since this machine's speed drifts by a quarter
 * between minutes. The figures: the median round and the round least in our favour against
 * the peer (also against the peer's selection runs), and the median of the rounds' shares of
 * ONNX Runtime alone.
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { addBackbone } from '../electron/engine/backbones/index.js';
import { importDataset } from '../electron/engine/datasets/index.js';
import { openDb } from '../electron/engine/db.js';
import { extract } from '../electron/engine/embeddings/index.js';
import { setThreads } from '../electron/engine/native/index.js';
import { PEER_ENVS, SHARED, median, ortAlone, pickThenRerun, report, runPeer, threadsArg } from './common.js';

export async function main(argv: string[]) {
  const threads = threadsArg(argv);
  setThreads(threads);
  const model = join(SHARED, 'models', 'resnet18-w16-hflip');
  const runs: { ips: number; outside: number; alone: number; aloneConfig: string; aloneSelection: number; peer: number; peerSelection: number; peerEnv: unknown; peerBatch: number }[] = [];
  for (let rep = 0; rep < 5; rep++) {
    const path = join(tmpdir(), `embaug-bench-extract-${process.pid}.db`);
    rmSync(path, { force: true });
    rmSync(`${path}.files`, { recursive: true, force: true });
    const db = openDb(path);
    // Import is not part of the figure: it stores the JPEG bytes; extraction decodes them.
    const ds = await importDataset(db, { kind: 'wds', path: join(SHARED, 'datasets', 'cifar10-wds'), name: 'cifar10' });
    await addBackbone(db, { onnxPath: `${model}.onnx` });
    const r = await extract(db, { dataset: ds.id, backbone: 'resnet18-w16-hflip', split: 'test', threads, record: false });
    db.close();
    rmSync(path, { force: true });
    rmSync(`${path}.files`, { recursive: true, force: true });
    const { imagesPerSecond: alone, config: aloneConfig, selection: aloneSelection } = await ortAlone('resnet18-w16', threads);
    // The peer at its best too: the batch of the two (64, 128) and the BLAS threads that run
    // fastest, measured as ONNX Runtime alone is (a second run of the pick: see pickThenRerun).
    const peer = await pickThenRerun(
      [64, 128].flatMap((batch) => PEER_ENVS.map((env) => ({ batch, env }))),
      ({ batch, env }) => runPeer(['extract', '--model', model, '--split', 'test', '--threads', String(threads), '--batch', String(batch)], env).images_per_s as number,
      (ips) => ips,
    );
    runs.push({ ips: r.imagesPerSecond, outside: 1 - r.onnxSeconds / r.seconds, alone, aloneConfig, aloneSelection, peer: peer.result, peerSelection: peer.selection, peerEnv: peer.config.env, peerBatch: peer.config.batch });
    const x = runs[rep];
    console.log(`round ${rep + 1}: ours ${x.ips.toFixed(0)} images/s (the main thread busy ${(100 * x.outside).toFixed(1)}% of the time), ONNX Runtime alone ${alone.toFixed(0)} (${aloneConfig}, picked at ${aloneSelection.toFixed(0)}; ours ${((100 * x.ips) / alone).toFixed(1)}% of it, ${((100 * x.ips) / aloneSelection).toFixed(1)}% of the pick's run), peer ${x.peer.toFixed(0)} (batch ${x.peerBatch}, picked at ${x.peerSelection.toFixed(0)}; ours ${(x.ips / x.peer).toFixed(2)}×, ${(x.ips / x.peerSelection).toFixed(2)}× the pick's run)`);
  }
  const byRatio = [...runs].sort((a, b) => a.ips / a.peer - b.ips / b.peer);
  const mid = byRatio[2], worst = byRatio[0];
  const worstAtSelection = [...runs].sort((a, b) => a.ips / a.peerSelection - b.ips / b.peerSelection)[0];
  report('extract', threads, [
    { case: 'resnet18-w16-hflip-test-10k', ours: mid.ips, peer: mid.peer, unit: 'images/s', note: 'the median of 5 rounds' },
    { case: 'resnet18-w16-hflip-test-10k-least', ours: worst.ips, peer: worst.peer, unit: 'images/s', note: 'the round least in our favour; goal ratio >= 2 in every round' },
    { case: 'resnet18-w16-hflip-test-10k-least-peer-selection-run', ours: worstAtSelection.ips, peer: worstAtSelection.peerSelection, unit: 'images/s', note: "the same against the peer's run each configuration was picked at (the fastest of four, which reads high by about the noise)" },
    { case: 'share-of-onnxruntime-alone', ours: median(runs.map((r) => (100 * r.ips) / r.alone)), peer: 90, unit: '%', note: 'peer = the 90% target; median of 5 rounds; ONNX Runtime alone = a second run of its fastest configuration' },
    { case: 'share-of-onnxruntime-alone-selection-run', ours: median(runs.map((r) => (100 * r.ips) / r.aloneSelection)), peer: 90, unit: '%', note: 'the same against the run each configuration was picked at (the fastest of five, which reads high by about the noise)' },
  ], { runs });
}
