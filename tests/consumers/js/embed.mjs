// transformers.js loading an exported longformer2vec directory as its docs load a local model:
// env.localModelPath = the folder that holds it, env.allowRemoteModels = false, the model named by
// its folder name. Run by tests/clients/test_consumers.py. Reads {"dir", "texts", "dtype"?} on stdin, writes
// {"vectors": [...]} on stdout.
import path from "node:path";
import { env, pipeline } from "@huggingface/transformers";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString("utf8"));

env.localModelPath = path.dirname(path.resolve(request.dir));
env.allowRemoteModels = false;

const options = request.dtype ? { dtype: request.dtype } : {};
const extractor = await pipeline("feature-extraction", path.basename(request.dir), options);
const output = await extractor(request.texts, { pooling: "mean" });
process.stdout.write(JSON.stringify({ vectors: output.tolist() }));
