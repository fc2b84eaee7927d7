#!/usr/bin/python3
"""Runs one MetaSemi step in PyTorch exactly as the reference train_meta.py / train_baseline.py
do (reference-spec section 2), and the same step with metasemi-step-check on identical inputs,
then prints the largest differences of every output.

Needs /usr/bin/python3 with python3-torch and python3-h5py (cross-check only, never a product
dependency). Example:

    tests/crosscheck/step_check_torch.py --bin build/bin/metasemi-step-check --dtype float64
"""
import argparse
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class ConvLarge(nn.Module):
    """ConvLarge with the reference's module names, built from reference-spec section 4.1."""

    def __init__(self, in_ch, num_classes, width, dropout):
        super().__init__()
        c1, c2, c3 = (max(1, round(c * width)) for c in (128, 256, 512))
        spec = [(in_ch, c1, 3, 1), (c1, c1, 3, 1), (c1, c1, 3, 1), (c1, c2, 3, 1), (c2, c2, 3, 1),
                (c2, c2, 3, 1), (c2, c3, 3, 0), (c3, c2, 1, 0), (c2, c1, 1, 0)]
        for i, (cin, cout, k, pad) in enumerate(spec, 1):
            setattr(self, "block%d" % i, nn.Sequential(
                nn.Conv2d(cin, cout, k, 1, pad, bias=False), nn.BatchNorm2d(cout),
                nn.LeakyReLU(0.1, inplace=True)))
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        pool = [nn.MaxPool2d(2, 2)] + ([nn.Dropout2d(dropout)] if dropout > 0 else [])
        self.maxpool = nn.Sequential(*pool)
        self.classifier = nn.Sequential(nn.Linear(c1, num_classes))

    def forward(self, x):
        for i in (1, 2, 3):
            x = getattr(self, "block%d" % i)(x)
        x = self.maxpool(x)
        for i in (4, 5, 6):
            x = getattr(self, "block%d" % i)(x)
        x = self.maxpool(x)
        for i in (7, 8, 9):
            x = getattr(self, "block%d" % i)(x)
        return self.classifier(self.avg_pool(x).flatten(1))


