/** Small real fixtures cut from ../shared: WebDataset shards, image folders, CIFAR binary files. */
import { copyFileSync, createReadStream, createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import sharp from 'sharp';
import { extract, pack } from 'tar-stream';

import { decodeToSize } from '../../electron/engine/datasets/index.js';
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

export interface PlantedCopy {
  /** Folder-relative paths, as the import records them in `source`. */
  orig: string;
  copy: string;
  kind: 'exact' | 'flip' | 'crop' | 'jpeg';
  /** Whether the copy went to the other split. */
  cross: boolean;
}

/**
 * A folder data set (split/class/file) of real images with planted copies: `train` and `test`
 * as they are, then `copies` copies of every `step`-th of them (train first), in quarters: exact
 * (a PNG of the same pixels), mirrored, cropped by a pixel on each side and resized back, and
 * re-encoded as JPEG at quality 90. Every third copy goes to the other split.
 */
export async function plantedFolder(root: string, train: Sample[], test: Sample[], opts: { copies?: number; step?: number } = {}): Promise<PlantedCopy[]> {
  const { copies = 200, step = 7 } = opts;
  const put = (split: string, s: Sample, name: string, bytes: Buffer) => {
    const dir = join(root, split, CIFAR10_CLASSES[s.label]);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, name), bytes);
    return `${split}/${CIFAR10_CLASSES[s.label]}/${name}`;
  };
  const origins = [...train.map((s) => ['train', s] as const), ...test.map((s) => ['test', s] as const)];
  const sources = origins.map(([split, s]) => put(split, s, `${s.key}.jpg`, s.jpeg));
  const kinds = ['exact', 'flip', 'crop', 'jpeg'] as const;
  const planted: PlantedCopy[] = [];
  for (let k = 0; k < copies; k++) {
    const [split, s] = origins[k * step];
    const px = await decodeToSize([{ bytes: s.jpeg, format: 'jpeg', width: 32, height: 32 }], 32, 32);
    const img = () => sharp(px, { raw: { width: 32, height: 32, channels: 3 } });
    const kind = kinds[Math.floor((4 * k) / copies)];
    const bytes = kind === 'exact' ? await img().png().toBuffer()
      : kind === 'flip' ? await img().flop().png().toBuffer()
      : kind === 'crop' ? await img().extract({ left: 1, top: 1, width: 30, height: 30 }).resize(32, 32).png().toBuffer()
      : await img().jpeg({ quality: 90 }).toBuffer();
    const cross = k % 3 === 0;
    const other = cross ? (split === 'train' ? 'test' : 'train') : split;
    planted.push({ orig: sources[k * step], copy: put(other, s, `planted-${k}.${kind === 'jpeg' ? 'jpg' : 'png'}`, bytes), kind, cross });
  }
  return planted;
}
