#!/usr/bin/env python3
"""The paper's step (a): train a base CNN on the base task with a pixel augmentation and
export it as an embaug backbone (ONNX with `image` in, `embedding` and `logits` out, plus
its JSON manifest). This is the cloud-side step; it needs PyTorch (Debian: python3-torch,
python3-pil), not the workbench.

  train_backbone.py --arch resnet18 --width 16 --aug hflip --epochs 10 \
      --data DIR/cifar10-wds --protocol cifar10-split --out models/

--protocol cifar10-split trains on CIFAR-10 classes 0-4 (WebDataset shards); --protocol paper
trains on CIFAR-100 (shards in --data with 100 classes). Batch norm is folded at export.
"""
import argparse, hashlib, io, json, math, os, tarfile, time

import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.247, 0.2435, 0.2616)


def conv_bn(cin, cout, k=3, s=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.a = conv_bn(cin, cout, 3, stride)
        self.b = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return F.relu(self.b(self.a(x)) + self.skip(x))


def resnet18(w):
    layers, cin = [conv_bn(3, w)], w
    for i, cout in enumerate([w, 2 * w, 4 * w, 8 * w]):
        layers += [Basic(cin, cout, 1 if i == 0 else 2), Basic(cout, cout, 1)]
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten()), cin


def vgg16(w):
    cfg = [w, w, 'M', 2 * w, 2 * w, 'M', 4 * w, 4 * w, 4 * w, 'M', 8 * w, 8 * w, 8 * w, 'M', 8 * w, 8 * w, 8 * w, 'M']
    layers, cin = [], 3
    for c in cfg:
        if c == 'M':
            layers.append(nn.MaxPool2d(2))
        else:
            layers.append(conv_bn(cin, c))
            cin = c
    return nn.Sequential(*layers, nn.Flatten()), cin


