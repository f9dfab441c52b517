#!/usr/bin/env python3
"""The recipe of `cifar10 --preset speedrun` written in plain PyTorch, for
bench/gpu_check.sh to run beside ours on the same GPU and data: airbench94's
net (frozen 2x2 whitening, three conv groups, max pool, 1/9 output scale) at
width 64, batch 1024, Nesterov SGD (lr 1.5, momentum 0.85, weight decay
1.33e-3 on conv and linear weights), label smoothing 0.2, a one-cycle rate
(30% rise from lr/25, fall to lr/1000), random 2-pixel crops with zero fill,
alternating flips, lookahead every 5 steps, bf16 autocast, channels-last,
and flip-and-shift TTA (4 views). Trains on 45,000 of the 50,000 training
images, tests on the 10,000 test images, and prints one line:
  speedrun_torch: seed S, test A%, train T s (first epoch F s), eval E s
Usage: speedrun_torch.py DATA_ROOT [--seed N] [--epochs N] [--train-limit N] [--test-limit N]
DATA_ROOT holds cifar-10-batches-bin/."""
import argparse
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def read_batch(path):
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 3073)
    return torch.from_numpy(raw[:, 1:].reshape(-1, 3, 32, 32).copy()), torch.from_numpy(raw[:, 0].astype(np.int64))


def load(root):
    d = os.path.join(root, "cifar-10-batches-bin")
    parts = [read_batch(os.path.join(d, f"data_batch_{i}.bin")) for i in range(1, 6)]
    train = (torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))
    return train, read_batch(os.path.join(d, "test_batch.bin"))


def batch_norm(c):
    bn = nn.BatchNorm2d(c, eps=1e-12, momentum=0.4)
    bn.weight.requires_grad = False
    return bn


def conv(cin, cout):
    c = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
    with torch.no_grad():
        nn.init.dirac_(c.weight[: min(cin, cout)])
    return c


class ConvGroup(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1, self.pool, self.norm1 = conv(cin, cout), nn.MaxPool2d(2), batch_norm(cout)
        self.conv2, self.norm2, self.activ = conv(cout, cout), batch_norm(cout), nn.GELU()

    def forward(self, x):
        x = self.activ(self.norm1(self.pool(self.conv1(x))))
        return self.activ(self.norm2(self.conv2(x)))


class FastNet(nn.Module):
    def __init__(self, width=64):
        super().__init__()
        self.whiten = nn.Conv2d(3, 24, 2, bias=True)
        self.whiten.weight.requires_grad = False
        nn.init.zeros_(self.whiten.bias)
        self.blocks = nn.Sequential(ConvGroup(24, width), ConvGroup(width, 4 * width), ConvGroup(4 * width, 4 * width))
        self.head = nn.Linear(4 * width, 10, bias=False)

    def init_whitening(self, x):
        patches = x.double().unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)
        moments = patches.t() @ patches / patches.shape[0]
        values, vectors = torch.linalg.eigh(moments)
        filters = vectors.t().flip(0).reshape(12, 3, 2, 2) * (values.flip(0) + 5e-4).rsqrt().view(-1, 1, 1, 1)
        with torch.no_grad():
            self.whiten.weight.copy_(torch.cat([filters, -filters]).float())

    def forward(self, x):
        x = self.blocks(F.gelu(self.whiten(x)))
        return self.head(x.amax((2, 3))) / 9


def normalize(u8, device):
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    return ((u8.float() / 255 - mean) / std).contiguous(memory_format=torch.channels_last)


def shift(x, dy, dx, pad):
    b, c, h, w = x.shape
    p = F.pad(x, (pad, pad, pad, pad))
    rows = torch.arange(h, device=x.device).view(1, h) + (pad - dy).view(b, 1)
    cols = torch.arange(w, device=x.device).view(1, w) + (pad - dx).view(b, 1)
    out = p.gather(2, rows.view(b, 1, h, 1).expand(b, c, h, w + 2 * pad))
    return out.gather(3, cols.view(b, 1, 1, w).expand(b, c, h, w))


