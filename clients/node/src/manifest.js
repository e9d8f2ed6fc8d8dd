/**
 * Reading an exported model directory: `manifest.json` (format_version 2, and the single-graph
 * format 1), the choice of graph, and the graph's sha256 check. Every failure names the path.
 */

import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";

export const MANIFEST_FILE = "manifest.json";
export const PRECISIONS = Object.freeze(["fp32", "int8", "fp16"]);
/** Without a requested precision: int8 (the CPU's fastest) when the directory has it, else this order. */
export const DEFAULT_PRECISION_ORDER = Object.freeze(["int8", "fp32", "fp16"]);
export const POOLINGS = Object.freeze(["mean", "cls"]);
/** Tokens shared by consecutive windows when a format-1 manifest does not say (the Python runtime's default). */
export const DEFAULT_CHUNK_OVERLAP = 256;

const INPUT_IDS = "input_ids";
const ATTENTION_MASK = "attention_mask";
const GLOBAL_ATTENTION_MASK = "global_attention_mask";

/** A model directory that cannot be used: missing, unreadable, inconsistent or corrupt. */
export class ModelLoadError extends Error {
  /** @param {string} message @param {ErrorOptions} [options] */
  constructor(message, options) {
    super(message, options);
    this.name = "ModelLoadError";
  }
}

/**
 * @typedef {object} GraphEntry
 * @property {string} file path relative to the directory
 * @property {string} path absolute path
 * @property {string} precision "fp32" | "int8" | "fp16"
 * @property {boolean} globalTokens whether the graph also takes global_attention_mask
 * @property {string | null} sha256
 * @property {string[]} inputs
 * @property {string[]} outputs
 * @property {number} padMultiple
 */

/**
 * @typedef {object} Manifest
 * @property {string} path the manifest file
 * @property {string} dir the model directory
 * @property {number} formatVersion
 * @property {string} modelId
 * @property {number} maxLength longest row the graph takes, specials included
 * @property {number} vectorLength
 * @property {number} padTokenId
 * @property {string} pooling
 * @property {number} chunkOverlap
 * @property {string} tokenizerPath
 * @property {GraphEntry[]} graphs
 */

/**
 * @param {unknown} value
 * @returns {value is Record<string, unknown>}
 */
function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * @param {unknown} value @param {string} key @param {string} where @param {number} minimum
 * @returns {number}
 */
function integer(value, key, where, minimum) {
  if (!Number.isInteger(value) || /** @type {number} */ (value) < minimum) {
    throw new ModelLoadError(`${where}: ${key} must be an integer >= ${minimum}, got ${JSON.stringify(value)}`);
  }
  return /** @type {number} */ (value);
}