class InceptionBlock(nn.Module):
    """Branches 1x1, 1x1->3x3, 1x1->3x3->3x3 and pool->1x1, concatenated."""

    def __init__(self, cin, b):
        super().__init__()
        self.b1 = conv_bn(cin, b, 1)
        self.b2 = nn.Sequential(conv_bn(cin, b, 1), conv_bn(b, b))
        self.b3 = nn.Sequential(conv_bn(cin, b, 1), conv_bn(b, b), conv_bn(b, b))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), conv_bn(cin, b, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


def inception(w):
    layers = [conv_bn(3, 2 * w), InceptionBlock(2 * w, w), InceptionBlock(4 * w, w), nn.MaxPool2d(2),
              InceptionBlock(4 * w, 2 * w), InceptionBlock(8 * w, 2 * w), nn.MaxPool2d(2),
              InceptionBlock(8 * w, 4 * w), InceptionBlock(16 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), 16 * w


ARCHS = {'resnet18': resnet18, 'vgg16': vgg16, 'inception': inception}


class Backbone(nn.Module):
    """Normalisation inside the graph, features, and the base task's linear classifier."""

    def __init__(self, arch, width, classes):
        super().__init__()
        self.features, self.dim = ARCHS[arch](width)
        self.fc = nn.Linear(self.dim, classes)
        self.register_buffer('mean', torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(STD).view(1, 3, 1, 1))

    def forward(self, image):
        z = self.features((image - self.mean) / self.std)
        return z, self.fc(z)


def shards(data, split, classes, limit):
    """(uint8 CHW tensor, label) pairs of the given classes from WebDataset shards, in order."""
    from PIL import Image
    import numpy as np
    xs, ys = [], []
    for f in sorted(os.listdir(data)):
        if not (f.startswith(split + '-') and f.endswith('.tar')):
            continue
        with tarfile.open(os.path.join(data, f)) as t:
            items = {}
            for m in t.getmembers():
                key, ext = m.name.rsplit('.', 1)
                items.setdefault(key, {})[ext] = t.extractfile(m).read()
        for d in items.values():
            y = int(d['cls'])
            if y not in classes:
                continue
            img = d.get('jpg') or d.get('png') or d.get('webp')
            xs.append(torch.from_numpy(np.asarray(Image.open(io.BytesIO(img)).convert('RGB')).copy()).permute(2, 0, 1))
            ys.append(classes.index(y))
            if limit and len(xs) >= limit:
                return torch.stack(xs), torch.tensor(ys)
    if not xs:
        raise SystemExit(f'no {split} images of classes {classes} in {data}')
    return torch.stack(xs), torch.tensor(ys)


def augment(x, aug, g):
    x = x.clone()
    if aug in ('hflip', 'hvflip'):
        m = torch.rand(len(x), generator=g) < 0.5
        x[m] = x[m].flip(3)
    if aug in ('vflip', 'hvflip'):
        m = torch.rand(len(x), generator=g) < 0.5
        x[m] = x[m].flip(2)
    return x


def accuracy(model, x, y, batch=512):
    model.eval()
    ok = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            ok += (model(x[i:i + batch].float() / 255)[1].argmax(1) == y[i:i + batch]).sum().item()
    return ok / len(x)


def fold_bn(model):
    """Folds every BatchNorm into the convolution before it, for a lean inference graph."""
    for m in model.modules():
        for name, child in list(m.named_children()):
            if isinstance(child, nn.Sequential):
                items = list(child)
                for i in range(len(items) - 1):
                    if isinstance(items[i], nn.Conv2d) and isinstance(items[i + 1], nn.BatchNorm2d):
                        c, bn = items[i], items[i + 1]
                        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                        fused = nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, bias=True)
                        fused.weight.data = c.weight.data * scale.view(-1, 1, 1, 1)
                        fused.bias.data = bn.bias.data - bn.running_mean * scale + (c.bias.data * scale if c.bias is not None else 0)
                        child[i], child[i + 1] = fused, nn.Identity()
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--arch', choices=ARCHS, default='resnet18')
    ap.add_argument('--width', type=int, default=16)
    ap.add_argument('--aug', choices=['none', 'hflip', 'vflip', 'hvflip'], default='hflip')
    ap.add_argument('--epochs', type=int, default=10)
    ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--lr', type=float, default=0.1)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--protocol', choices=['cifar10-split', 'paper'], default='cifar10-split')
    ap.add_argument('--data', required=True, help='folder of WebDataset shards (train-*.tar, test-*.tar)')
    ap.add_argument('--limit', type=int, help='images per split, for smoke tests')
    ap.add_argument('--out', required=True)
    ap.add_argument('--name')
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    classes = list(range(5)) if a.protocol == 'cifar10-split' else list(range(100))
    names_file = os.path.join(a.data, 'classes.txt')
    names = open(names_file).read().split() if os.path.exists(names_file) else [str(c) for c in classes]
    xtr, ytr = shards(a.data, 'train', classes, a.limit)
    xte, yte = shards(a.data, 'test', classes, a.limit)
    model = Backbone(a.arch, a.width, len(classes))
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps = a.epochs * math.ceil(len(xtr) / a.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=steps)
    g = torch.Generator().manual_seed(a.seed)
    history, t0 = [], time.time()
    for ep in range(a.epochs):
        model.train()
        perm, total = torch.randperm(len(xtr), generator=g), 0.0
        for i in range(0, len(perm), a.batch):
            idx = perm[i:i + a.batch]
            loss = F.cross_entropy(model(augment(xtr[idx], a.aug, g).float() / 255)[1], ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        history.append({'epoch': ep + 1, 'train_loss': total / len(xtr), 'test_top1': accuracy(model, xte, yte)})
        print(json.dumps(history[-1]), flush=True)
    model = fold_bn(model.eval())
    name = a.name or f'{a.arch}-w{a.width}-{a.aug}'
    os.makedirs(a.out, exist_ok=True)
    onnx_path = os.path.join(a.out, f'{name}.onnx')
    torch.onnx.export(model, torch.zeros(1, 3, 32, 32), onnx_path, input_names=['image'], output_names=['embedding', 'logits'],
                      dynamic_axes={'image': {0: 'N'}, 'embedding': {0: 'N'}, 'logits': {0: 'N'}}, opset_version=13)
    sha = hashlib.sha256(open(onnx_path, 'rb').read()).hexdigest()
    manifest = {
        'name': name, 'file': os.path.basename(onnx_path), 'sha256': sha, 'architecture': a.arch, 'width': a.width,
        'params': sum(p.numel() for p in model.parameters()), 'protocol': a.protocol,
        'input': {'name': 'image', 'layout': 'NCHW', 'height': 32, 'width': 32, 'channels': 'RGB', 'range': [0, 1], 'dtype': 'float32',
                  'normalisation': 'inside the graph', 'mean': list(MEAN), 'std': list(STD), 'resize': 'none (32x32 only)'},
        'embedding': {'output': 'embedding', 'dim': model.dim, 'taken_at': 'features before the last Linear'},
        'logits': {'output': 'logits', 'classes': len(classes), 'class_names': [names[c] for c in classes]},
        'base': {'dataset': os.path.basename(os.path.normpath(a.data)), 'classes': classes, 'train_images': len(xtr), 'test_images': len(xte),
                 'augmentation': a.aug, 'epochs': a.epochs, 'optimizer': f'SGD nesterov momentum 0.9 wd 5e-4, OneCycle max lr {a.lr}',
                 'batch': a.batch, 'seed': a.seed, 'test_top1': history[-1]['test_top1'], 'history': history,
                 'seconds': round(time.time() - t0, 1), 'torch': torch.__version__},
    }
    with open(os.path.join(a.out, f'{name}.json'), 'w') as f:
        json.dump(manifest, f, indent=2)
    print(json.dumps({'onnx': onnx_path, 'sha256': sha, 'test_top1': history[-1]['test_top1']}))


if __name__ == '__main__':
    main()
