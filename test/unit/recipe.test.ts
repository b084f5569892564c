import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { addBackbone } from '../../electron/engine/backbones/index.js';
import { openDb } from '../../electron/engine/db.js';
import { REPO, WDS, tempDir } from '../helpers/shared.js';

const PY = process.env.EMBAUG_PYTHON ?? '/usr/bin/python3';
const torch = spawnSync(PY, ['-c', 'import torch, PIL'], { stdio: 'ignore' }).status === 0;

describe('the backbone recipe (models/recipe/train_backbone.py)', { skip: !torch && `PyTorch is not installed for ${PY} (Debian: python3-torch python3-pil): the recipe's smoke test is skipped` }, () => {
  it('trains one tiny epoch on a few hundred images and exports a backbone the workbench accepts', async () => {
    const tmp = tempDir();
    try {
      const r = spawnSync(PY, [join(REPO, 'models', 'recipe', 'train_backbone.py'), '--arch', 'resnet18', '--width', '4', '--aug', 'hflip', '--epochs', '1', '--limit', '300', '--threads', '2', '--data', WDS, '--out', tmp.dir], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const m = JSON.parse(readFileSync(join(tmp.dir, 'resnet18-w4-hflip.json'), 'utf8'));
      assert.equal(m.protocol, 'cifar10-split');
      assert.deepEqual(m.logits.class_names, ['airplane', 'automobile', 'bird', 'cat', 'deer']);
      assert.equal(m.base.augmentation, 'hflip');
      const db = openDb(join(tmp.dir, 'db.sqlite'));
      const b = await addBackbone(db, { onnxPath: join(tmp.dir, 'resnet18-w4-hflip.onnx') });
      assert.equal(b.dim, 32);
      assert.equal(b.sha256, m.sha256);
      db.close();
    } finally {
      tmp.cleanup();
    }
  });
});
