// Reading directories (manifest format 1 and 2), choosing the graph, and load errors that name the path;
// hand-written directories, no real model needed.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { Longformer2Vec, ModelLoadError } from "../src/index.js";
import { readManifest, selectGraph, sha256File, verifyGraph } from "../src/manifest.js";

const root = await mkdtemp(path.join(tmpdir(), "longformer2vec-manifest-"));
after(() => rm(root, { recursive: true, force: true }));

const GRAPH_BYTES = Buffer.from("not an onnx graph");
const GRAPH_SHA = createHash("sha256").update(GRAPH_BYTES).digest("hex");
const TOKENIZER = {
  version: "1.0",
  added_tokens: [
    { id: 0, content: "<s>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    { id: 1, content: "<pad>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    { id: 2, content: "</s>", single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
  ],
  normalizer: null,
  pre_tokenizer: { type: "Whitespace" },
  post_processor: { type: "RobertaProcessing", sep: ["</s>", 2], cls: ["<s>", 0], trim_offsets: true, add_prefix_space: false },
  decoder: null,
  model: { type: "WordLevel", vocab: { "<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, a: 4, b: 5 }, unk_token: "<unk>" },
};

let counter = 0;
/** A directory with `manifest` (object or raw string) and the given files. */
async function modelDir(manifest, files = {}) {
  const dir = path.join(root, `m${counter++}`);
  await mkdir(path.join(dir, "onnx"), { recursive: true });
  await writeFile(path.join(dir, "manifest.json"), typeof manifest === "string" ? manifest : JSON.stringify(manifest));
  for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, name), content);
  return dir;
}

const v1 = (extra = {}) => ({
  format_version: 1,
  model_id: "tiny",
  precision: "fp32",
  graph_file: "model.onnx",
  graph_sha256: GRAPH_SHA,
  max_length: 128,
  vector_length: 32,
  pad_multiple: 2,
  ...extra,
});
const graph = (precision, globalTokens, extra = {}) => ({
  file: `onnx/model${globalTokens ? "_global" : ""}${precision === "fp32" ? "" : `_${precision}`}.onnx`,
  precision,
  global_tokens: globalTokens,
  sha256: GRAPH_SHA,
  pad_multiple: 128,
  ...extra,
});
const v2 = (graphs, extra = {}) => ({
  format_version: 2,
  model_id: "tiny",
  vector_length: 32,
  max_length: 128,
  pad_token_id: 1,
  pooling: "mean",
  chunk_overlap: 16,
  tokenizer_file: "tokenizer.json",
  graphs,
  ...extra,
});

test("format 1: one top-level graph; without inputs it takes global tokens, like the Python runtime", async () => {
  const plain = await readManifest(await modelDir(v1({ inputs: ["input_ids", "attention_mask"] })));
  assert.equal(plain.formatVersion, 1);
  assert.equal(plain.chunkOverlap, 256);
  assert.equal(plain.padTokenId, 1);
  assert.equal(plain.pooling, "mean");
  assert.deepEqual(
    plain.graphs.map((g) => [g.file, g.precision, g.globalTokens, g.sha256, g.padMultiple]),
    [["model.onnx", "fp32", false, GRAPH_SHA, 2]],
  );
  const global = await readManifest(await modelDir(v1()));
  assert.equal(global.graphs[0].globalTokens, true);
  assert.ok(global.tokenizerPath.endsWith(`${path.sep}tokenizer.json`));
});

test("format 2: graphs, chunk_overlap and pad_multiple per graph", async () => {
  const manifest = await readManifest(await modelDir(v2([graph("fp32", false), graph("int8", true), graph("int8", false)])));
  assert.equal(manifest.formatVersion, 2);
  assert.equal(manifest.chunkOverlap, 16);
  assert.deepEqual(
    manifest.graphs.map((g) => [g.file, g.globalTokens, g.padMultiple]),
    [
      ["onnx/model.onnx", false, 128],
      ["onnx/model_global_int8.onnx", true, 128],
      ["onnx/model_int8.onnx", false, 128],
    ],
  );
});

test("graph choice: requested precision, else int8, fp32, fp16; a graph without global tokens first", async () => {
  const pick = async (graphs, precision) => selectGraph(await readManifest(await modelDir(v2(graphs))), precision).file;
  assert.equal(await pick([graph("fp32", false), graph("int8", true), graph("int8", false)]), "onnx/model_int8.onnx");
  assert.equal(await pick([graph("fp32", false), graph("int8", true)]), "onnx/model_global_int8.onnx");
  assert.equal(await pick([graph("fp16", false), graph("fp32", true)]), "onnx/model_global.onnx");
  assert.equal(await pick([graph("fp16", false)]), "onnx/model_fp16.onnx");
  assert.equal(await pick([graph("fp32", false), graph("int8", false)], "fp32"), "onnx/model.onnx");
  const dir = await modelDir(v2([graph("fp32", false), graph("int8", true)]));
  assert.throws(
    () => selectGraph(/** @type {any} */ ({ path: path.join(dir, "manifest.json"), graphs: [] }), "fp16"),
    (err) => err instanceof ModelLoadError && err.message.includes(path.join(dir, "manifest.json")),
  );
  await assert.rejects(Longformer2Vec.load(dir, { precision: "fp16" }), {
    name: "ModelLoadError",
    message: `${path.join(dir, "manifest.json")} has no fp16 graph (it holds: fp32, int8 (global tokens))`,
  });
});

/** Asserts that reading `dir` fails with a ModelLoadError whose message has every one of `parts`. */
async function rejectsNaming(promise, ...parts) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof ModelLoadError, `${err}`);
    for (const part of parts) assert.ok(err.message.includes(part), `"${err.message}" lacks "${part}"`);
    return true;
  });
}

