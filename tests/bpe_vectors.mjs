// bpe_vectors.mjs -- writes tests/data/bpe/*.jsonl, the BPE test vectors,
// from independent implementations: js-tiktoken (cl100k_base, o200k_base)
// and the Hugging Face transformers.js tokenizer loading the local Qwen3
// tokenizer.json offline. Run once by hand, not in CI; the output is
// committed and tests/test_bpe.c compares plumb's ids against it.
//
//   cd /tmp && npm install --ignore-scripts js-tiktoken @huggingface/transformers
//   node tests/bpe_vectors.mjs [../shared/data]
//
// The packages are resolved from $BPE_NODE_MODULES (default
// /tmp/node_modules), so nothing is installed in the tree. Used here:
// js-tiktoken 1.0.21, @huggingface/transformers 4.3.1 (--ignore-scripts:
// its onnxruntime download is not needed for tokenizers).
//
// Each output line: {"text": ..., "special": true|false, "ids": [...]}, or
// for a SciFact passage {"scifact_id", "special", "ntokens", "ids_hash"}.
// "special" says whether special tokens in the text were allowed. The
// Qwen3 reference always recognises added tokens, so its lines all say
// true. Random strings are drawn from a fixed seed and avoid U+0085 and
// U+FEFF, the two characters on which JavaScript's \s differs from the
// Unicode White_Space that the real tokenizers (Rust regex, Oniguruma) and
// plumb use; and they use only characters assigned before Unicode 13, so
// that utf8proc and V8 agree on every general category.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const shared = path.resolve(process.argv[2] || path.join(here, '..', '..', 'shared', 'data'));
const nm = process.env.BPE_NODE_MODULES || '/tmp/node_modules';
const require = createRequire(path.join(nm, 'x.js'));
const { getEncoding } = require('js-tiktoken');
const tf = await import(pathToFileURL(require.resolve('@huggingface/transformers')).href);
// BPE_OUT and BPE_RANDOM allow a larger one-off cross-check outside the tree.
const outDir = process.env.BPE_OUT || path.join(here, 'data', 'bpe');
const nRandom = Number(process.env.BPE_RANDOM || 2500);
fs.mkdirSync(outDir, { recursive: true });

// --- deterministic PRNG (mulberry32) ---
let seed = 20261124;
function rnd() {
  seed |= 0; seed = (seed + 0x6D2B79F5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rnd() * a.length)];
const range = (lo, hi) => String.fromCodePoint(lo + Math.floor(rnd() * (hi - lo + 1)));

// --- fragments for random strings ---
const words = ['the', 'The', 'THE', 'retrieval', 'Hello', 'world', 'HTMLParser', 'iPhone',
  'naïve', 'café', 'Zürich', 'straße', 'ǅungla', 'ʰello', 'don', 'we', 'I', 'x', 'a', 'ABC',
  'protein', 'p53', 'COVID-19', 'résumé', 'Ω', 'µm', 'İstanbul', 'ǈ'];
