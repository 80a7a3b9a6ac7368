// frameLocals: a path's locals by name, packed into the frame's two words
// exactly as the hand-written shifts and masks did.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Kernel } from "../src/kernel/kernel.js";
import { frameLocals } from "../src/kernel/path.js";
import { FR_A0, FR_A1 } from "../src/machine/state.js";

function fakeKernel(): Kernel {
  const w = new Int32Array(8);
  const write = (a: number, v: number): void => {
    w[a] = v;
  };
  return { w, mem: { write } } as unknown as Kernel;
}

const L = frameLocals({ dev: [0, 0, 8], priv: [0, 8, 1], fd: [0, 16, 16], file: [1], count: [1, 2, 30] });

test("bit fields: put, of, get and set agree with the shifts and masks", () => {
  assert.equal(L.dev.put(3) | L.priv.put(1), 3 | (1 << 8));
  const k = fakeKernel();
  const fr = 2;
  k.mem.write(fr + FR_A0, 5 | (1 << 8));
  L.fd.set(k, fr, 7);
  assert.equal(k.w[fr + FR_A0], 5 | (1 << 8) | (7 << 16));
  assert.equal(L.dev.get(k, fr), 5);
  assert.equal(L.priv.get(k, fr), 1);
  assert.equal(L.fd.get(k, fr), 7);
  assert.equal(L.fd.of(k.w[fr + FR_A0]), 7);
});

test("a whole word is signed and written as given; overlapping fields share it", () => {
  const k = fakeKernel();
  L.file.set(k, 0, -1);
  assert.equal(L.file.get(k, 0), -1);
  assert.equal(k.w[FR_A1], -1);
  L.file.set(k, 0, (9 << 2) | 1);
  L.count.set(k, 0, 8);
  assert.equal(k.w[FR_A1], (8 << 2) | 1);
  assert.equal(L.count.get(k, 0), 8);
});

test("a field outside the word is refused", () => {
  assert.throws(() => frameLocals({ x: [0, 30, 4] }), /bits/);
  assert.throws(() => frameLocals({ x: [2 as 0] }), /word/);
});
