#!/usr/bin/env python3
"""GPU peer for the CUDA backend's benchmark: trains Ψ = D→1024→128→10 (ReLU, softmax
cross-entropy, SGD with momentum 0.9, batch 128) on random data on the GPU, as
../shared/peers/pytorch_peer.py mlp does on the CPU, and prints one BENCH-style line per D
and mode. At batch 128 an eager step is bound by kernel launches from Python, so the peer is
also run at its best: the whole step (forward, backward, SGD) captured once as a CUDA graph
and replayed, the input batch copied into the graph's static buffers before each replay."""
import json, time, torch, torch.nn as nn, torch.nn.functional as F

STEPS_PER_SYNC = 64


def make(d):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(d, 1024), nn.ReLU(), nn.Linear(1024, 128), nn.ReLU(), nn.Linear(128, 10)).cuda()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(128 * STEPS_PER_SYNC, d, device='cuda')
    y = torch.randint(0, 10, (128 * STEPS_PER_SYNC,), device='cuda')
    return net, opt, x, y


def eager_step(d):
    net, opt, x, y = make(d)

    def step(i):
        s = (i % STEPS_PER_SYNC) * 128
        loss = F.cross_entropy(net(x[s:s + 128]), y[s:s + 128])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def graph_step(d):
    net, opt, x, y = make(d)
    xs, ys = x[:128].clone(), y[:128].clone()

    def body():
        loss = F.cross_entropy(net(xs), ys)
        loss.backward()
        opt.step()
    # Warm up on a side stream (the optimiser's state is created here), as PyTorch's
    # whole-network capture recipe does. Gradients are None at capture, so the captured
    # backward writes them rather than accumulating: no zeroing between replays.
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            body()
    torch.cuda.current_stream().wait_stream(side)
    opt.zero_grad(set_to_none=True)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        body()

    def step(i):
        s = (i % STEPS_PER_SYNC) * 128
        xs.copy_(x[s:s + 128])
        ys.copy_(y[s:s + 128])
        g.replay()
    return step


def run(step, seconds=3.0):
    for i in range(50):
        step(i)
    torch.cuda.synchronize()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(STEPS_PER_SYNC):
            step(n)
            n += 1
        torch.cuda.synchronize()
    return n * 128 / (time.perf_counter() - t0)


for d in (128, 512):
    for mode, make_step in (('eager', eager_step), ('cuda-graph', graph_step)):
        print(json.dumps({'peer': 'pytorch-cuda', 'case': f'psi-d{d}-b128', 'mode': mode, 'samples_per_s': run(make_step(d)),
                          'torch': torch.__version__, 'device': torch.cuda.get_device_name()}), flush=True)
