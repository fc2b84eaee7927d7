#!/usr/bin/python3
"""Checks the files metasemi-export writes against the checkpoint they come from, in PyTorch.

* the .pth: torch.load reads the reference's dict {'step', 'model', 'best_acc', 'optimizer'};
  its pickle needs nothing but what torch.save itself uses (so weights_only=True loads it);
  every tensor is a contiguous CPU tensor bit-equal to the HDF5 checkpoint's;
  model.load_state_dict(ckpt['model']) is strict on a PyTorch model with the reference's
  module names (ConvLarge as in the reference's model.py, torchvision's ResNet-18), and that
  model's logits on metasemi-eval's inputs equal metasemi-eval's logits within float tolerance;
  ckpt['optimizer'] loads into torch.optim.SGD, whose next step then uses the stored momentum;
* the .safetensors: safetensors.torch.load_file gives the same tensors, bit-equal, with step
  and best_acc in its metadata.

Every failed comparison is printed as a "FAILED" line and the exit status is 1. Needs torch,
numpy, h5py and safetensors (env/test-venv.sh). Example:

    export_check.py --checkpoint run/checkpoint.h5 --pth model.pth --safetensors \\
        model.safetensors --logits logits.h5
"""
import argparse
import math
import pickletools
import sys
import zipfile
from collections import OrderedDict

import h5py
import numpy as np
import torch
from torch import nn

FAILURES = []


def check(ok, what):
    print(("ok      " if ok else "FAILED  ") + what)
    if not ok:
        FAILURES.append(what)
    return ok


class ConvLarge(nn.Module):
    """The reference's ConvLarge (model.py): conv-BN-LeakyReLU(0.1) blocks block1..block9,
    a shared max-pool + Dropout2d after blocks 3 and 6, global average pooling, a linear
    classifier. Channel counts c1/c2/c3 (128/256/512 at full width) come from the checkpoint."""

    def __init__(self, in_ch, c1, c2, c3, num_classes, dropout):
        super().__init__()

        def block(cin, cout, kernel, padding):
            return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride=1, padding=padding,
                                           bias=False),
                                 nn.BatchNorm2d(cout), nn.LeakyReLU(0.1, inplace=True))

        self.block1 = block(in_ch, c1, 3, 1)
        self.block2 = block(c1, c1, 3, 1)
        self.block3 = block(c1, c1, 3, 1)
        self.block4 = block(c1, c2, 3, 1)
        self.block5 = block(c2, c2, 3, 1)
        self.block6 = block(c2, c2, 3, 1)
        self.block7 = block(c2, c3, 3, 0)
        self.block8 = block(c3, c2, 1, 0)
        self.block9 = block(c2, c1, 1, 0)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        layers = [nn.MaxPool2d(2, 2)]
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        self.maxpool = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(c1, num_classes))

    def forward(self, x):
        x = self.block3(self.block2(self.block1(x)))
        x = self.maxpool(x)
        x = self.block6(self.block5(self.block4(x)))
        x = self.maxpool(x)
        x = self.block9(self.block8(self.block7(x)))
        return self.classifier(torch.flatten(self.avg_pool(x), 1))


