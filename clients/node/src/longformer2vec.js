/**
 * `Longformer2Vec`: text -> vector with an exported longformer2vec directory, computing what the Python
 * runtime computes (same graph choice, tokenization, windows, padding, pooling and combination).
 */

import ort from "onnxruntime-node";
import { ModelLoadError, POOLINGS, PRECISIONS, readManifest, selectGraph, verifyGraph } from "./manifest.js";
import { loadTokenizer } from "./tokenizer.js";
import { WeightedMean, l2Normalize, rowWidth, textRows } from "./windows.js";

const OPTION_NAMES = Object.freeze(["precision", "pooling", "normalize", "chunkOverlap", "intraOpNumThreads"]);
const OUTPUT_OF_POOLING = Object.freeze({ mean: "sentence_embedding", cls: "last_hidden_state" });
const FED_INPUTS = Object.freeze(["input_ids", "attention_mask", "global_attention_mask"]);
const CONSTRUCT = Symbol("Longformer2Vec.construct");

/** A UTF-16 surrogate that is not half of a pair (in a `u` regex a pair is one code point). */
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * Refuse what the Python runtime refuses: a non-string (TypeError) or a string with a lone surrogate,
 * which UTF-8 cannot encode (RangeError), naming `where` and the position.
 * @param {unknown} value
 * @param {string} where
 * @returns {asserts value is string}
 */
function checkText(value, where) {
  if (typeof value !== "string") throw new TypeError(`${where} must be a string, got ${typeName(value)}`);
  const lone = LONE_SURROGATE.exec(value);
  if (lone) {
    const code = lone[0].charCodeAt(0).toString(16);
    throw new RangeError(`${where} is not valid Unicode: lone surrogate \\u${code} at index ${lone.index}`);
  }
}

