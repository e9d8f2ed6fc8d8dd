/** Options of {@link Longformer2Vec.load}; every one defaults to what the directory's manifest says. */
export interface LoadOptions {
  /** Graph to run: "fp32", "int8" or "fp16". Default: int8 when the directory has it, else fp32, else fp16. */
  precision?: "fp32" | "int8" | "fp16";
  /** "mean" over real tokens (the graph's sentence_embedding) or "cls" (the first token). Default: the manifest's pooling. */
  pooling?: "mean" | "cls";
  /** L2-normalise every vector (a zero vector stays zero). Default: false. */
  normalize?: boolean;
  /** Tokens shared by consecutive windows of a text longer than maxLength. Default: the manifest's chunk_overlap (256 for format-1 directories). */
  chunkOverlap?: number;
  /** ONNX Runtime intra-op threads. Default: ONNX Runtime's. */
  intraOpNumThreads?: number;
}

/** Embeds text with an exported longformer2vec directory, giving the Python runtime's vectors. */
export declare class Longformer2Vec {
  private constructor(token: symbol, parts: unknown);
  /**
   * Open an exported directory: read manifest.json (format 1 or 2), pick the graph, check its sha256,
   * load tokenizer.json and start an ONNX Runtime CPU session.
   * @throws ModelLoadError naming the path when the directory, manifest, tokenizer or graph is unusable.
   */
  static load(dir: string, options?: LoadOptions): Promise<Longformer2Vec>;
  /** Length of every vector. */
  readonly vectorLength: number;
  /** Most tokens (specials included) one graph call takes; longer texts are embedded in overlapping windows. */
  readonly maxLength: number;
  readonly pooling: "mean" | "cls";
  readonly normalize: boolean;
  readonly chunkOverlap: number;
  /** Absolute path of the model directory. */
  readonly modelDir: string;
  /** Precision of the graph in use. */
  readonly precision: "fp32" | "int8" | "fp16";
  /** Absolute path of the graph in use. */
  readonly graphPath: string;
  /** Embed one text. @throws TypeError when text is not a string. */
  encode(text: string): Promise<Float32Array>;
  /** Embed many texts, in order; each vector equals encode's. @throws TypeError naming the first non-string (texts[i]). */
  bulkEncode(texts: readonly string[]): Promise<Float32Array[]>;
  /** Free the ONNX Runtime session. */
  release(): Promise<void>;
}

/** An exported directory that cannot be used; the message names the path. */
export declare class ModelLoadError extends Error {}