class BasicBlock(nn.Module):
    """torchvision's ResNet BasicBlock, with its attribute names."""

    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """torchvision.models.resnet18's module tree (conv1 with `in_ch` input channels)."""

    def __init__(self, in_ch, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        planes_in = 64
        for i, planes in enumerate((64, 128, 256, 512), 1):
            stride = 1 if i == 1 else 2
            setattr(self, "layer%d" % i, nn.Sequential(BasicBlock(planes_in, planes, stride),
                                                       BasicBlock(planes, planes, 1)))
            planes_in = planes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def parse_config(text):
    cfg = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            cfg[key.strip()] = value.strip()
    return cfg


def attr_text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def reference_lr(cfg, step):
    """train_meta.py's compute_lr for 0-based `step`; None for other schedules."""
    if cfg.get("lr-schedule", "step") != "step":
        return None
    base, warmup = float(cfg["lr"]), int(cfg["warmup"])
    if step < warmup:
        return base * step / warmup
    milestones = [int(m) for m in cfg["milestones"].strip("[]").split(",") if m.strip()]
    return base * float(cfg["gamma"]) ** sum(step > m for m in milestones)


def same_bits(tensor, array):
    """True when `tensor` holds exactly the dtype, shape and bytes of numpy `array`."""
    t = tensor.detach().cpu().contiguous().numpy()
    return t.dtype == array.dtype and t.shape == array.shape and t.tobytes() == array.tobytes()


def build_model(cfg, state):
    arch = cfg.get("architecture", "convlarge")
    if arch == "resnet18":
        return ResNet18(state["conv1.weight"].shape[1], state["fc.weight"].shape[0])
    return ConvLarge(state["block1.0.weight"].shape[1], state["block1.0.weight"].shape[0],
                     state["block4.0.weight"].shape[0], state["block7.0.weight"].shape[0],
                     state["classifier.0.weight"].shape[0], float(cfg.get("dropout", "0.5")))


def check_pickle(path):
    """The archive's globals are those torch.save writes for a state dict."""
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl")]
        if not check(len(pkl) == 1, "%s is a torch.save zip archive with one data.pkl" % path):
            return
        prefix = pkl[0][:-len("data.pkl")]
        check(prefix + "version" in names, "archive has a version record")
        data = z.read(pkl[0])
    allowed = {"collections OrderedDict", "torch._utils _rebuild_tensor_v2"}
    found = set()
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL":
            found.add(arg)
    storages = {g for g in found if g.startswith("torch ") and g.endswith("Storage")}
    check(found - storages <= allowed,
          "pickle globals are torch.save's own: %s" % sorted(found))
    if tuple(int(v) for v in torch.__version__.split(".")[:2]) >= (2, 0):
        # Older versions' weights-only reader has no BINFLOAT, so even torch.save's own
        # checkpoints need weights_only=False there.
        try:
            torch.load(path, map_location="cpu", weights_only=True)
            check(True, "torch.load(weights_only=True) reads it")
        except Exception as e:  # noqa: BLE001 - any failure is the finding
            check(False, "torch.load(weights_only=True) reads it: %s" % e)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="the HDF5 checkpoint exported")
    ap.add_argument("--pth", help="metasemi-export's .pth")
    ap.add_argument("--safetensors", help="metasemi-export's .safetensors")
    ap.add_argument("--logits", help="metasemi-eval --logits FILE --logits-inputs output")
    ap.add_argument("--tolerance", type=float, default=1e-4,
                    help="largest logit difference, relative to max(1, largest |logit|)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    print("torch %s" % torch.__version__)

    h5 = h5py.File(a.checkpoint, "r")
    cfg = parse_config(attr_text(h5.attrs["config"]))
    keys = [attr_text(k) for k in h5["model"].attrs["keys"]]
    h5_model = {k: h5["model"][k][()] for k in keys}
    h5_momentum = {k: v[()] for k, v in h5["optimizer/momentum_buffer"].items()}
    step = int(h5.attrs["step"])
    best = float(h5.attrs["best_acc1"])
    best = best if math.isfinite(best) else 0.0

    if a.pth:
        check_pickle(a.pth)
        ckpt = torch.load(a.pth, map_location="cpu")
        check(isinstance(ckpt, dict) and list(ckpt) == ["step", "model", "best_acc", "optimizer"],
              "keys are step, model, best_acc, optimizer: %s" % list(ckpt))
        check(type(ckpt["step"]) is int and ckpt["step"] == step,
              "step %r == %d" % (ckpt["step"], step))
        check(type(ckpt["best_acc"]) is float and ckpt["best_acc"] == best,
              "best_acc %r == %r" % (ckpt["best_acc"], best))
        state = ckpt["model"]
        check(isinstance(state, OrderedDict), "model is an OrderedDict like state_dict()")
        check(sorted(state) == sorted(keys), "model keys are the checkpoint's %d keys" % len(keys))
        bad = [k for k in keys if k not in state or not same_bits(state[k], h5_model[k])]
        check(not bad, "model tensors bit-equal to the checkpoint's: differing %s" % bad)
        odd = [k for k, t in state.items()
               if not (t.is_contiguous() and t.device.type == "cpu" and not t.requires_grad)]
        check(not odd, "model tensors are contiguous CPU tensors: not %s" % odd)

        model = build_model(cfg, state)
        missing, unexpected = model.load_state_dict(state, strict=True)
        check(not missing and not unexpected, "strict load_state_dict into the reference model")
        check(list(model.state_dict()) == list(state),
              "the reference model's state_dict order equals the file's")
        params = list(model.named_parameters())

        if a.logits:
            lg = h5py.File(a.logits, "r")
            inputs = torch.from_numpy(lg["inputs"][()])
            expected = torch.from_numpy(lg["logits"][()])
            model.eval()
            with torch.no_grad():
                got = model(inputs)
            scale = max(1.0, expected.abs().max().item())
            diff = (got - expected).abs().max().item()
            check(got.shape == expected.shape and diff <= a.tolerance * scale,
                  "logits of %d images equal metasemi-eval's: max |diff| %.3g (scale %.3g, "
                  "tolerance %.3g)" % (expected.shape[0], diff, scale, a.tolerance * scale))
            agree = (got.argmax(1) == expected.argmax(1)).float().mean().item()
            print("        predicted classes agree on %.1f%% of the images" % (100 * agree))

        opt_state = ckpt["optimizer"]
        groups = opt_state["param_groups"]
        check(len(groups) == 1 and groups[0]["params"] == list(range(len(params))),
              "one parameter group with the %d parameters in model.parameters() order"
              % len(params))
        g = groups[0]
        want_lr = reference_lr(cfg, step - 1) if step > 0 else float(cfg["lr"])
        if want_lr is not None:
            check(math.isclose(g["lr"], want_lr, rel_tol=1e-12, abs_tol=1e-15),
                  "lr %r is compute_lr(step - 1) = %r" % (g["lr"], want_lr))
        check(g["momentum"] == float(cfg["momentum"]) and
              g["weight_decay"] == float(cfg["weight-decay"]) and g["dampening"] == 0 and
              g["nesterov"] is False,
              "momentum %r, weight_decay %r, dampening %r, nesterov %r as the reference's SGD"
              % (g["momentum"], g["weight_decay"], g["dampening"], g["nesterov"]))
        opt = torch.optim.SGD(model.parameters(), lr=float(cfg["lr"]),
                              momentum=float(cfg["momentum"]),
                              weight_decay=float(cfg["weight-decay"]))
        opt.load_state_dict(opt_state)
        bad = [n for n, p in params
               if n in h5_momentum and not same_bits(opt.state[p]["momentum_buffer"],
                                                     h5_momentum[n])]
        absent = [n for n, p in params if (n in h5_momentum) != ("momentum_buffer" in opt.state[p])]
        check(not bad and not absent,
              "torch.optim.SGD.load_state_dict: momentum buffers bit-equal to the checkpoint's "
              "(differing %s, misplaced %s)" % (bad, absent))
        # One step with a known gradient uses the loaded buffers: d = g + wd·θ, b = m·b + d,
        # θ -= lr·b.
        lr, m, wd = g["lr"], g["momentum"], g["weight_decay"]
        before = {}
        for n, p in params:
            buf = opt.state[p].get("momentum_buffer")
            before[n] = (p.detach().clone(), None if buf is None else buf.clone())
        for n, p in params:
            p.grad = torch.full_like(p, 0.01)
        opt.step()
        worst = 0.0
        for n, p in params:
            theta, buf = before[n]
            d = 0.01 + wd * theta
            b = d if buf is None else m * buf + d
            worst = max(worst, (p.detach() - (theta - lr * b)).abs().max().item())
        check(worst <= 1e-6, "an SGD step after loading follows the stored momentum: max "
              "|diff| %.3g" % worst)

    if a.safetensors:
        from safetensors import safe_open
        from safetensors.torch import load_file
        st = load_file(a.safetensors)
        check(sorted(st) == sorted(keys), "safetensors keys are the checkpoint's %d keys"
              % len(keys))
        bad = [k for k in keys if k not in st or not same_bits(st[k], h5_model[k])]
        check(not bad, "safetensors tensors bit-equal to the checkpoint's: differing %s" % bad)
        if a.pth:
            bad = [k for k in keys if k not in st or
                   not same_bits(st[k], ckpt["model"][k].numpy())]
            check(not bad, "safetensors tensors bit-equal to the .pth's: differing %s" % bad)
        with safe_open(a.safetensors, framework="pt") as f:
            meta = f.metadata() or {}
        check(meta.get("step") == str(step) and float(meta.get("best_acc", "nan")) == best and
              meta.get("architecture") == cfg.get("architecture", "convlarge"),
              "safetensors metadata step %r, best_acc %r, architecture %r"
              % (meta.get("step"), meta.get("best_acc"), meta.get("architecture")))

    if FAILURES:
        print("%d check(s) FAILED" % len(FAILURES))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
