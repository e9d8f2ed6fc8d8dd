/**
 * The directory's `tokenizer.json`, read with @huggingface/tokenizers, and the special tokens its
 * post-processor wraps every text in (`<s> ... </s>` for Longformer). Windowing needs the content
 * between those specials; a special token typed inside the text is content, as in the Python runtime.
 */

import { readFile } from "node:fs/promises";
import { Tokenizer } from "@huggingface/tokenizers";
import { ModelLoadError } from "./manifest.js";

const CONTENT_MARKER = "\u0000longformer2vec content\u0000";
const PROBE_TEXT = "Probe text, 42.";

/**
 * @typedef {object} TextTokens
 * @property {number[]} head special ids the post-processor puts before the content
 * @property {number[]} content the text's own ids
 * @property {number[]} tail special ids the post-processor puts after the content
 */

/** Tokenizes a text into the post-processor's specials and the content between them. */
export class ContentTokenizer {
  /**
   * @param {Tokenizer} tokenizer
   * @param {string} file where it came from, for errors
   */
  constructor(tokenizer, file) {
    this.tokenizer = tokenizer;
    const { head, tail } = specialsOf(tokenizer, file);
    /** @type {readonly number[]} */
    this.head = head;
    /** @type {readonly number[]} */
    this.tail = tail;
    const probe = this.tokenize(PROBE_TEXT);
    const expected = tokenizer.encode(PROBE_TEXT).ids;
    const wrapped = [...probe.head, ...probe.content, ...probe.tail];
    if (wrapped.length !== expected.length || wrapped.some((id, i) => id !== expected[i])) {
      throw new ModelLoadError(
        `${file}: its post-processor does not wrap the text in fixed special tokens (got ${JSON.stringify(expected)} for a probe, expected ${JSON.stringify(wrapped)})`,
      );
    }
  }

  /**
   * @param {string} text
   * @returns {TextTokens}
   */
  tokenize(text) {
    const content = this.tokenizer.encode(text, { add_special_tokens: false }).ids;
    return { head: [...this.head], content, tail: [...this.tail] };
  }
}

/**
 * Ids the post-processor adds before and after a single text: it is run on a marker token, and what
 * lands on either side of the marker is the head and the tail.
 * @param {Tokenizer} tokenizer
 * @param {string} file
 */
function specialsOf(tokenizer, file) {
  const processor = tokenizer.post_processor;
  if (!processor) return { head: [], tail: [] };
  const { tokens } = processor.post_process([CONTENT_MARKER], null, true);
  const at = tokens.indexOf(CONTENT_MARKER);
  if (at < 0 || tokens.lastIndexOf(CONTENT_MARKER) !== at) {
    throw new ModelLoadError(`${file}: cannot tell the special tokens its post-processor adds (got ${JSON.stringify(tokens)})`);
  }
  /** @param {string} token */
  const toId = (token) => {
    const id = tokenizer.token_to_id(token);
    if (id === undefined) throw new ModelLoadError(`${file}: post-processor token ${JSON.stringify(token)} is not in the vocabulary`);
    return id;
  };
  return { head: tokens.slice(0, at).map(toId), tail: tokens.slice(at + 1).map(toId) };
}

/**
 * Load `tokenizer.json` (padding and truncation in it are ignored: the client owns both).
 * @param {string} file
 * @returns {Promise<ContentTokenizer>}
 */
export async function loadTokenizer(file) {
  let source;
  try {
    source = await readFile(file, "utf8");
  } catch (err) {
    throw new ModelLoadError(`tokenizer file ${file} cannot be read: ${/** @type {Error} */ (err).message}`, { cause: err });
  }
  let tokenizer;
  try {
    tokenizer = new Tokenizer(JSON.parse(source), {});
  } catch (err) {
    throw new ModelLoadError(`Cannot load tokenizer ${file}: ${/** @type {Error} */ (err).message}`, { cause: err });
  }
  return new ContentTokenizer(tokenizer, file);
}
