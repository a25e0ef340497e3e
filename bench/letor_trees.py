#!/usr/bin/env python3
"""letor_trees.py -- does a tree ensemble beat the linear feature reranker?

    plumb tune --db IDX --data DIR --no-grid --no-store --dump-features F.letor
    python3 bench/letor_trees.py F.letor [--weights "bm25=0.75,dense=0.45,..."]

Reads the LETOR lines `plumb tune --dump-features` writes (the reranker's
13 normalised features of each judged query's top N, training and held-out
queries marked in the comment, with each query's ideal DCG@10) and compares
on the HELD-OUT queries:
  stage 1     the candidates in their stage-1 order
  linear      the shipped weights (src/rerank.c), or --weights
  lambdamart  gradient-boosted regression trees on LambdaRank gradients
              for nDCG@10 (Burges 2010), Newton leaf values; the number of
              trees, their leaves and the learning rate are chosen by
              5-fold cross-validation on the TRAINING queries only, and
              the model is either learned from scratch or on top of the
              linear score (its residual)
Everything is learned from the training queries; held-out queries are only
scored. Needs numpy and scikit-learn (python3-numpy, python3-sklearn: tools
for this study, not dependencies of plumb). Deterministic (fixed seeds).
"""
import argparse
import sys

import numpy as np
from sklearn.tree import DecisionTreeRegressor

NAMES = "bm25 dense fused cover title prox window bigram len dprf lprf ql tbm25".split()
SHIPPED = [0.75, 0.45, 4.2, -0.1, 1.85, 0.35, 0.1, 0.4, -0.1, 0.7, -0.8, 0.0, 0.0]


def load(path):
    qs = {}
    for line in open(path):
        if line.startswith("# query "):  # every judged query, with or without candidates
            meta = dict(x.split("=", 1) for x in line.split()[3:])
            qs.setdefault(line.split()[2], {"split": meta["split"], "idcg": float(meta["idcg"]),
                                            "docs": {}, "X": [], "y": []})
            continue
        body, _, comment = line.rstrip("\n").partition(" # ")
        parts = body.split()
        meta = dict(x.split("=", 1) for x in comment.split())
        q = qs.setdefault(parts[1], {"split": meta["split"], "idcg": float(meta["idcg"]),
                                      "docs": {}, "X": [], "y": []})
        doc = meta["doc"]
        if doc in q["docs"]:  # MaxP: a document's best chunk only (the first)
            continue
        q["docs"][doc] = 1
        q["X"].append([float(f.split(":")[1]) for f in parts[2:]])
        q["y"].append(int(parts[0]))
    out = {"train": [], "heldout": []}
    for q in qs.values():
        X = np.array(q["X"]).reshape(-1, len(NAMES))
        out[q["split"]].append((X, np.array(q["y"], float), q["idcg"]))
    return out["train"], out["heldout"]


def ndcg10(s, y, idcg):
    order = np.lexsort((np.arange(len(y)), -s))[:10]
    return float((y[order] / np.log2(np.arange(2, len(order) + 2))).sum() / idcg) if idcg > 0 else 0.0


def mean_ndcg(qs, score):
    return float(np.mean([ndcg10(score(X), y, i) for X, y, i in qs]))


def lambdamart(qs, trees, leaves, lr, base):
    X = np.vstack([q[0] for q in qs])
    off = np.cumsum([0] + [len(q[1]) for q in qs])
    F = X @ base if base is not None else np.zeros(len(X))
    model = []
    for _ in range(trees):
        g = np.zeros(len(X))
        h = np.zeros(len(X))
        for qi, (_, y, idcg) in enumerate(qs):
            if idcg <= 0 or len(y) == 0 or y.max() == 0:
                continue
            a, b = off[qi], off[qi + 1]
            s = F[a:b]
            rank = np.empty(b - a, int)
            rank[np.lexsort((np.arange(b - a), -s))] = np.arange(b - a)
            disc = np.where(rank < 10, 1 / np.log2(rank + 2), 0.0)
            better = y[:, None] > y[None, :]
            dd = np.abs((y[:, None] - y[None, :]) * (disc[:, None] - disc[None, :])) / idcg
            rho = 1 / (1 + np.exp(s[:, None] - s[None, :]))
            lam = np.where(better, rho * dd, 0.0)
            hes = np.where(better, rho * (1 - rho) * dd, 0.0)
            g[a:b] += lam.sum(1) - lam.sum(0)
            h[a:b] += hes.sum(1) + hes.sum(0)
        t = DecisionTreeRegressor(max_leaf_nodes=leaves, min_samples_leaf=50, random_state=0)
        t.fit(X, g)
        leaf = t.apply(X)
        vals = np.zeros(t.tree_.node_count)
        for lf in np.unique(leaf):
            m = leaf == lf
            vals[lf] = g[m].sum() / (h[m].sum() + 1e-9)
        t.tree_.value[:, 0, 0] = vals
        F += lr * t.predict(X)
        model.append(t)

    def score(Xq):
        s = Xq @ base if base is not None else np.zeros(len(Xq))
        if len(Xq) == 0:
            return s
        for t in model:
            s = s + lr * t.predict(Xq)
        return s
    return score


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("letor")
    ap.add_argument("--weights", help="linear weights, name=value,... (default: shipped)")
    a = ap.parse_args()
    w = np.array(SHIPPED)
    if a.weights:
        for kv in a.weights.split(","):
            k, v = kv.split("=")
            w[NAMES.index(k)] = float(v)
    tr, ho = load(a.letor)
    if not tr or not ho:
        sys.exit("letor_trees: need training and held-out queries in the dump")
    print("queries: %d training, %d held out" % (len(tr), len(ho)))
    first = lambda X: -np.arange(len(X), dtype=float)
    lin = lambda X: X @ w
    print("%-44s train %.4f  held out %.4f" % ("stage 1", mean_ndcg(tr, first), mean_ndcg(ho, first)))
    print("%-44s train %.4f  held out %.4f" % ("linear (shipped weights)", mean_ndcg(tr, lin),
                                                mean_ndcg(ho, lin)))
    grid = [(t, l, r, b) for b in (None, "linear") for (t, l, r) in
            ((50, 8, 0.1), (100, 8, 0.05), (100, 4, 0.05), (200, 16, 0.05))]
    rng = np.random.RandomState(42)
    fold = rng.randint(0, 5, len(tr))
    best = None
    for t, l, r, b in grid:
        base = w if b else None
        cv = []
        for k in range(5):
            fit = [q for q, f in zip(tr, fold) if f != k]
            val = [q for q, f in zip(tr, fold) if f == k]
            cv.append(mean_ndcg(val, lambdamart(fit, t, l, r, base)))
        m = float(np.mean(cv))
        print("  cv  trees %3d leaves %2d lr %.2f base %-6s  5-fold train nDCG@10 %.4f"
              % (t, l, r, b or "none", m))
        if best is None or m > best[0]:
            best = (m, t, l, r, b)
    _, t, l, r, b = best
    model = lambdamart(tr, t, l, r, w if b else None)
    print("%-44s train %.4f  held out %.4f" % (
        "lambdamart (trees %d, leaves %d, lr %.2f, base %s)" % (t, l, r, b or "none"),
        mean_ndcg(tr, model), mean_ndcg(ho, model)))


if __name__ == "__main__":
    main()