/** @param {unknown} value how an error names a value's type */
function typeName(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/**
 * @param {any} options what the caller passed
 * @returns {import("./index.js").LoadOptions}
 */
function checkOptions(options) {
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`options must be an object, got ${typeName(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!OPTION_NAMES.includes(key)) throw new TypeError(`unknown option "${key}"; known: ${OPTION_NAMES.join(", ")}`);
  }
  const { precision, pooling, normalize, chunkOverlap, intraOpNumThreads } = options;
  if (precision !== undefined && !PRECISIONS.includes(/** @type {string} */ (precision))) {
    throw new RangeError(`precision must be one of ${PRECISIONS.join(", ")}, got ${JSON.stringify(precision)}`);
  }
  if (pooling !== undefined && !POOLINGS.includes(/** @type {string} */ (pooling))) {
    throw new RangeError(`pooling must be one of ${POOLINGS.join(", ")}, got ${JSON.stringify(pooling)}`);
  }
  if (normalize !== undefined && typeof normalize !== "boolean") {
    throw new TypeError(`normalize must be a boolean, got ${typeName(normalize)}`);
  }
  for (const [name, value, minimum] of [
    ["chunkOverlap", chunkOverlap, 0],
    ["intraOpNumThreads", intraOpNumThreads, 1],
  ]) {
    if (value !== undefined && (!Number.isInteger(value) || /** @type {number} */ (value) < /** @type {number} */ (minimum))) {
      throw new RangeError(`${name} must be an integer >= ${minimum}, got ${JSON.stringify(value)}`);
    }
  }
  return /** @type {import("./index.js").LoadOptions} */ (options);
}

export class Longformer2Vec {
  /** @type {import("./manifest.js").Manifest} */ #manifest;
  /** @type {import("./manifest.js").GraphEntry} */ #graph;
  /** @type {import("./tokenizer.js").ContentTokenizer} */ #tokenizer;
  /** @type {ort.InferenceSession} */ #session;
  /** @type {string} */ #output;
  /** @type {boolean} */ #feedsGlobal;
  /** @type {string} */ #pooling;
  /** @type {boolean} */ #normalize;
  /** @type {number} */ #chunkOverlap;

  /**
   * Use {@link Longformer2Vec.load}.
   * @param {symbol} token
   * @param {any} parts
   */
  constructor(token, parts) {
    if (token !== CONSTRUCT) throw new TypeError("use `await Longformer2Vec.load(dir, options)`");
    this.#manifest = parts.manifest;
    this.#graph = parts.graph;
    this.#tokenizer = parts.tokenizer;
    this.#session = parts.session;
    this.#output = OUTPUT_OF_POOLING[/** @type {"mean" | "cls"} */ (parts.pooling)];
    this.#feedsGlobal = parts.session.inputNames.includes("global_attention_mask");
    this.#pooling = parts.pooling;
    this.#normalize = parts.normalize;
    this.#chunkOverlap = parts.chunkOverlap;
  }

  /**
   * Open an exported directory: read its manifest, pick and verify (sha256) a graph, load the tokenizer
   * and start an ONNX Runtime session on the CPU.
   * @param {string} dir
   * @param {import("./index.js").LoadOptions} [options]
   * @returns {Promise<Longformer2Vec>}
   */
  static async load(dir, options = {}) {
    if (typeof dir !== "string") throw new TypeError(`dir must be a string, got ${typeName(dir)}`);
    const { precision, pooling, normalize = false, chunkOverlap, intraOpNumThreads } = checkOptions(options);
    const manifest = await readManifest(dir);
    const graph = selectGraph(manifest, precision);
    await verifyGraph(graph, manifest.path);
    const tokenizer = await loadTokenizer(manifest.tokenizerPath);
    const chosenPooling = pooling ?? manifest.pooling;
    /** @type {ort.InferenceSession.SessionOptions} */
    const sessionOptions = {
      executionProviders: ["cpu"],
      // A graph that takes global tokens sizes its slots with TopK, a value that becomes a shape: ONNX
      // Runtime's memory pattern grew on repeated long calls of such graphs (the Python runtime turns it off too).
      enableMemPattern: !graph.globalTokens,
    };
    if (intraOpNumThreads !== undefined) sessionOptions.intraOpNumThreads = intraOpNumThreads;
    let session;
    try {
      session = await ort.InferenceSession.create(graph.path, sessionOptions);
    } catch (err) {
      throw new ModelLoadError(`Cannot load graph ${graph.path}: ${/** @type {Error} */ (err).message}`, { cause: err });
    }
    const needed = OUTPUT_OF_POOLING[/** @type {"mean" | "cls"} */ (chosenPooling)];
    const unknownInputs = session.inputNames.filter((name) => !FED_INPUTS.includes(name));
    if (!session.outputNames.includes(needed) || unknownInputs.length || !session.inputNames.includes("input_ids")) {
      await session.release();
      throw new ModelLoadError(
        `${graph.path} takes ${JSON.stringify(session.inputNames)} and returns ${JSON.stringify(session.outputNames)}; expected inputs among ${FED_INPUTS.join(", ")} and the output ${needed}`,
      );
    }
    return new Longformer2Vec(CONSTRUCT, {
      manifest,
      graph,
      tokenizer,
      session,
      pooling: chosenPooling,
      normalize,
      chunkOverlap: chunkOverlap ?? manifest.chunkOverlap,
    });
  }

  /** Length of every vector (the model's hidden size). */
  get vectorLength() {
    return this.#manifest.vectorLength;
  }

  /** Most tokens (specials included) one graph call takes; longer texts are embedded in windows. */
  get maxLength() {
    return this.#manifest.maxLength;
  }

  /** "mean" (over real tokens: the graph's sentence_embedding) or "cls" (the first token's hidden state). */
  get pooling() {
    return this.#pooling;
  }

  /** Whether vectors are L2-normalised. */
  get normalize() {
    return this.#normalize;
  }

  /** Tokens shared by consecutive windows of a text longer than {@link maxLength}. */
  get chunkOverlap() {
    return this.#chunkOverlap;
  }

  /** The model directory, as an absolute path. */
  get modelDir() {
    return this.#manifest.dir;
  }

  /** Precision of the graph in use: "fp32", "int8" or "fp16". */
  get precision() {
    return this.#graph.precision;
  }

  /** The graph file in use, as an absolute path. */
  get graphPath() {
    return this.#graph.path;
  }

  /**
   * Embed one text.
   * @param {string} text
   * @returns {Promise<Float32Array>}
   */
  async encode(text) {
    checkText(text, "text");
    return this.#embed(text);
  }

  /**
   * Embed many texts, in order; each vector equals what {@link encode} gives for that text.
   * @param {readonly string[]} texts
   * @returns {Promise<Float32Array[]>}
   */
  async bulkEncode(texts) {
    if (!Array.isArray(texts)) throw new TypeError(`texts must be an array of strings, got ${typeName(texts)}`);
    texts.forEach((text, i) => checkText(text, `texts[${i}]`));
    const vectors = [];
    for (const text of texts) vectors.push(await this.#embed(text));
    return vectors;
  }

  /** Free the ONNX Runtime session; the instance cannot encode afterwards. */
  async release() {
    await this.#session.release();
  }

  /**
   * @param {string} text
   * @returns {Promise<Float32Array>}
   */
  async #embed(text) {
    const rows = textRows(this.#tokenizer.tokenize(text), this.maxLength, this.chunkOverlap);
    if (rows[0].length === 0) {
      throw new Error(`"" gives no tokens: ${this.#manifest.tokenizerPath} has no post-processor adding special tokens`);
    }
    const mean = new WeightedMean(this.vectorLength);
    for (const ids of rows) mean.add(await this.#runRow(ids), ids.length);
    const vector = mean.result();
    return this.normalize ? l2Normalize(vector) : vector;
  }

  /**
   * One row in its own call (batch 1), right-padded to its contract width.
   * @param {readonly number[]} ids
   * @returns {Promise<Float32Array>}
   */
  async #runRow(ids) {
    const width = rowWidth(ids.length, this.#graph.padMultiple, this.maxLength);
    const inputIds = new BigInt64Array(width).fill(BigInt(this.#manifest.padTokenId));
    const attentionMask = new BigInt64Array(width);
    ids.forEach((id, i) => {
      inputIds[i] = BigInt(id);
      attentionMask[i] = 1n;
    });
    /** @type {Record<string, ort.Tensor>} */
    const feeds = {
      input_ids: new ort.Tensor("int64", inputIds, [1, width]),
      attention_mask: new ort.Tensor("int64", attentionMask, [1, width]),
    };
    if (this.#feedsGlobal) feeds.global_attention_mask = new ort.Tensor("int64", new BigInt64Array(width), [1, width]);
    const result = await this.#session.run(feeds, [this.#output]);
    const tensor = result[this.#output];
    const hidden = tensor.dims[tensor.dims.length - 1];
    if (tensor.type !== "float32" || hidden !== this.vectorLength) {
      throw new Error(
        `${this.#graph.path} returned ${tensor.type} ${this.#output} of shape [${tensor.dims.join(", ")}]; ${this.#manifest.path} says vectors of length ${this.vectorLength}`,
      );
    }
    // mean: [1, hidden]; cls: the first of [1, width, hidden]
    return /** @type {Float32Array} */ (tensor.data).slice(0, hidden);
  }
}