/** @param {unknown} value @param {string} key @param {string} where @returns {string} */
function text(value, key, where) {
  if (typeof value !== "string" || value === "") {
    throw new ModelLoadError(`${where}: ${key} must be a non-empty string, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** @param {unknown} value @param {string} key @param {string} where @returns {string[]} */
function names(value, key, where) {
  if (!Array.isArray(value) || !value.every((x) => typeof x === "string")) {
    throw new ModelLoadError(`${where}: ${key} must be a list of names, got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * One graph entry, from a format-2 `graphs` item or format 1's top-level keys.
 * @param {Record<string, unknown>} raw @param {string} dir @param {string} where
 * @returns {GraphEntry}
 */
function graphEntry(raw, dir, where) {
  const file = text(raw.file, "file", where);
  const precision = text(raw.precision, "precision", where);
  if (!PRECISIONS.includes(precision)) {
    throw new ModelLoadError(`${where}: precision must be one of ${PRECISIONS.join(", ")}, got "${precision}"`);
  }
  const declaredGlobal = raw.global_tokens;
  if (declaredGlobal !== undefined && typeof declaredGlobal !== "boolean") {
    throw new ModelLoadError(`${where}: global_tokens must be true or false, got ${JSON.stringify(declaredGlobal)}`);
  }
  let inputs;
  if (raw.inputs === undefined || raw.inputs === null) {
    inputs = declaredGlobal === false ? [INPUT_IDS, ATTENTION_MASK] : [INPUT_IDS, ATTENTION_MASK, GLOBAL_ATTENTION_MASK];
  } else {
    inputs = names(raw.inputs, "inputs", where);
  }
  const outputs = raw.outputs === undefined ? ["last_hidden_state", "sentence_embedding"] : names(raw.outputs, "outputs", where);
  const sha256 = raw.sha256 === undefined || raw.sha256 === null ? null : text(raw.sha256, "sha256", where);
  const padMultiple = raw.pad_multiple === undefined || raw.pad_multiple === null ? 1 : integer(raw.pad_multiple, "pad_multiple", where, 0);
  return {
    file,
    path: path.resolve(dir, file),
    precision,
    globalTokens: declaredGlobal ?? inputs.includes(GLOBAL_ATTENTION_MASK),
    sha256,
    inputs,
    outputs,
    padMultiple: Math.max(1, padMultiple),
  };
}

/**
 * Read and check `DIR/manifest.json` (format 1 or 2).
 * @param {string} dir
 * @returns {Promise<Manifest>}
 */
export async function readManifest(dir) {
  const modelDir = path.resolve(dir);
  const info = await stat(modelDir).catch(() => null);
  if (!info?.isDirectory()) throw new ModelLoadError(`Model directory not found: ${modelDir}`);
  const manifestPath = path.join(modelDir, MANIFEST_FILE);
  let source;
  try {
    source = await readFile(manifestPath, "utf8");
  } catch (err) {
    const reason = /** @type {NodeJS.ErrnoException} */ (err).code === "ENOENT" ? "is missing" : `cannot be read (${err})`;
    throw new ModelLoadError(`${manifestPath} ${reason}; ${modelDir} is not an exported longformer2vec model`, { cause: err });
  }
  let data;
  try {
    data = JSON.parse(source);
  } catch (err) {
    throw new ModelLoadError(`Cannot parse ${manifestPath}: ${/** @type {Error} */ (err).message}`, { cause: err });
  }
  if (!isObject(data)) throw new ModelLoadError(`${manifestPath} must contain a JSON object`);
  const version = data.format_version;
  const required = ["format_version", "model_id", "max_length", "vector_length", version === 2 ? "graphs" : "graph_file"];
  const missing = required.filter((key) => !(key in data));
  if (missing.length) throw new ModelLoadError(`${manifestPath} lacks required keys: ${missing.join(", ")}`);
  if (version !== 1 && version !== 2) {
    throw new ModelLoadError(
      `${manifestPath} has format_version ${JSON.stringify(version)}; this client reads 1 and 2: update longformer2vec or export the model again`,
    );
  }
  let graphs;
  if (version === 1) {
    graphs = [
      graphEntry(
        { ...data, file: data.graph_file, sha256: data.graph_sha256, global_tokens: undefined },
        modelDir,
        manifestPath,
      ),
    ];
  } else {
    if (!Array.isArray(data.graphs) || data.graphs.length === 0) {
      throw new ModelLoadError(`${manifestPath}: graphs must be a non-empty list, got ${JSON.stringify(data.graphs)}`);
    }
    graphs = data.graphs.map((/** @type {unknown} */ entry, /** @type {number} */ i) => {
      const where = `${manifestPath} graphs[${i}]`;
      if (!isObject(entry)) throw new ModelLoadError(`${where} must be an object`);
      return graphEntry(entry, modelDir, where);
    });
  }
  const pooling = data.pooling ?? "mean";
  if (typeof pooling !== "string" || !POOLINGS.includes(pooling)) {
    throw new ModelLoadError(`${manifestPath}: pooling must be one of ${POOLINGS.join(", ")}, got ${JSON.stringify(pooling)}`);
  }
  return {
    path: manifestPath,
    dir: modelDir,
    formatVersion: version,
    modelId: String(data.model_id),
    maxLength: integer(data.max_length, "max_length", manifestPath, 2),
    vectorLength: integer(data.vector_length, "vector_length", manifestPath, 1),
    padTokenId: integer(data.pad_token_id ?? 1, "pad_token_id", manifestPath, 0),
    pooling,
    chunkOverlap: integer(data.chunk_overlap ?? DEFAULT_CHUNK_OVERLAP, "chunk_overlap", manifestPath, 0),
    tokenizerPath: path.resolve(modelDir, text(data.tokenizer_file ?? "tokenizer.json", "tokenizer_file", manifestPath)),
    graphs,
  };
}

/** @param {GraphEntry} graph */
function graphName(graph) {
  return graph.precision + (graph.globalTokens ? " (global tokens)" : "");
}

/**
 * The graph to run: the requested precision, else int8, fp32, fp16 in that order, each preferring a graph
 * without global tokens (this client never sets global attention; a graph that takes it is fed zeros).
 * @param {Manifest} manifest
 * @param {string} [precision]
 * @returns {GraphEntry}
 */
export function selectGraph(manifest, precision) {
  const order = precision === undefined ? DEFAULT_PRECISION_ORDER : [precision];
  for (const wanted of order) {
    const candidates = manifest.graphs.filter((g) => g.precision === wanted);
    const chosen = candidates.find((g) => !g.globalTokens) ?? candidates[0];
    if (chosen) return chosen;
  }
  throw new ModelLoadError(
    `${manifest.path} has no ${order.join(", ")} graph (it holds: ${manifest.graphs.map(graphName).join(", ")})`,
  );
}

/**
 * Hex sha256 of a file, read as a stream (graphs can be hundreds of MB).
 * @param {string} file
 * @returns {Promise<string>}
 */
export async function sha256File(file) {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk);
  return hash.digest("hex");
}

/**
 * Refuse a graph file that is missing or whose sha256 differs from the manifest's.
 * @param {GraphEntry} graph
 * @param {string} manifestPath
 */
export async function verifyGraph(graph, manifestPath) {
  const info = await stat(graph.path).catch(() => null);
  if (!info?.isFile()) throw new ModelLoadError(`graph file ${graph.path} listed in ${manifestPath} does not exist`);
  if (!graph.sha256) throw new ModelLoadError(`${manifestPath} has no sha256 for ${graph.file}`);
  const actual = await sha256File(graph.path);
  if (actual !== graph.sha256.toLowerCase()) {
    throw new ModelLoadError(
      `sha256 mismatch for ${graph.path}: manifest says ${graph.sha256}, file is ${actual} (corrupt or partially written; export the model again)`,
    );
  }
}
