#!/usr/bin/python3
"""rm3_study.py -- RM3 expansion of the BM25 query before hybrid fusion, studied
outside plumb before it was built in (bench/RESULTS.md, "Query expansion").

  build/bench/dump_terms DIR/corpus.jsonl  > T/corpus.terms
  build/bench/dump_terms DIR/queries.jsonl > T/queries.terms
  python3 bench/rm3_study.py DIR T base 10,30,0.7,1 ...

Each config is fb_docs,fb_terms,orig_weight,temperature[,max_df] ("base":
no expansion; max_df: terms other than the query's in more than this share
of the documents are left out, default 1). It re-implements plumb's stage 1 with numpy: BM25 (k1 0.9,
b 0.4, title + text), LSA (log-tf x idf over terms in >= 2 documents,
unit rows, 256 dimensions, randomized SVD), dense feedback (the query
vector + the mean of the top 3 lexical hits' unit vectors, renormalised),
min-max fusion over the top 100 of each list. RM3: the top fb_docs
documents weigh exp((s - s_max) / T), normalised; e(t) = sum of weight *
tf / |D| (query terms included); the fb_terms heaviest, normalised; query
= orig * q / |q| + (1 - orig) * e. Prints nDCG@10 (linear gains) on the
train and test splits at alpha 0.3-0.6. Needs python3-numpy, -scipy and
-sklearn (study tools, not plumb dependencies).
"""
import collections, math, sys
import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

data, tdir, specs = sys.argv[1], sys.argv[2], sys.argv[3:]


def load(fn):
    ids, toks = [], []
    for line in open(fn):
        p = line.rstrip('\n').split('\t')
        ids.append(p[0])
        toks.append(p[1].split() + (p[2].split() if len(p) > 2 else []))
    return ids, toks


dids, dtoks = load(f'{tdir}/corpus.terms')
qids, qtoks = load(f'{tdir}/queries.terms')


def qrels(split):
    r = collections.defaultdict(dict)
    for i, line in enumerate(open(f'{data}/qrels/{split}.tsv')):
        p = line.split('\t')
        if i == 0 and not p[2].strip().lstrip('-').isdigit():
            continue
        r[p[0]][p[1]] = int(p[2])
    return r


QR = {s: qrels(s) for s in ('train', 'test')}
vocab = {}
for t in dtoks:
    for w in t:
        vocab.setdefault(w, len(vocab))
V, N = len(vocab), len(dids)
rows, cols, vals = [], [], []
for i, t in enumerate(dtoks):
    for k, v in collections.Counter(vocab[w] for w in t).items():
        rows.append(i); cols.append(k); vals.append(v)
TF = sp.csr_matrix((vals, (rows, cols)), shape=(N, V), dtype=np.float64)
df = np.asarray((TF > 0).sum(0)).ravel()
dl = np.asarray(TF.sum(1)).ravel()
QV = {}
for q, t in zip(qids, qtoks):
    v = np.zeros(V)
    for w in t:
        if w in vocab:
            v[vocab[w]] += 1
    QV[q] = v
# a judged query with no term the collection knows finds nothing: nDCG 0,
# as in plumb eval (trec_eval counts it too)
allq = sorted({q for s in QR for q in QR[s] if q in QV})

k1, b = 0.9, 0.4
bidf = np.log(1 + (N - df + .5) / (df + .5))
K = k1 * (1 - b + b * dl / dl.mean())
C = TF.tocoo()
Sat = sp.csr_matrix((C.data * (k1 + 1) / (C.data + K[C.row]), (C.row, C.col)), shape=(N, V))


def bm25(Q):  # rows: query weights
    return (Sat @ (sp.csr_matrix(Q) @ sp.diags(bidf)).T).T.toarray()


B0 = bm25(np.array([QV[q] for q in allq]))

idf = np.log(N / df)
keep = (df >= 2).astype(float)
LT = TF.copy()
LT.data = 1 + np.log(LT.data)
W = LT @ sp.diags(idf * keep)
W = sp.diags(1 / (np.sqrt(np.asarray(W.multiply(W).sum(1)).ravel()) + 1e-12)) @ W
U, S, VT = randomized_svd(W, 256, n_oversamples=20, n_iter=2, random_state=42)
Dn = U * S
Dn /= np.linalg.norm(Dn, axis=1, keepdims=True) + 1e-12


def qvec(qv):
    x = qv.copy()
    nz = x > 0
    x[nz] = 1 + np.log(x[nz])
    v = VT @ (x * idf * keep)
    return v / (np.linalg.norm(v) + 1e-12)


def ndcg10(s, rel):
    order = np.argsort(-s, kind='stable')[:10]
    dcg = sum(rel.get(dids[j], 0) / math.log2(r + 2) for r, j in enumerate(order))
    ideal = sorted(rel.values(), reverse=True)[:10]
    idcg = sum(g / math.log2(r + 2) for r, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0


def top(s, k=100):
    t = np.argpartition(-s, k)[:k]
    return t, s[t].min(), s[t].max()


def fuse(bs, ds, a):
    tb, blo, bhi = top(bs)
    td, dlo, dhi = top(ds)
    u = np.union1d(tb, td)
    nb = np.where(np.isin(u, tb), (bs[u] - blo) / (bhi - blo + 1e-12), 0)
    nd = np.where(np.isin(u, td), (ds[u] - dlo) / (dhi - dlo + 1e-12), 0)
    out = np.full(N, -1e9)
    out[u] = (1 - a) * nb + a * nd
    return out


Pd = (sp.diags(1 / dl) @ TF).tocsr()
alphas = (0.3, 0.4, 0.5, 0.6)
for spec in specs:
    if spec == 'base':
        B = B0
    else:
        f = spec.split(',') + ['1']
        fd, ft, lam, T, cap = int(f[0]), int(f[1]), float(f[2]), float(f[3]), float(f[4])
        Q = []
        for i, q in enumerate(allq):
            s = B0[i]
            t = np.argsort(-s, kind='stable')[:fd]
            w = np.exp((s[t] - s[t].max()) / T)
            e = np.asarray((sp.diags(w / w.sum()) @ Pd[t]).sum(0)).ravel()
            e[(df > cap * N) & (QV[q] == 0)] = 0
            tt = np.argsort(-e, kind='stable')[:ft]
            ex = np.zeros(V)
            ex[tt] = e[tt] / e[tt].sum()
            Q.append(lam * QV[q] / max(QV[q].sum(), 1) + (1 - lam) * ex)
        B = bm25(np.array(Q))
    out = []
    for split in ('train', 'test'):
        res = {a: [] for a in alphas}
        lex = []
        for i, q in enumerate(allq):
            if q not in QR[split]:
                continue
            if QV[q].sum() == 0:
                lex.append(0)
                for a in alphas:
                    res[a].append(0)
                continue
            qv = qvec(QV[q])
            c = Dn[np.argsort(-B[i], kind='stable')[:3]].mean(0)
            qv2 = qv + c / (np.linalg.norm(c) + 1e-12)
            ds = Dn @ (qv2 / np.linalg.norm(qv2))
            lex.append(ndcg10(B[i], QR[split][q]))
            for a in alphas:
                res[a].append(ndcg10(fuse(B[i], ds, a), QR[split][q]))
        out.append(f"{split}: bm25 {np.mean(lex):.4f} hybrid " +
                   " ".join(f"a{a} {np.mean(v):.4f}" for a, v in res.items()))
    print(f"{spec:16s} " + " | ".join(out), flush=True)