const gens = [
  () => pick(words), () => pick(words), () => pick(words),
  () => ' ', () => ' ', () => '  ', () => '\t', () => '\n', () => '\r\n', () => '\n\n', () => '   ',
  () => pick(["'s", "'S", "'t", "'re", "'RE", "'ve", "'m", "'ll", "'LL", "'Ll", "'d", "'D", "'x", "'"]),
  () => range(0x30, 0x39).repeat(1 + Math.floor(rnd() * 6)),
  () => pick(['.', ',', '!', '?', '...', '--', '/', '//', '(', ')', '[', ']', '{', '}', '"', '#',
    '$', '%', '&', '*', '+', '<', '>', '=', '@', '\\', '^', '_', '`', '|', '~', ';', ':', '-']),
  () => range(0x21, 0x7e), () => range(0x61, 0x7a), () => range(0x41, 0x5a),
  () => range(0xc0, 0xff), () => range(0x300, 0x36f), () => 'e\u0301', () => 'A\u030a',
  () => range(0x391, 0x3c9), () => range(0x410, 0x44f),
  () => range(0x5d0, 0x5ea), () => range(0x627, 0x64a) + range(0x64b, 0x652),
  () => range(0x905, 0x939) + range(0x93e, 0x94c), () => range(0x660, 0x669),
  () => range(0x4e00, 0x9fa5), () => range(0x3041, 0x3096), () => range(0x30a1, 0x30fa),
  () => range(0xac00, 0xd7a3), () => range(0xff10, 0xff19), () => range(0xff21, 0xff3a),
  () => range(0x1f600, 0x1f64f), () => range(0x1f300, 0x1f5ff), () => '\u{1f468}\u200d\u{1f469}\u200d\u{1f467}',
  () => '\u{1f44d}\u{1f3fd}', () => '\u2764\ufe0f', () => pick(['\u00a0', '\u2003', '\u3000', '\u2028', '\u2009', '\u202f', '\u000b', '\u000c']),
  () => pick(['\u00b2', '\u00bd', '\u2163', '\u216b', '\u2460']), () => pick(['\u01c5', '\u1f88', '\u02b0', '\u02c6', '\u3005']),
  () => range(0x2200, 0x22ff), () => range(0x2190, 0x21ff), () => pick(['\u200b', '\u200e', '\u200f', '\u00ad']),
];

function randomString() {
  const n = 1 + Math.floor(rnd() * 24);
  let s = '';
  for (let i = 0; i < n; i++) s += pick(gens)();
  return s;
}

