// Vectors against the Python runtime's, on real exports. The Python suite (tests/clients/test_node_client.py)
// exports tiny models, writes the goldens and runs this with LONGFORMER2VEC_NODE_GOLDENS (the goldens'
// JSON) and LONGFORMER2VEC_NODE_MODEL_DIR (an fp32 export); without them these tests are skipped.
import assert from "node:assert/strict";
import { appendFile, cp, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { Longformer2Vec } from "../src/index.js";
import { loadTokenizer } from "../src/tokenizer.js";

const GOLDENS = process.env.LONGFORMER2VEC_NODE_GOLDENS;
const MODEL_DIR = process.env.LONGFORMER2VEC_NODE_MODEL_DIR;
const skip = GOLDENS && MODEL_DIR ? false : "set LONGFORMER2VEC_NODE_GOLDENS and LONGFORMER2VEC_NODE_MODEL_DIR (tests/clients/test_node_client.py does)";
const goldens = skip ? { tokenizers: [], texts: [], cases: [] } : JSON.parse(await readFile(GOLDENS, "utf8"));

/** @param {ArrayLike<number>} a @param {ArrayLike<number>} b */
function compare(a, b) {
  let maxAbs = 0;
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(a[i] - b[i]));
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  const cosine = na === 0 && nb === 0 ? 1 : dot / Math.sqrt(na * nb);
  return { maxAbs, cosine };
}

test("token ids equal the Python tokenizer's", { skip }, async (t) => {
  const tokenizer = await loadTokenizer(path.join(MODEL_DIR, "tokenizer.json"));
  for (const { name, text, ids } of goldens.texts) {
    const { head, content, tail } = tokenizer.tokenize(text);
    assert.deepEqual([...head, ...content, ...tail], ids, name);
    t.diagnostic(`${name}: ${ids.length} tokens`);
  }
  assert.ok(goldens.texts.length > 0);
});

test("token ids equal Python's on other tokenizers (WordPiece, template post-processor)", { skip }, async (t) => {
  assert.ok(goldens.tokenizers.length > 0);
  for (const { file, texts, ids } of goldens.tokenizers) {
    const tokenizer = await loadTokenizer(file);
    texts.forEach((text, i) => {
      const { head, content, tail } = tokenizer.tokenize(text);
      assert.deepEqual([...head, ...content, ...tail], ids[i], `${file}: ${JSON.stringify(text)}`);
    });
    t.diagnostic(`${file}: ${texts.length} texts, ${ids.flat().length} tokens, specials ${JSON.stringify(tokenizer.head)} ... ${JSON.stringify(tokenizer.tail)}`);
  }
});

for (const goldenCase of goldens.cases) {
  test(`vectors equal the Python runtime's: ${goldenCase.name}`, { skip }, async (t) => {
    const model = await Longformer2Vec.load(goldenCase.dir, goldenCase.options);
    after(() => model.release());
    const { max_abs: maxAbsLimit, min_cosine: minCosine } = goldenCase.tolerance;
    const texts = goldens.texts.map((x) => x.text);
    const vectors = [];
    for (const [i, text] of texts.entries()) {
      const vector = await model.encode(text);
      assert.ok(vector instanceof Float32Array);
      assert.equal(vector.length, model.vectorLength);
      const { maxAbs, cosine } = compare(vector, goldenCase.vectors[i]);
      t.diagnostic(`${goldens.texts[i].name}: max abs ${maxAbs.toExponential(2)}, cosine ${cosine.toFixed(9)}`);
      if (maxAbsLimit !== undefined) assert.ok(maxAbs <= maxAbsLimit, `${goldens.texts[i].name}: max abs ${maxAbs} > ${maxAbsLimit}`);
      if (minCosine !== undefined) assert.ok(cosine >= minCosine, `${goldens.texts[i].name}: cosine ${cosine} < ${minCosine}`);
      vectors.push(vector);
    }
    const bulk = await model.bulkEncode(texts);
    assert.equal(bulk.length, texts.length);
    let worst = 0;
    bulk.forEach((vector, i) => (worst = Math.max(worst, compare(vector, vectors[i]).maxAbs)));
    t.diagnostic(`bulkEncode vs encode: max abs ${worst.toExponential(2)}`);
    assert.ok(worst <= 1e-6, `bulkEncode differs from encode by ${worst}`);
  });
}

test("model facts come from the manifest", { skip }, async () => {
  const manifest = JSON.parse(await readFile(path.join(MODEL_DIR, "manifest.json"), "utf8"));
  const model = await Longformer2Vec.load(MODEL_DIR, { normalize: true, intraOpNumThreads: 1 });
  after(() => model.release());
  assert.equal(model.vectorLength, manifest.vector_length);
  assert.equal(model.maxLength, manifest.max_length);
  assert.equal(model.modelDir, path.resolve(MODEL_DIR));
  assert.equal(model.normalize, true);
  assert.equal(model.chunkOverlap, manifest.chunk_overlap ?? 256);
  const norm = Math.hypot(...(await model.encode("a normalised vector")));
  assert.ok(Math.abs(norm - 1) < 1e-6, `norm ${norm}`);
});

test("a non-string text is a TypeError, a lone surrogate a RangeError, naming its index", { skip }, async () => {
  const model = await Longformer2Vec.load(MODEL_DIR);
  after(() => model.release());
  await assert.rejects(model.bulkEncode(["a", "b", 3]), { name: "TypeError", message: "texts[2] must be a string, got number" });
  await assert.rejects(model.bulkEncode([null]), { name: "TypeError", message: "texts[0] must be a string, got null" });
  await assert.rejects(model.bulkEncode("a"), { name: "TypeError", message: "texts must be an array of strings, got string" });
  await assert.rejects(model.encode(["a"]), { name: "TypeError", message: "text must be a string, got array" });
  await assert.rejects(model.encode(undefined), { name: "TypeError", message: "text must be a string, got undefined" });
  await assert.rejects(model.bulkEncode(["ok", "a\udc00b"]), {
    name: "RangeError",
    message: "texts[1] is not valid Unicode: lone surrogate \\udc00 at index 1",
  });
  await assert.rejects(model.encode("\ud83d"), { name: "RangeError", message: /lone surrogate \\ud83d at index 0/ });
  assert.equal((await model.encode("\ud83d\ude00")).length, model.vectorLength, "a surrogate pair is one character");
  assert.deepEqual(await model.bulkEncode([]), []);
});

test("a corrupt copy of a real export is refused, naming the graph", { skip }, async () => {
  const copy = await mkdtemp(path.join(tmpdir(), "longformer2vec-corrupt-"));
  after(() => rm(copy, { recursive: true, force: true }));
  await cp(MODEL_DIR, copy, { recursive: true });
  const manifest = JSON.parse(await readFile(path.join(copy, "manifest.json"), "utf8"));
  const graph = path.join(copy, manifest.graph_file ?? manifest.graphs[0].file);
  const options = manifest.graphs ? { precision: manifest.graphs[0].precision } : {};
  await appendFile(graph, Buffer.of(0));
  await assert.rejects(Longformer2Vec.load(copy, options), (err) => err.name === "ModelLoadError" && err.message.includes(`sha256 mismatch for ${graph}`));
});
