"""The PyTorch reference for `dsan train`'s step time, on a GPU or the CPU: one DSAN branch
of the same architecture as src/model (3D ResNet with BasicBlocks, 7x7x7 stem,
max-pool, CAM attention with min-max normalisation and the soft mask, CE +
lambda * attention loss, Adam), timed per training step on random inputs.

    python3 tests/gpu/torch_step.py --input 64 128 128 --width 8 --batch 4 --steps 30
    python3 tests/gpu/torch_step.py --device cpu --threads 2 --mode infer

`--mode train` times a training step of one branch; `--mode infer` the
forward pass of two branches (the ensemble, eval mode, no gradients).
Prints one JSON line: ms per step (median after warm-up), cases/s, peak
memory on CUDA, and with `--times` every timed step.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def conv_bn(cin, cout, k, stride):
    return nn.Sequential(nn.Conv3d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm3d(cout))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride)
        self.conv2 = conv_bn(cout, cout, 3, 1)
        self.shortcut = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()

    def forward(self, x):
        return F.relu(self.conv2(F.relu(self.conv1(x))) + self.shortcut(x))


class Branch(nn.Module):
    def __init__(self, width, layers=(3, 4, 6, 3), strides=(1, 2, 2, 1), classes=2):
        super().__init__()
        widths = [width * m for m in (1, 2, 4, 8)]
        self.stem = conv_bn(1, widths[0], 7, (1, 2, 2))
        blocks, cin = [], widths[0]
        for w, n, s in zip(widths, layers, strides):
            for i in range(n):
                blocks.append(Block(cin, w, s if i == 0 else 1))
                cin = w
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(cin, classes)

    def forward(self, x):
        f = self.blocks(F.max_pool3d(F.relu(self.stem(x)), 3, 2, 1))
        logits = self.head(f.mean(dim=(2, 3, 4)))
        cams = F.relu(torch.einsum("nkdhw,ck->ncdhw", f, self.head.weight))
        flat = cams.flatten(2)
        lo, hi = flat.min(2, keepdim=True).values, flat.max(2, keepdim=True).values
        return logits, ((flat - lo) / (hi - lo + 1e-6)).view_as(cams)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--input", type=int, nargs=3, default=[64, 128, 128])
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--device", default="cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    p.add_argument("--mode", choices=["train", "infer"], default="train")
    p.add_argument("--times", action="store_true", help="also print every timed step")
    a = p.parse_args()
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if a.mode == "infer":
        times = time_inference(a, dev, sync)
    else:
        times = time_train(a, dev, sync)
    ms = statistics.median(times)
    result = {
        "framework": f"pytorch {torch.__version__}",
        "device": torch.cuda.get_device_name() if cuda else f"cpu, {torch.get_num_threads()} threads",
        "mode": a.mode, "input": a.input, "width": a.width, "batch": a.batch,
        "ms_per_step": ms, "cases_per_s": a.batch / ms * 1000,
        "peak_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
    }
    if a.times:
        result["times_ms"] = times
    print(json.dumps(result))


def time_inference(a, dev, sync):
    branches = [Branch(a.width).to(dev).eval() for _ in range(2)]
    x = torch.rand(a.batch, 1, *a.input, device=dev)
    times = []
    with torch.no_grad():
        for step in range(a.steps + a.warmup):
            sync()
            t = time.perf_counter()
            outputs = [b(x) for b in branches]
            probs = sum(F.softmax(logits, 1) for logits, _ in outputs) / 2
            maps = sum(att for _, att in outputs) / 2
            probs.cpu(), maps.cpu()
            sync()
            if step >= a.warmup:
                times.append((time.perf_counter() - t) * 1000)
    return times


def time_train(a, dev, sync):
    model = Branch(a.width).to(dev)
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    x = torch.rand(a.batch, 1, *a.input, device=dev)
    y = torch.randint(0, 2, (a.batch,), device=dev)
    with torch.no_grad():
        grid = model(x)[1].shape[2:]
    masks = (torch.rand(a.batch, *grid, device=dev) > 0.8).float()
    times = []
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for step in range(a.steps + a.warmup):
        sync()
        t = time.perf_counter()
        logits, att = model(x)
        soft = torch.sigmoid(100 * (att[torch.arange(a.batch), y] - 0.4))
        loss = F.cross_entropy(logits, y) + ((soft - masks) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()
        sync()
        if step >= a.warmup:
            times.append((time.perf_counter() - t) * 1000)
    return times


if __name__ == "__main__":
    main()