// --- hand-picked cases ---
const hand = [
  '', ' ', 'a', 'Hello, world!', 'hello world', 'Hello world  ', 'a   b', 'a  \n  b', '\n', '\n\n\n',
  '  \n', ' \n ', '\t\tindented\n', 'trailing spaces   ', 'trailing tab\t', '\r\n\r\n', 'x\r\ny',
  "I'm sure you're right, we'll see; it's theirs, isn't it? I'D SAY THEY'LL AND WE'VE",
  "She said 'hello' and 'S 'T 'Re 'lL", "rock'n'roll", "''s", "' s", "'ſ",
  '12345678901234567890', '3.14159265358979', '1,000,000', '2026-11-24T06:45:12Z', '0x1F600',
  '١٢٣٤٥', '１２３４５', '²³ ½ Ⅻ',
  '!!!???...', '<<<>>>', '---', '...\n\n', ' !!!\n\n', 'a/b//c///', 'http://example.com/a/b?c=d&e=f#g',
  '中文的句子，没有空格。', 'こんにちは世界', '안녕하세요 세계', 'Привет, мир!', 'Γειά σου Κόσμε',
  'مرحبا بالعالم', 'שלום עולם', 'नमस्ते दुनिया', 'ภาษาไทย', 'e\u0301t\u00e9', 'Zu\u0308rich',
  '\u0301\u0301abc', ' \u0301x', 'A\u0301B', '\u{1f468}\u200d\u{1f469}\u200d\u{1f467} family',
  '😀😃😄 emoji 🎉', 'naïve café', 'ǅungla ǈ', 'HTMLParser iPhone McDonald', 'ABCdef ABC Abc aBC',
  'CamelCaseWordsHere', "HE'S", "the cat's", 'x\u00a0y', 'x\u3000y', 'x\u2003\u2003y', 'x\u2028y',
  '<|endoftext|>', 'a<|endoftext|>b', 'hello <|endoftext|> world', '<|endoftext|><|endoftext|>',
  '<|fim_prefix|>x<|fim_middle|>y<|fim_suffix|>', '<|endofprompt|>', '<|im_start|>user\nhi<|im_end|>',
  '<think>\nhmm\n</think>', '<tool_call>{"a":1}</tool_call>', '<|endoftext', '<|unknown|>',
  'a'.repeat(3000), ' '.repeat(500), '\n'.repeat(100), '1'.repeat(200), '!'.repeat(300),
  'ab'.repeat(1000), 'Ab'.repeat(700), '\u4e00'.repeat(300), '😀'.repeat(100), ' x'.repeat(400),
  'AAAA'.repeat(200), 'é'.repeat(300), '\t'.repeat(100) + 'x',
];
// a long base64-ish run and a long mixed line
{
  let b = '';
  for (let i = 0; i < 2000; i++) b += pick('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
  hand.push(b);
  let c = '';
  for (let i = 0; i < 3000; i++) c += pick('aAbB');
  hand.push(c);
}

// A few real SciFact passages (title, blank line, text). The shared data
// must not be copied into the repository, so their lines carry the
// document id, the token count and an FNV-1a hash of the ids instead of
// the text and ids; test_bpe reads the passages from $PLUMB_SHARED_DATA.
const passages = [];
const corpus = path.join(shared, 'beir', 'scifact', 'corpus.jsonl');
if (fs.existsSync(corpus)) {
  const lines = fs.readFileSync(corpus, 'utf8').split('\n');
  const take = (d) => passages.push({ id: d._id, text: d.title + '\n\n' + d.text });
  for (const i of [0, 1, 2, 3, 7, 100, 1000, 2500, 4000, 5100]) if (lines[i]) take(JSON.parse(lines[i]));
  let k = 0; // passages with non-ASCII text
  for (const l of lines) {
    if (!l || !/[^\x00-\x7f]/.test(l)) continue;
    take(JSON.parse(l));
    if (++k >= 10) break;
  }
} else {
  console.error(`no ${corpus}: writing vectors without SciFact passages`);
}
function idsHash(ids) { // FNV-1a style over 32-bit ids, as test_bpe.c computes it
  let h = 1469598103934665603n;
  for (const id of ids) h = ((h ^ BigInt(id)) * 1099511628211n) & 0xffffffffffffffffn;
  return h.toString(16).padStart(16, '0');
}
const passageLine = (p, ids) => ({ scifact_id: p.id, special: true, ntokens: ids.length, ids_hash: idsHash(ids) });

const randoms = [];
for (let i = 0; i < nRandom; i++) randoms.push(randomString());
for (const s of randoms) if (/[\u0085\ufeff]/.test(s)) throw new Error('bad char');

function write(name, lines) {
  const f = path.join(outDir, name + '.jsonl');
  fs.writeFileSync(f, lines.map((o) => JSON.stringify(o)).join('\n') + '\n');
  console.log(`${f}: ${lines.length} vectors`);
}

const all = [...hand, ...randoms];
for (const enc of ['cl100k_base', 'o200k_base']) {
  const e = getEncoding(enc);
  const lines = [];
  for (const text of all) {
    lines.push({ text, special: true, ids: Array.from(e.encode(text, 'all')) });
    if (text.includes('<|')) lines.push({ text, special: false, ids: Array.from(e.encode(text, [], [])) });
  }
  for (const p of passages) lines.push(passageLine(p, Array.from(e.encode(p.text, 'all'))));
  write(enc, lines);
}

{
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qwen3tok-'));
  fs.copyFileSync(path.join(shared, 'tokenizers', 'qwen3-tokenizer.json'), path.join(dir, 'tokenizer.json'));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ tokenizer_class: 'Qwen2Tokenizer' }));
  tf.env.allowRemoteModels = false;
  tf.env.localModelPath = path.dirname(dir) + '/';
  const tok = await tf.AutoTokenizer.from_pretrained(path.basename(dir));
  const lines = [];
  for (const text of all) lines.push({ text, special: true, ids: Array.from(tok.encode(text, { add_special_tokens: false })) });
  for (const p of passages) lines.push(passageLine(p, Array.from(tok.encode(p.text, { add_special_tokens: false }))));
  write('qwen3', lines);
  fs.rmSync(dir, { recursive: true });
}