def evaluate(net, images, labels, device, tta):
    net.eval()
    correct = 0
    with torch.no_grad(), torch.autocast(device.type, torch.bfloat16):
        for i in range(0, len(images), 2000):
            x = normalize(images[i:i + 2000].to(device), device)
            views = [x]
            if tta:
                f = x.flip(3)
                zero, one = torch.zeros(len(x), dtype=torch.long, device=device), torch.ones(len(x), dtype=torch.long, device=device)
                views = [x, f, shift(f, zero, one, 1), shift(f, zero, -one, 1)]
            probs = sum(torch.softmax(net(v.contiguous(memory_format=torch.channels_last)).float(), 1) for v in views)
            correct += (probs.argmax(1).cpu() == labels[i:i + 2000]).sum().item()
    net.train()
    return correct / len(images)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data_root")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--train-limit", type=int, default=45000)
    ap.add_argument("--test-limit", type=int, default=10000)
    a = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(a.seed)
    torch.backends.cudnn.benchmark = True
    (train_x, train_y), (test_x, test_y) = load(a.data_root)
    test_x, test_y = test_x[: a.test_limit], test_y[: a.test_limit]
    keep = torch.randperm(len(train_x))[: min(a.train_limit, 45000)]
    train_x, train_y = train_x[keep].to(device), train_y[keep].to(device)
    net = FastNet().to(device).to(memory_format=torch.channels_last)
    net.init_whitening(normalize(train_x[:5000], device))
    decay = [p for p in net.parameters() if p.requires_grad and p.dim() >= 2]
    other = [p for p in net.parameters() if p.requires_grad and p.dim() < 2]
    lr, batch, n = 1.5, 1024, len(train_x)
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 1.33e-3}, {"params": other, "weight_decay": 0}],
                          lr=lr, momentum=0.85, nesterov=True)
    steps_per_epoch = (n + batch - 1) // batch
    total = steps_per_epoch * a.epochs
    warmup = total * 3 // 10

    def rate(step):
        if step < warmup:
            return lr / 25 + (lr - lr / 25) * step / warmup
        return lr + (lr * 1e-3 - lr) * min(1.0, (step - warmup) / max(1, total - warmup))

    slow = [t.detach().clone() for t in list(net.parameters()) + [b for b in net.buffers() if b.is_floating_point()]]

    def lookahead(step):
        d = 0.95 ** 5 * min(1.0, step / total) ** 3
        with torch.no_grad():
            for s, f in zip(slow, list(net.parameters()) + [b for b in net.buffers() if b.is_floating_point()]):
                s.lerp_(f, 1 - d)
                f.copy_(s)

    first_flip = torch.randint(0, 2, (n,), device=device)
    step, first_epoch = 0, 0.0
    sync()
    t0 = time.perf_counter()
    for epoch in range(a.epochs):
        order = torch.randperm(n, device=device)
        for i in range(steps_per_epoch):
            idx = order[i * batch:(i + 1) * batch]
            x = normalize(train_x[idx], device)
            flip = (first_flip[idx] ^ (epoch % 2)).bool().view(-1, 1, 1, 1)
            x = torch.where(flip, x.flip(3), x)
            x = shift(x, torch.randint(-2, 3, (len(x),), device=device), torch.randint(-2, 3, (len(x),), device=device), 2)
            for g in opt.param_groups:
                g["lr"] = rate(step)
            with torch.autocast(device.type, torch.bfloat16):
                loss = F.cross_entropy(net(x.contiguous(memory_format=torch.channels_last)).float(), train_y[idx],
                                       label_smoothing=0.2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if step % 5 == 0 or i + 1 == steps_per_epoch:
                lookahead(step)
        if epoch == 0:
            sync()
            first_epoch = time.perf_counter() - t0
    sync()
    train_seconds = time.perf_counter() - t0
    e0 = time.perf_counter()
    accuracy = evaluate(net, test_x, test_y, device, tta=True)
    print(f"speedrun_torch: seed {a.seed}, test {accuracy * 100:.2f}%, train {train_seconds:.2f} s "
          f"(first epoch {first_epoch:.2f} s), eval {time.perf_counter() - e0:.2f} s")


if __name__ == "__main__":
    main()
