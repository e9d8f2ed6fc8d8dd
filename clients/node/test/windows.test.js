// The contract's windowing, padding and combining arithmetic (the Python runtime's common.py), no model.
import assert from "node:assert/strict";
import { test } from "node:test";
import { WeightedMean, l2Normalize, roundUp, rowWidth, splitLong, textRows } from "../src/windows.js";

const range = (n) => Array.from({ length: n }, (_, i) => i);

test("splitLong: windows start at 0, stride, 2*stride... and the last ends at the last token", () => {
  // Python: split_long(list(range(10)), 4, 1) -> [[0,1,2,3],[3,4,5,6],[6,7,8,9]]
  assert.deepEqual(splitLong(range(10), 4, 1), [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]);
  // split_long(list(range(11)), 4, 1): the last window is shorter
  assert.deepEqual(splitLong(range(11), 4, 1), [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9], [9, 10]]);
  assert.deepEqual(splitLong(range(6), 3, 0), [[0, 1, 2], [3, 4, 5]]);
  assert.deepEqual(splitLong(range(3), 3, 2), [[0, 1, 2]]);
  assert.deepEqual(splitLong([], 3, 2), [[]]);
});

test("splitLong: the overlap is clamped to window - 1 (stride 1)", () => {
  assert.deepEqual(splitLong(range(5), 3, 256), [[0, 1, 2], [1, 2, 3], [2, 3, 4]]);
  assert.throws(() => splitLong(range(5), 0, 0), RangeError);
});

test("rowWidth: unpadded up to one multiple, else rounded up, never past max_length", () => {
  assert.equal(roundUp(129, 128), 256);
  assert.equal(roundUp(5, 0), 5);
  assert.equal(rowWidth(14, 128, 4096), 14);
  assert.equal(rowWidth(128, 128, 4096), 128);
  assert.equal(rowWidth(129, 128, 4096), 256);
  assert.equal(rowWidth(4000, 128, 4096), 4096);
  assert.equal(rowWidth(4000, 512, 4000), 4000); // 4096 would pass max_length: the row's own length
  assert.equal(rowWidth(7, 2, 128), 8);
  assert.equal(rowWidth(127, 2, 127), 127);
});

test("textRows: a text that fits is one row; a longer one is windows wrapped in the same specials", () => {
  const tokens = { head: [0], content: [5, 6, 7], tail: [2] };
  assert.deepEqual(textRows(tokens, 5, 1), [[0, 5, 6, 7, 2]]);
  assert.deepEqual(textRows(tokens, 4, 1), [[0, 5, 6, 2], [0, 6, 7, 2]]);
  assert.deepEqual(textRows({ head: [0], content: [], tail: [2] }, 4, 1), [[0, 2]]);
  assert.deepEqual(textRows({ head: [], content: [1, 2, 3], tail: [] }, 2, 0), [[1, 2], [3]]);
  assert.throws(() => textRows({ head: [0, 0], content: [1, 2, 3], tail: [2, 2] }, 4, 0), /leaves no room next to 4 special tokens/);
});

test("WeightedMean: token-count weights, float64 sums, float32 result", () => {
  const mean = new WeightedMean(2);
  mean.add(Float32Array.of(1, 0), 3);
  mean.add(Float32Array.of(0, 1), 1);
  assert.deepEqual(mean.result(), Float32Array.of(0.75, 0.25));
  const single = new WeightedMean(3);
  const vector = Float32Array.of(0.1, -2.5e-8, 3.3333333);
  single.add(vector, 7);
  assert.deepEqual(single.result(), vector, "one row gives its own vector, bit for bit");
});

test("l2Normalize: unit length, zero vectors stay zero", () => {
  assert.deepEqual(l2Normalize(Float32Array.of(3, 4)), Float32Array.of(0.6, 0.8));
  assert.deepEqual(l2Normalize(new Float32Array(3)), new Float32Array(3));
});
