/**
 * Windowing, padding and combining rules of the exported-directory contract, as pure functions: the
 * same arithmetic as the Python runtime's `longformer2vec.common` (split_long, padded_width,
 * content windows, token-count-weighted mean, normalize), so each is testable without a model.
 */

/**
 * Split content ids into windows of `windowLength` tokens, consecutive windows sharing `overlap`
 * tokens; the last window ends at the last token. The overlap is clamped to `windowLength - 1` so the
 * stride is always positive.
 * @param {readonly number[]} ids
 * @param {number} windowLength
 * @param {number} overlap
 * @returns {number[][]}
 */
export function splitLong(ids, windowLength, overlap) {
  if (!Number.isInteger(windowLength) || windowLength < 1) {
    throw new RangeError(`windowLength must be an integer >= 1, got ${windowLength}`);
  }
  if (ids.length <= windowLength) return [ids.slice()];
  const stride = windowLength - Math.min(Math.max(overlap, 0), windowLength - 1);
  const windows = [];
  for (let start = 0; ; start += stride) {
    windows.push(ids.slice(start, start + windowLength));
    if (start + windowLength >= ids.length) return windows;
  }
}

/**
 * `n` rounded up to a multiple of `multiple` (values below 1 count as 1).
 * @param {number} n
 * @param {number} multiple
 */
export function roundUp(n, multiple) {
  const m = Math.max(1, multiple);
  return Math.ceil(n / m) * m;
}

/**
 * Width a row of `length` tokens is fed at: its length when it is no longer than one `padMultiple`
 * (the graph runs such an input unpadded), else rounded up to a multiple of `padMultiple`, but never
 * past `maxLength` (then its own length).
 * @param {number} length
 * @param {number} padMultiple
 * @param {number} maxLength
 */
export function rowWidth(length, padMultiple, maxLength) {
  const width = length <= padMultiple ? length : roundUp(length, padMultiple);
  return width <= maxLength ? width : length;
}

/**
 * The model rows of one tokenized text: the text itself when it fits in `maxLength` tokens, else
 * windows of its content (the tokens between `head` and `tail`, the post-processor's specials), each
 * wrapped in the same specials.
 * @param {{head: readonly number[], content: readonly number[], tail: readonly number[]}} tokens
 * @param {number} maxLength
 * @param {number} overlap
 * @returns {number[][]}
 */
export function textRows({ head, content, tail }, maxLength, overlap) {
  const specials = head.length + tail.length;
  if (specials + content.length <= maxLength) return [[...head, ...content, ...tail]];
  const windowLength = maxLength - specials;
  if (windowLength < 1) {
    throw new RangeError(`max_length ${maxLength} leaves no room next to ${specials} special tokens`);
  }
  return splitLong(content, windowLength, overlap).map((window) => [...head, ...window, ...tail]);
}

/**
 * A running token-count-weighted mean of row vectors, summed in float64.
 */
export class WeightedMean {
  /** @param {number} length */
  constructor(length) {
    this.sum = new Float64Array(length);
    this.weight = 0;
  }

  /**
   * @param {ArrayLike<number>} vector
   * @param {number} weight the row's token count (specials included)
   */
  add(vector, weight) {
    for (let i = 0; i < this.sum.length; i++) this.sum[i] += weight * vector[i];
    this.weight += weight;
  }

  /** @returns {Float32Array} */
  result() {
    return Float32Array.from(this.sum, (x) => x / this.weight);
  }
}

/**
 * L2-normalised copy of `vector`; a zero vector stays zero instead of becoming NaN.
 * @param {Float32Array} vector
 * @returns {Float32Array}
 */
export function l2Normalize(vector) {
  let squares = 0;
  for (const x of vector) squares += x * x;
  const norm = Math.sqrt(squares);
  return norm === 0 ? Float32Array.from(vector) : Float32Array.from(vector, (x) => x / norm);
}