def reference_step(model, opt, xl, yl, xu, lam, a):
    """The reference's step, statement by statement (train_meta.py l.134-198)."""
    out = {}
    params = list(model.parameters())
    yl_onehot = F.one_hot(yl, a.num_classes).to(xl.dtype)
    for group in opt.param_groups:
        group["lr"] = a.lr
    meta = a.method == "meta"
    if meta:
        model.eval()
        label_pred = model(xl)
        label_loss = F.cross_entropy(label_pred, yl)
        g = torch.autograd.grad(label_loss, params)
        out["labeled_grads"] = [t.detach().clone() for t in g]
        with torch.no_grad():
            y = F.softmax(model(xu), dim=1)
            out["pseudo_labels_init"] = y.clone()
            norm = torch.norm(torch.cat([t.reshape(-1) for t in g]))
            eps = a.epsilon / norm
            for p, t in zip(params, g):
                p.add_(t, alpha=eps)
            pos = model(xu)
            for p, t in zip(params, g):
                p.sub_(t, alpha=2.0 * eps)
            neg = model(xu)
            for p, t in zip(params, g):
                p.add_(t, alpha=eps)
            d = F.softmax(pos, dim=1) - F.softmax(neg, dim=1)
            d.div_(eps)
            y.sub_(d, alpha=a.lr)
            torch.relu_(y)
            s = y.sum(dim=1, keepdim=True)
            y /= torch.where(s == 0.0, torch.ones_like(s), s)
        out.update(labeled_loss=label_loss.detach(), grad_norm=norm, epsilon=eps, pseudo_labels=y)
    elif a.mix_up:
        model.eval()
        with torch.no_grad():
            label_pred = model(xl)
            y = F.softmax(model(xu), dim=1)
        out["pseudo_labels"] = y
    model.train()
    lam1 = lam.view(-1, 1)
    if a.mix_up:
        lam4 = lam.view(-1, 1, 1, 1)
        x_mix = (xl * lam4 + xu * (1.0 - lam4)).detach()
        y_mix = (yl_onehot * lam1 + y * (1.0 - lam1)).detach()
        mix_loss = F.kl_div(F.log_softmax(model(x_mix), dim=1), y_mix, reduction="batchmean")
        out["mix_loss"] = mix_loss.detach()
        loss = mix_loss
    else:
        label_loss = F.cross_entropy(model(xl), yl)
        out["labeled_loss"] = label_loss.detach()
        loss = label_loss
    if meta:
        u = torch.norm(F.softmax(model(xu), dim=1) - y, p=2, dim=1).pow(2).mean()
        out["unlabeled_loss"] = u.detach()
        loss = loss + a.weight * u
    opt.zero_grad()
    loss.backward()
    out["grads"] = [p.grad.detach().clone() for p in params]
    opt.step()
    out["loss"] = loss.detach()
    out["model"] = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="build/bin/metasemi-step-check")
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    ap.add_argument("--method", choices=["meta", "baseline"], default="meta")
    ap.add_argument("--mix-up", type=int, default=1)
    ap.add_argument("--architecture", choices=["convlarge", "resnet18"], default="convlarge",
                    help="resnet18 compares with torchvision's (needs python3-torchvision)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--num-classes", type=int, default=10)
    ap.add_argument("--width-factor", type=float, default=0.125)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--epsilon", type=float, default=1e-2)
    ap.add_argument("--weight", type=float, default=1.0)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=8469)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--channels-last", type=int, default=0,
                    help="memory format of the C++ run (PyTorch runs NCHW as the reference)")
    ap.add_argument("--tolerance", type=float, default=None,
                    help="largest allowed relative difference (default 1e-9 float64, 2e-3 float32)")
    a = ap.parse_args()
    tol = a.tolerance or (1e-9 if a.dtype == "float64" else 2e-3)
    dtype = torch.float64 if a.dtype == "float64" else torch.float32
    torch.set_num_threads(a.threads)

    torch.manual_seed(a.seed)
    if a.architecture == "resnet18":
        import torchvision
        model = torchvision.models.resnet18(num_classes=a.num_classes).to(dtype)
    else:
        model = ConvLarge(a.channels, a.num_classes, a.width_factor, a.dropout).to(dtype)
    with torch.no_grad():  # non-trivial BN statistics, so eval mode is not the identity
        model.train()
        model(torch.randn(8, a.channels, a.size, a.size, dtype=dtype))
    shape = (a.batch, a.channels, a.size, a.size)
    xl, xu = torch.randn(shape, dtype=dtype), torch.randn(shape, dtype=dtype)
    yl = torch.randint(a.num_classes, (a.batch,))
    lam = torch.distributions.Beta(torch.tensor([1.0]), torch.tensor([1.0])).sample(
        (a.batch,)).view(-1).to(dtype)

    tmp = tempfile.mkdtemp(prefix="step_check_")
    ckpt, batch, outp = (os.path.join(tmp, n) for n in ("ckpt.h5", "batch.h5", "out.h5"))
    with h5py.File(ckpt, "w") as f:
        for k, v in model.state_dict().items():
            f["model/" + k] = v.numpy()
    with h5py.File(batch, "w") as f:
        f["labeled_images"], f["labels"] = xl.numpy(), yl.numpy()
        f["unlabeled_images"], f["lambda"] = xu.numpy(), lam.numpy()

    cmd = [a.bin, "--architecture", a.architecture, "--checkpoint", ckpt, "--batch", batch, "--output", outp,
           "--num-classes", str(a.num_classes), "--width-factor", str(a.width_factor),
           "--dropout", str(a.dropout), "--method", a.method, "--lr", str(a.lr),
           "--epsilon", str(a.epsilon), "--weight", str(a.weight),
           "--weight-decay", str(a.weight_decay), "--seed", str(a.seed), "--dtype", a.dtype,
           "--threads", str(a.threads), "--channels-last", str(a.channels_last)] + (["--mix-up"] if a.mix_up else [])
    subprocess.run(cmd, check=True)

    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=a.weight_decay)
    torch.manual_seed(a.seed)  # the same global-generator state for the Dropout2d masks
    ref = reference_step(model, opt, xl, yl, xu, lam, a)

    names = [n for n, _ in model.named_parameters()]
    worst = 0.0
    with h5py.File(outp, "r") as f:
        def compare(label, ours, theirs):
            nonlocal worst
            theirs = theirs.detach().double().numpy()
            diff = float(np.max(np.abs(ours - theirs))) if theirs.size else 0.0
            scale = max(float(np.max(np.abs(theirs))) if theirs.size else 0.0, 1e-12)
            worst = max(worst, diff / scale)
            return diff, diff / scale

        rows = []
        for key in ("loss", "labeled_loss", "mix_loss", "unlabeled_loss", "grad_norm", "epsilon",
                    "pseudo_labels_init", "pseudo_labels"):
            if key in ref:
                rows.append((key,) + compare(key, np.asarray(f[key][()], dtype=np.float64),
                                             ref[key]))
        for group in ("labeled_grads", "grads"):
            if group in ref:
                diffs = [compare(group, np.asarray(f[group + "/" + n][()], np.float64), t)
                         for n, t in zip(names, ref[group])]
                rows.append((group + "/* (%d)" % len(diffs), max(d[0] for d in diffs),
                             max(d[1] for d in diffs)))
                worst_key = names[max(range(len(diffs)), key=lambda i: diffs[i][1])]
                rows.append(("  worst: " + worst_key,) + diffs[names.index(worst_key)])
        diffs = [compare("model", np.asarray(f["model/" + k][()], np.float64), v)
                 for k, v in ref["model"].items()]
        rows.append(("model/* after step (%d)" % len(diffs), max(d[0] for d in diffs),
                     max(d[1] for d in diffs)))
        keys = list(ref["model"].keys())
        worst_key = keys[max(range(len(diffs)), key=lambda i: diffs[i][1])]
        rows.append(("  worst: " + worst_key,) + diffs[keys.index(worst_key)])
    print("%-34s %14s %14s" % ("output", "max |diff|", "relative"))
    for name, d, r in rows:
        print("%-34s %14.3e %14.3e" % (name, d, r))
    print("worst relative difference %.3e (tolerance %.1e): %s"
          % (worst, tol, "OK" if worst <= tol else "MISMATCH"))
    return 0 if worst <= tol else 1


if __name__ == "__main__":
    sys.exit(main())
