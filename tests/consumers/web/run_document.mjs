// Runs a longformer2vec document graph (onnx/model_document*.onnx) on token ids with ONNX Runtime's own
// JavaScript API and nothing of longformer2vec: what a JavaScript user writes. Driven by
// tests/test_document_graph.py.
//   node run_document.mjs BINDING GRAPH IDS_JSON
// BINDING: "web" (onnxruntime-web, wasm backend, from this folder) or a path to onnxruntime-node's folder.
// IDS_JSON: a file holding a list of id lists. Prints {"vectors": [[...], ...]} to stdout.
import { readFileSync } from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const [binding, graph, idsFile] = process.argv.slice(2);
const texts = JSON.parse(readFileSync(idsFile, "utf8"));
let ort;
let session;
if (binding === "web") {
  ort = await import("onnxruntime-web");
  ort.env.wasm.numThreads = 1;
  // onnxruntime-web reads no files itself: the graph, and the encoder file its weights point into
  // (external data), are handed over as bytes. The manifest names that file.
  const manifest = JSON.parse(readFileSync(path.join(path.dirname(graph), "..", "manifest.json"), "utf8"));
  const entry = manifest.document_graphs.find((g) => path.basename(g.file) === path.basename(graph));
  const externalData = entry.weights_file
    ? [{ path: path.basename(entry.weights_file), data: readFileSync(path.join(path.dirname(graph), "..", entry.weights_file)) }]
    : [];
  session = await ort.InferenceSession.create(readFileSync(graph), { executionProviders: ["wasm"], externalData });
} else {
  ort = createRequire(import.meta.url)(binding);
  session = await ort.InferenceSession.create(graph);  // external data is read beside the graph
}
const vectors = [];
for (const ids of texts) {
  const input = new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [1, ids.length]);
  const out = await session.run({ input_ids: input });
  vectors.push(Array.from(out.document_embedding.data));
}
console.log(JSON.stringify({ inputs: session.inputNames, vectors }));
