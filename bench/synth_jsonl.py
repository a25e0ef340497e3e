# synth_jsonl.py N OUT -- a synthetic JSONL collection for plumb index: N records,
# 40..160 words each (title: the first 5) over a 100k-word Zipfian vocabulary
# (exponent 1.0), fixed seed: the same file on every machine. Used for the
# side-file memory figures in RESULTS.md.
import random, sys, itertools
n = int(sys.argv[1]); out = sys.argv[2]
r = random.Random(1)
cons, vow = "bcdfghjklmnprstvz", "aeiou"
vocab = set()
while len(vocab) < 100000:
    vocab.add("".join(r.choice(cons) + r.choice(vow) for _ in range(r.randint(2, 5))))
vocab = sorted(vocab); r.shuffle(vocab)
cum = list(itertools.accumulate(1.0 / (i + 1) for i in range(len(vocab))))
with open(out, "w") as f:
    for d in range(n):
        w = r.choices(vocab, cum_weights=cum, k=r.randint(40, 160))
        f.write('{"_id":"d%d","title":"%s","text":"%s"}\n' % (d, " ".join(w[:5]), " ".join(w[5:])))
