#!/usr/bin/env python3
"""GPU peer for the CUDA backend's benchmark: trains Ψ = D→1024→128→10 (ReLU, softmax
cross-entropy, SGD with momentum 0.9, batch 128) on random data on the GPU, as
../shared/peers/pytorch_peer.py mlp does on the CPU, and prints one BENCH-style line per D."""
import json, time, torch, torch.nn as nn, torch.nn.functional as F

def run(d, seconds=3.0):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(d, 1024), nn.ReLU(), nn.Linear(1024, 128), nn.ReLU(), nn.Linear(128, 10)).cuda()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(128 * 64, d, device='cuda'); y = torch.randint(0, 10, (128 * 64,), device='cuda')
    def step(i):
        s = (i % 64) * 128
        loss = F.cross_entropy(net(x[s:s + 128]), y[s:s + 128]); opt.zero_grad(); loss.backward(); opt.step()
    for i in range(50): step(i)
    torch.cuda.synchronize(); n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(64): step(n); n += 1
        torch.cuda.synchronize()
    return n * 128 / (time.perf_counter() - t0)

for d in (128, 512):
    print(json.dumps({'peer': 'pytorch-cuda', 'case': f'psi-d{d}-b128', 'samples_per_s': run(d),
                      'torch': torch.__version__, 'device': torch.cuda.get_device_name()}))
