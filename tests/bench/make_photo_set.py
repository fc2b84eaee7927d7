"""Builds a set of ImageNet-like JPEG photos for metasemi-bench-data from the photographs in
Debian's wallpaper packages (mate-backgrounds, ukui-wallpapers, lomiri-wallpapers-20.04).

    /usr/bin/python3 tests/bench/make_photo_set.py OUT_DIR [--count 1000] [--seed 1]

Wallpapers stored at under 1 bit per pixel (smooth gradients and blurs, which decode faster than
photographs) are left out. Each output image is a random window (a quarter to all of the photo's shorter side, aspect
ratio 3:4 to 16:9 either way) of one of the photos, resized so that its longer side is 500
pixels (ImageNet's most common size; one image in seven gets a longer side between 600 and
1600, as ImageNet's larger files) and saved with PIL (libjpeg-turbo) at quality 85 to 95,
4:2:0. Writes OUT_DIR/photos/img_NNNNN.jpg; the packages are kept in OUT_DIR/debs.
Needs python3-pil; a benchmark helper, never part of the product.
"""
import argparse
import glob
import os
import random
import subprocess
import sys

from PIL import Image

PACKAGES = ["mate-backgrounds", "ukui-wallpapers", "lomiri-wallpapers-20.04"]


def sources(debs):
    os.makedirs(debs, exist_ok=True)
    for p in PACKAGES:
        if not glob.glob(os.path.join(debs, p + "_*.deb")):
            if subprocess.call(["apt-get", "download", p], cwd=debs) != 0:
                subprocess.check_call(["apt-get", "update", "-q"])
                subprocess.check_call(["apt-get", "download", p], cwd=debs)
    tree = os.path.join(debs, "x")
    if not os.path.isdir(tree):
        for deb in glob.glob(os.path.join(debs, "*.deb")):
            subprocess.check_call(["dpkg-deb", "-x", deb, tree + ".tmp"])
        os.rename(tree + ".tmp", tree)
    files = sorted(f for f in glob.glob(os.path.join(tree, "**", "*"), recursive=True)
                   if f.lower().endswith((".jpg", ".jpeg")) and not os.path.islink(f))
    if not files:
        sys.exit("no JPEG photos found in " + ", ".join(PACKAGES))
    return files


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    files = sources(os.path.join(args.out, "debs"))
    photos = []
    for f in files:
        with Image.open(f) as im:
            if os.path.getsize(f) * 8 >= im.size[0] * im.size[1]:
                photos.append(im.convert("RGB"))
    rng = random.Random(args.seed)
    out = os.path.join(args.out, "photos")
    os.makedirs(out, exist_ok=True)
    for k in range(args.count):
        im = photos[k % len(photos)]
        W, H = im.size
        ratio = rng.uniform(0.75, 16 / 9)
        if rng.random() < 0.5:
            ratio = 1 / ratio
        side = rng.uniform(0.25, 1.0) * min(W, H)
        w = min(W, int(side * ratio ** 0.5))
        h = min(H, int(side / ratio ** 0.5))
        x, y = rng.randint(0, W - w), rng.randint(0, H - h)
        longer = 500 if rng.random() < 6 / 7 else rng.randint(600, 1600)
        s = longer / max(w, h)
        window = im.crop((x, y, x + w, y + h)).resize(
            (max(1, round(w * s)), max(1, round(h * s))), Image.BILINEAR)
        window.save(os.path.join(out, f"img_{k:05d}.jpg"), quality=rng.randint(85, 95))
    print(f"{args.count} photos from {len(photos)} of {len(files)} wallpapers in {out}")


if __name__ == "__main__":
    main()
