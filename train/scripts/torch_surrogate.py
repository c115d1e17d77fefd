"""A PyTorch control for `dsan train`: one branch of the same architecture
(tests/gpu/torch_step.py's `Branch`) trained with CE only, no augmentation,
on the very inputs `dsan train` prepared (its case cache, `DSANCASE0001`
files), so a slow start can be told apart from a bug in our training code.

    python3 train/scripts/torch_surrogate.py ~/.cache/dsan-ct/default-model/train \
        --layers 1 1 1 1 --lr 1e-3 --epochs 6 --threads 2

The first 80 % of the cases (in case order) train, the rest validate; it
prints the mean training loss and the validation AUC per epoch. `--masked`
picks the cached variant with the outside of the lungs masked (the one with
more zeros) when the cache holds both.
"""
import argparse
import csv
import glob
import json
import os
import random
import sys
import time
from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../tests/gpu"))
from torch_step import Branch  # noqa: E402

MAGIC = b"DSANCASE0001"


def read_case(path, cells):
    data = open(path, "rb").read()
    assert data[:12] == MAGIC, path
    n = int.from_bytes(data[12:20], "little")
    floats = np.frombuffer(data[20 + n:], dtype="<f4")
    return floats[:cells]


def auc(labels, scores):
    labels, scores = np.asarray(labels, bool), np.asarray(scores, float)
    pos, neg = scores[labels], scores[~labels]
    return (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()


def recalibrate(model, x, batch):
    """Precise BatchNorm: the running statistics replaced by their mean over
    `x` in training-mode batches, with the weights unchanged."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for i in range(0, len(x), batch):
        model(x[i:i + batch])
    for m in norms:
        m.momentum = 0.1
    model.eval()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("data", help="a dsan data folder with labels.csv and .dsan-cache/")
    p.add_argument("--grid", type=int, nargs=3, default=[64, 128, 128])
    p.add_argument("--layers", type=int, nargs=4, default=[3, 4, 6, 3])
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--masked", action="store_true")
    p.add_argument("--precise-bn", type=int, default=0,
                   help="before validating, re-estimate BatchNorm's statistics on this many training cases")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    random.seed(0)
    cells = int(np.prod(a.grid))
    labels = {r["case_id"]: int(r["label"] == "COVID-19") for r in csv.DictReader(open(os.path.join(a.data, "labels.csv")))}
    files = defaultdict(list)
    for f in sorted(glob.glob(os.path.join(a.data, ".dsan-cache", "*.bin"))):
        files[os.path.basename(f).rsplit("-", 1)[0]].append(f)
    xs, ys = [], []
    for case, paths in sorted(files.items()):
        variants = sorted((read_case(f, cells) for f in paths), key=lambda x: (x == 0).mean())
        xs.append(torch.from_numpy((variants[-1] if a.masked else variants[0]).copy().reshape(a.grid)))
        ys.append(labels[case])
    x, y = torch.stack(xs)[:, None], torch.tensor(ys)
    split = int(0.8 * len(ys))
    train, val = list(range(split)), list(range(split, len(ys)))
    model = Branch(a.width, layers=tuple(a.layers))
    opt = torch.optim.Adam(model.parameters(), a.lr, weight_decay=1e-5)
    for epoch in range(1, a.epochs + 1):
        model.train()
        random.shuffle(train)
        started, losses = time.time(), []
        for i in range(0, len(train), a.batch):
            idx = train[i:i + a.batch]
            loss = F.cross_entropy(model(x[idx])[0], y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            p_running = torch.cat([F.softmax(model(x[val[i:i + 10]])[0], 1)[:, 1] for i in range(0, len(val), 10)])
            if a.precise_bn:
                recalibrate(model, x[train[:a.precise_bn]], a.batch)
            p_covid = torch.cat([F.softmax(model(x[val[i:i + 10]])[0], 1)[:, 1] for i in range(0, len(val), 10)])
        print(json.dumps({"epoch": epoch, "loss": float(np.mean(losses)), "val_auc": auc(y[val].numpy(), p_covid.numpy()),
                          "val_auc_running_bn": auc(y[val].numpy(), p_running.numpy()),
                          "seconds": time.time() - started}), flush=True)


if __name__ == "__main__":
    main()
