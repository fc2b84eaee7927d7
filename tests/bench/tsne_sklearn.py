#!/usr/bin/python3
"""scikit-learn's TSNE on the input metasemi-bench-tsne writes, with the same settings.

Reads n x d float32 (raw, row-major), runs TSNE(perplexity 30, early exaggeration 12, 1000
iterations, learning rate 'auto', PCA initialisation, Barnes-Hut angle 0.5) on the given number
of threads, writes the n x 2 float64 embedding (raw) and prints 'seconds <s>' and 'kl <kl>'.
"""
import argparse
import time

import numpy as np
from sklearn.manifold import TSNE


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--d", type=int, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    x = np.fromfile(args.input, dtype=np.float32, count=args.n * args.d).reshape(args.n, args.d)
    tsne = TSNE(n_components=2, perplexity=30.0, early_exaggeration=12.0, n_iter=1000,
                learning_rate="auto", init="pca", method="barnes_hut", angle=0.5,
                n_jobs=args.threads, random_state=args.seed)
    start = time.perf_counter()
    y = tsne.fit_transform(x)
    seconds = time.perf_counter() - start
    np.ascontiguousarray(y, dtype=np.float64).tofile(args.output)
    print(f"seconds {seconds:.3f}")
    print(f"kl {tsne.kl_divergence_:.6f}")


if __name__ == "__main__":
    main()
