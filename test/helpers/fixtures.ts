/** Small real fixtures cut from ../shared: WebDataset shards, image folders, CIFAR binary files. */
import { copyFileSync, createReadStream, createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { extract, pack } from 'tar-stream';

import { decodeJpegs } from '../../electron/engine/native/index.js';
import { MODELS, WDS } from './shared.js';

export interface Sample {
  key: string;
  jpeg: Buffer;
  label: number;
}

/** The first n samples of a shared shard, in tar order. */
export async function samples(shard: string, n: number): Promise<Sample[]> {
  const out: Sample[] = [];
  const pending = new Map<string, Partial<Sample>>();
  const ex = extract();
  const stream = createReadStream(join(WDS, shard));
  stream.pipe(ex);
  for await (const entry of ex) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    const [key, ext] = entry.header.name.split('.');
    const s = pending.get(key) ?? { key };
    if (ext === 'jpg') s.jpeg = Buffer.concat(chunks);
    if (ext === 'cls') s.label = Number(Buffer.concat(chunks).toString());
    pending.set(key, s);
    if (s.jpeg && s.label !== undefined) {
      out.push(s as Sample);
      pending.delete(key);
      if (out.length >= n) {
        stream.destroy();
        break;
      }
    }
  }
  return out;
}

/** Writes WebDataset shards (jpg + cls members) into dir. */
export async function writeShard(file: string, items: Sample[], extra?: (p: ReturnType<typeof pack>) => void): Promise<void> {
  const p = pack();
  const done = pipeline(p, createWriteStream(file));
  for (const s of items) {
    p.entry({ name: `${s.key}.jpg` }, s.jpeg);
    p.entry({ name: `${s.key}.cls` }, String(s.label));
  }
  extra?.(p);
  p.finalize();
  await done;
}

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

/** Small CIFAR-10 binary files in the official record format, from real decoded images. */
export async function writeCifar10Bin(dir: string, train: Sample[], test: Sample[]): Promise<Map<string, Uint8Array>> {
  mkdirSync(dir, { recursive: true });
  const pixelsByKey = new Map<string, Uint8Array>();
  const records = async (items: Sample[]) => {
    const d = await decodeJpegs(items.map((s) => s.jpeg), 32, 32);
    const buf = Buffer.alloc(items.length * 3073);
    items.forEach((s, i) => {
      const hwc = d.pixels.subarray(i * 3072, (i + 1) * 3072);
      pixelsByKey.set(s.key, hwc);
      buf[i * 3073] = s.label;
      for (let p = 0; p < 1024; p++)
        for (let c = 0; c < 3; c++) buf[i * 3073 + 1 + c * 1024 + p] = hwc[p * 3 + c];
    });
    return buf;
  };
  const per = Math.ceil(train.length / 5);
  for (let b = 0; b < 5; b++) writeFileSync(join(dir, `data_batch_${b + 1}.bin`), await records(train.slice(b * per, (b + 1) * per)));
  writeFileSync(join(dir, 'test_batch.bin'), await records(test));
  writeFileSync(join(dir, 'batches.meta.txt'), `${CIFAR10_CLASSES.join('\n')}\n`);
  return pixelsByKey;
}

/**
 * A models folder with one family of two tiny backbones: the same network described once as
 * base "none" and once as "hflip"; the "none" file carries one extra protobuf field (number
 * 99), which ONNX Runtime ignores, so the two files have different hashes.
 */
export function tinyFamily(modelsDir: string): void {
  mkdirSync(modelsDir, { recursive: true });
  const m = JSON.parse(readFileSync(join(MODELS, 'tiny-resnet18-w4.json'), 'utf8'));
  const onnx = readFileSync(join(MODELS, 'tiny-resnet18-w4.onnx'));
  writeFileSync(join(modelsDir, 'tiny-hflip.onnx'), onnx);
  writeFileSync(join(modelsDir, 'tiny-none.onnx'), Buffer.concat([onnx, Buffer.from([0x98, 0x06, 0x01])]));
  for (const aug of ['none', 'hflip'])
    writeFileSync(join(modelsDir, `tiny-${aug}.json`), JSON.stringify({ ...m, sha256: undefined, name: `tiny-${aug}`, file: `tiny-${aug}.onnx`, base: { ...m.base, augmentation: aug } }));
}

/** A CIFAR-10 data folder (dataDir/cifar10-wds) of two small shards cut from the shared ones. */
export async function miniCifar10(dataDir: string, train: number, test: number): Promise<void> {
  const wds = join(dataDir, 'cifar10-wds');
  mkdirSync(wds, { recursive: true });
  await writeShard(join(wds, 'train-000000.tar'), await samples('train-000000.tar', train));
  await writeShard(join(wds, 'test-000000.tar'), await samples('test-000000.tar', test));
  copyFileSync(join(WDS, 'classes.txt'), join(wds, 'classes.txt'));
}
