#!/usr/bin/env python3
"""PyTorch peer of the omega benchmark: fits the stochastic forms of Ω that are trained by a
loss MSE cannot express, as a practitioner would write them with autograd, on the pairs the
benchmark hands over (float32 files z and y, n rows of d), with the same sizes, batch, Adam
step and epochs as embaug's (training/stochastic.ts):
  mdn        D → 256 → 256 → K(1+2D), K = 5 diagonal Gaussians in the coordinates that whiten
             the shift y − z, negative log-likelihood, log-scales clamped to [−6, 3];
  generator  [z, ε] (ε of 16) → 256 → 256 → D, energy score of two samples per pair.
  pytorch_omega.py --z Z --y Y --n N --d D --epochs E --threads T
Prints one JSON object with each form's pairs·epochs per second (the whole fit: whitening,
start and every epoch)."""
import argparse, json, time
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F

def mlp(sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2: layers.append(nn.ReLU())
    return nn.Sequential(*layers)

def fit_mdn(z, y, epochs, K=5, hidden=256, batch=128, lr=1e-3):
    n, d = z.shape
    t = y - z
    mu, cov = t.mean(0), torch.cov(t.T)
    L = torch.linalg.cholesky(cov + 1e-6 * cov.diagonal().mean() * torch.eye(d))
    u = torch.linalg.solve_triangular(L, (t - mu).T, upper=False).T
    net = mlp([d, hidden, hidden, K * (1 + 2 * d)])
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for e in range(epochs):
        perm = torch.randperm(n)
        for s in range(0, n, batch):
            idx = perm[s:s + batch]
            out = net(z[idx])
            logits, means = out[:, :K], out[:, K:K + K * d].view(-1, K, d)
            ls = out[:, K + K * d:].view(-1, K, d).clamp(-6, 3)
            r = (u[idx, None, :] - means) * torch.exp(-ls)
            ll = F.log_softmax(logits, -1) - 0.5 * (r * r).sum(-1) - ls.sum(-1)
            loss = -torch.logsumexp(ll, -1).mean()
            opt.zero_grad(); loss.backward(); opt.step()

def fit_generator(z, y, epochs, k=16, hidden=256, batch=128, lr=1e-3):
    n, d = z.shape
    net = mlp([d + k, hidden, hidden, d])
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for e in range(epochs):
        perm = torch.randperm(n)
        for s in range(0, n, batch):
            idx = perm[s:s + batch]
            zb = z[idx].repeat(2, 1)
            out = net(torch.cat([zb, torch.randn(zb.shape[0], k)], 1))
            t = (y[idx] - z[idx]); b = idx.shape[0]
            s1, s2 = out[:b], out[b:]
            es = 0.5 * ((s1 - t).norm(dim=1) + (s2 - t).norm(dim=1)) - 0.5 * (s1 - s2).norm(dim=1)
            loss = es.mean()
            opt.zero_grad(); loss.backward(); opt.step()

a = argparse.ArgumentParser()
a.add_argument('--z'); a.add_argument('--y'); a.add_argument('--n', type=int); a.add_argument('--d', type=int)
a.add_argument('--epochs', type=int, default=2); a.add_argument('--threads', type=int, default=2)
a = a.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(0)
z = torch.from_numpy(np.fromfile(a.z, dtype=np.float32).reshape(a.n, a.d))
y = torch.from_numpy(np.fromfile(a.y, dtype=np.float32).reshape(a.n, a.d))
res = {'peer': 'pytorch', 'torch': torch.__version__, 'threads': a.threads}
for name, fit in (('mdn', fit_mdn), ('generator', fit_generator)):
    t0 = time.perf_counter(); fit(z, y, a.epochs)
    res[name] = a.n * a.epochs / (time.perf_counter() - t0)
print(json.dumps(res))