test("a missing directory or manifest, or a bad one, is an error naming the path", async () => {
  const missing = path.join(root, "nope");
  await rejectsNaming(Longformer2Vec.load(missing), missing);
  const empty = path.join(root, "empty");
  await mkdir(empty);
  await rejectsNaming(Longformer2Vec.load(empty), path.join(empty, "manifest.json"), "is missing");
  const cases = [
    ["{not json", "Cannot parse"],
    ["[1, 2]", "must contain a JSON object"],
    [{ ...v1(), vector_length: undefined }, "lacks required keys: vector_length"],
    [v2([graph("fp32", false)], { graphs: undefined }), "lacks required keys: graphs"],
    [v1({ format_version: 3 }), "format_version 3"],
    [v2([]), "graphs must be a non-empty list"],
    [v2([graph("bf16", false)]), "graphs[0]: precision must be one of fp32, int8, fp16"],
    [v2([{ precision: "fp32" }]), "graphs[0]: file must be a non-empty string"],
    [v1({ max_length: "4096" }), "max_length must be an integer >= 2"],
    [v1({ vector_length: 0 }), "vector_length must be an integer >= 1"],
    [v1({ pooling: "max" }), "pooling must be one of mean, cls"],
    [v2([graph("fp32", false)], { chunk_overlap: -1 }), "chunk_overlap must be an integer >= 0"],
  ];
  for (const [manifest, reason] of cases) {
    const dir = await modelDir(manifest);
    await rejectsNaming(Longformer2Vec.load(dir), path.join(dir, "manifest.json"), reason);
  }
});

test("the chosen graph is verified: missing, without sha256, or corrupt (sha256 mismatch)", async () => {
  const absent = await modelDir(v1());
  await rejectsNaming(Longformer2Vec.load(absent), path.join(absent, "model.onnx"), "does not exist");
  const unhashed = await modelDir(v1({ graph_sha256: undefined }), { "model.onnx": GRAPH_BYTES });
  await rejectsNaming(Longformer2Vec.load(unhashed), path.join(unhashed, "manifest.json"), "no sha256 for model.onnx");
  const corrupt = await modelDir(v1(), { "model.onnx": Buffer.concat([GRAPH_BYTES, Buffer.of(0)]) });
  await rejectsNaming(Longformer2Vec.load(corrupt), "sha256 mismatch", path.join(corrupt, "model.onnx"), GRAPH_SHA);
  // Only the chosen graph is read: a corrupt int8 graph does not stop loading fp32 (which fails later, below).
  const graphs = [graph("fp32", false), graph("int8", false, { sha256: "0".repeat(64) })];
  const mixed = await modelDir(v2(graphs), { "onnx/model.onnx": GRAPH_BYTES, "onnx/model_int8.onnx": GRAPH_BYTES });
  await rejectsNaming(Longformer2Vec.load(mixed), "sha256 mismatch", path.join(mixed, "onnx", "model_int8.onnx"));
  await rejectsNaming(Longformer2Vec.load(mixed, { precision: "fp32" }), path.join(mixed, "tokenizer.json"));
});

test("sha256File streams the file and matches node:crypto on the whole buffer", async () => {
  const big = Buffer.alloc(3 * (1 << 20) + 17, 7);
  const dir = await modelDir(v1(), { "big.bin": big });
  assert.equal(await sha256File(path.join(dir, "big.bin")), createHash("sha256").update(big).digest("hex"));
  const ok = await readManifest(await modelDir(v1(), { "model.onnx": GRAPH_BYTES }));
  await verifyGraph(ok.graphs[0], ok.path);
});

test("a missing or broken tokenizer, or a graph ONNX Runtime cannot load, is an error naming the file", async () => {
  const files = { "model.onnx": GRAPH_BYTES };
  const noTokenizer = await modelDir(v1(), files);
  await rejectsNaming(Longformer2Vec.load(noTokenizer), path.join(noTokenizer, "tokenizer.json"));
  const badTokenizer = await modelDir(v1(), { ...files, "tokenizer.json": "{" });
  await rejectsNaming(Longformer2Vec.load(badTokenizer), path.join(badTokenizer, "tokenizer.json"));
  const badGraph = await modelDir(v1(), { ...files, "tokenizer.json": JSON.stringify(TOKENIZER) });
  await rejectsNaming(Longformer2Vec.load(badGraph), "Cannot load graph", path.join(badGraph, "model.onnx"));
});

test("options are checked before anything is read", async () => {
  await assert.rejects(Longformer2Vec.load(root, { pooling: "max" }), { name: "RangeError", message: /pooling must be one of mean, cls/ });
  await assert.rejects(Longformer2Vec.load(root, { precision: "bf16" }), { name: "RangeError" });
  await assert.rejects(Longformer2Vec.load(root, { chunkOverlap: 1.5 }), { name: "RangeError", message: /chunkOverlap/ });
  await assert.rejects(Longformer2Vec.load(root, { intraOpNumThreads: 0 }), { name: "RangeError" });
  await assert.rejects(Longformer2Vec.load(root, { normalize: "yes" }), { name: "TypeError" });
  await assert.rejects(Longformer2Vec.load(root, { chunk_overlap: 1 }), { name: "TypeError", message: /unknown option "chunk_overlap"/ });
  await assert.rejects(Longformer2Vec.load(42), { name: "TypeError", message: "dir must be a string, got number" });
  assert.throws(() => new Longformer2Vec(Symbol(), {}), TypeError);
});
