// The PASID allocator (src/kernel/ida.ts): the kernel's IDA as
// ida_alloc_range(&iommu_global_pasid_ida, 1, max_pasids - 1) uses it. Lowest
// free ID in the range, never cyclic; failures change nothing; the bitmap and
// its summaries live in the machine memory and keep its fingerprint right.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  type Ida,
  ida_alloc_range,
  ida_check,
  ida_count,
  ida_exists,
  ida_free,
  ida_words,
} from "../src/kernel/ida.js";
import { HEADER_WORDS, Memory } from "../src/machine/memory.js";

function fresh(bits: number): { mem: Memory; ida: Ida } {
  return { mem: new Memory(HEADER_WORDS + ida_words(bits)), ida: { base: HEADER_WORDS, bits } };
}

function assertHashed(mem: Memory): void {
  assert.deepEqual([mem.hashLo(), mem.hashHi()], mem.fullHash());
}

/** The reference: a Set of used IDs, lowest free found by a scan from min. */
class NaiveIda {
  readonly used = new Set<number>();
  constructor(readonly bits: number) {}

  alloc(min: number, max: number): number {
    for (let id = min; id <= Math.min(max, 2 ** this.bits - 1); id++) {
      if (!this.used.has(id)) {
        this.used.add(id);
        return id;
      }
    }
    return -1;
  }

  free(id: number): boolean {
    return this.used.delete(id);
  }
}

describe("ida: PASID allocator", () => {
  test("words: 32768 + 1024 + 32 + 1 for 2^20 IDs (<= 256 KiB), at least one word per level", () => {
    assert.equal(ida_words(20), 32768 + 1024 + 32 + 1);
    assert.ok(ida_words(20) * 4 <= 256 * 1024);
    assert.equal(ida_words(1), 4);
    assert.equal(ida_words(5), 4);
    assert.equal(ida_words(6), 1 + 2 + 1 + 1);
    assert.throws(() => ida_words(0), RangeError);
    assert.throws(() => ida_words(21), RangeError);
  });

  test("lowest free first: alloc 1, 2, 3; free 2; the next alloc is 2, then 4", () => {
    const { mem, ida } = fresh(8);
    assert.deepEqual(
      [1, 2, 3].map(() => ida_alloc_range(mem, ida, 1, 255)),
      [1, 2, 3],
    );
    assert.equal(ida_free(mem, ida, 2), true);
    assert.equal(ida_exists(mem, ida, 2), false);
    assert.equal(ida_alloc_range(mem, ida, 1, 255), 2);
    assert.equal(ida_alloc_range(mem, ida, 1, 255), 4);
    assert.equal(ida_check(mem, ida), null);
  });

  test("range limits: never below min or above max, with max not a multiple of 32", () => {
    const { mem, ida } = fresh(10);
    assert.equal(ida_alloc_range(mem, ida, 40, 70), 40);
    for (let id = 41; id <= 70; id++) assert.equal(ida_alloc_range(mem, ida, 40, 70), id);
    assert.equal(ida_alloc_range(mem, ida, 40, 70), -1, "70 is the last one, though 71.. are free");
    assert.equal(ida_alloc_range(mem, ida, 0, 1023), 0, "below 40 was free all along");
    assert.equal(ida_alloc_range(mem, ida, 33, 33), 33);
    assert.equal(ida_alloc_range(mem, ida, 5, 4), -1, "min > max");
    assert.equal(ida_alloc_range(mem, ida, 1024, 5000), -1, "min beyond the IDA");
    assert.equal(ida_alloc_range(mem, ida, 1000, 5000), 1000, "max beyond the IDA is clamped");
    assert.equal(ida_count(mem, ida), 31 + 3);
    assert.equal(ida_check(mem, ida), null);
    assert.equal(ida_alloc_range(mem, ida, -1, 3), -1, "negative min: the kernel's -ENOSPC");
    assert.equal(ida_alloc_range(mem, ida, 0, -1), -1, "negative max");
    assert.equal(ida_count(mem, ida), 31 + 3);
    assert.throws(() => ida_alloc_range(mem, ida, 1.5, 3), RangeError);
    assert.throws(() => ida_alloc_range(mem, ida, 1, Number.NaN), RangeError);
  });

  test("bits = 2 gives 1, 2, 3 from min 1 and then nothing: no ID at or above 2^bits exists", () => {
    const { mem, ida } = fresh(2);
    const got = [1, 2, 3, 4].map(() => ida_alloc_range(mem, ida, 1, 1000));
    assert.deepEqual(got, [1, 2, 3, -1]);
    assert.equal(ida_exists(mem, ida, 4), false);
    assert.equal(ida_free(mem, ida, 4), false);
    assert.equal(ida_alloc_range(mem, ida, 0, 1000), 0);
    assert.equal(ida_alloc_range(mem, ida, 0, 1000), -1);
    // Layout: count, the L0 word, the L1 word: its bit 0 says the 4-bit L0 word is full.
    assert.deepEqual(Array.from(mem.words.subarray(HEADER_WORDS, HEADER_WORDS + 3)), [4, 0b1111, 1]);
    assert.equal(ida_check(mem, ida), null);
    assert.equal(ida_free(mem, ida, 2), true);
    assert.equal(mem.words[HEADER_WORDS + 2], 0, "no longer full");
    assert.equal(ida_alloc_range(mem, ida, 1, 3), 2);
  });

  test("exhaustion returns -1 and changes nothing in memory", () => {
    const { mem, ida } = fresh(6);
    for (let id = 1; id <= 63; id++) assert.equal(ida_alloc_range(mem, ida, 1, 63), id);
    const snap = mem.snapshot();
    assert.equal(ida_alloc_range(mem, ida, 1, 63), -1);
    assert.equal(ida_alloc_range(mem, ida, 10, 20), -1);
    assert.ok(mem.equals(snap));
  });

  test("double free returns false and changes nothing; so does freeing what never existed", () => {
    const { mem, ida } = fresh(8);
    const id = ida_alloc_range(mem, ida, 1, 255);
    assert.equal(ida_free(mem, ida, id), true);
    const snap = mem.snapshot();
    for (const bad of [id, 7, 0, 256, -1, 2.5]) assert.equal(ida_free(mem, ida, bad), false, `free(${bad})`);
    assert.ok(mem.equals(snap));
  });

  test("count follows allocs and frees", () => {
    const { mem, ida } = fresh(7);
    assert.equal(ida_count(mem, ida), 0);
    for (let i = 0; i < 100; i++) ida_alloc_range(mem, ida, 1, 127);
    assert.equal(ida_count(mem, ida), 100);
    for (let id = 1; id <= 100; id += 2) ida_free(mem, ida, id);
    assert.equal(ida_count(mem, ida), 50);
    ida_free(mem, ida, 1);
    assert.equal(ida_count(mem, ida), 50, "a double free does not count");
  });

  test("the full 20-bit space: all of 1..2^20-1 in order, then -1; a freed middle one comes back", () => {
    const { mem, ida } = fresh(20);
    const max = 2 ** 20 - 1;
    let wrong = 0;
    for (let id = 1; id <= max; id++) if (ida_alloc_range(mem, ida, 1, max) !== id) wrong++;
    assert.equal(wrong, 0);
    assert.equal(ida_count(mem, ida), max);
    const snap = mem.snapshot();
    assert.equal(ida_alloc_range(mem, ida, 1, max), -1);
    assert.ok(mem.equals(snap));
    assert.equal(ida_free(mem, ida, 524_321), true);
    assert.equal(ida_alloc_range(mem, ida, 1, max), 524_321);
    assert.equal(ida_alloc_range(mem, ida, 1, max), -1);
    assert.equal(ida_check(mem, ida), null);
    assertHashed(mem);
  });

  test("the full 20-bit space freed in a scattered order: summaries stay exact, allocation refills in order", () => {
    const { mem, ida } = fresh(20);
    const max = 2 ** 20 - 1;
    for (let id = 1; id <= max; id++) ida_alloc_range(mem, ida, 1, max);
    const freed = [max, 1, 1023, 1024, 32_767, 32_768, 600_000, 1_000_003];
    for (const id of freed) assert.equal(ida_free(mem, ida, id), true);
    assert.equal(ida_check(mem, ida), null);
    assert.equal(ida_alloc_range(mem, ida, 2, max), 1023, "min 2 skips the free 1");
    assert.equal(ida_alloc_range(mem, ida, 32_769, 999_999), 600_000);
    assert.equal(ida_alloc_range(mem, ida, 1_000_004, max), max);
    assert.equal(ida_alloc_range(mem, ida, 1_000_004, max), -1);
    for (const id of [1, 1024, 32_767, 32_768, 1_000_003])
      assert.equal(ida_alloc_range(mem, ida, 1, max), id);
    assert.equal(ida_check(mem, ida), null);
    assertHashed(mem);
  });

  test("the incremental fingerprint equals fullHash() after allocs and frees", () => {
    const { mem, ida } = fresh(12);
    for (let i = 0; i < 3000; i++) ida_alloc_range(mem, ida, 1, 4095);
    for (let id = 1; id < 3000; id += 3) ida_free(mem, ida, id);
    for (let i = 0; i < 500; i++) ida_alloc_range(mem, ida, 100, 2000);
    assertHashed(mem);
  });

  test("property: any sequence of alloc_range(min, max) and free agrees with a sorted-Set reference", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("alloc" as const), min: fc.nat(300), span: fc.nat(300) }),
      fc.record({ kind: fc.constant("free" as const), id: fc.nat(300) }),
      // Fill a range completely, so that words and summaries become full.
      fc.record({ kind: fc.constant("fill" as const), min: fc.nat(300), span: fc.nat(300) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(op, { maxLength: 60 }), (bits, ops) => {
        const { mem, ida } = fresh(bits);
        const ref = new NaiveIda(bits);
        for (const o of ops) {
          if (o.kind === "free") {
            assert.equal(ida_free(mem, ida, o.id), ref.free(o.id), `free(${o.id})`);
            continue;
          }
          const rounds = o.kind === "fill" ? 2 ** bits + 1 : 1;
          for (let r = 0; r < rounds; r++) {
            const want = ref.alloc(o.min, o.min + o.span);
            assert.equal(
              ida_alloc_range(mem, ida, o.min, o.min + o.span),
              want,
              `alloc(${o.min}, +${o.span})`,
            );
            if (want < 0) break;
          }
        }
        assert.equal(ida_count(mem, ida), ref.used.size);
        for (let id = 0; id < 2 ** bits; id++) assert.equal(ida_exists(mem, ida, id), ref.used.has(id));
        assert.equal(ida_check(mem, ida), null);
        assertHashed(mem);
      }),
      { numRuns: 300 },
    );
  });

  test("property: the same over 11..16 bits, where L1 and L2 have several words", () => {
    const op = fc.oneof(
      // Small fills make L1 words full; large ones (> 32768 IDs) whole L2 words.
      fc.record({
        kind: fc.constant("fill" as const),
        min: fc.nat(70_000),
        span: fc.oneof(fc.nat(3000), fc.nat(70_000)),
      }),
      fc.record({ kind: fc.constant("free" as const), id: fc.nat(70_000), n: fc.nat(40) }),
      fc.record({ kind: fc.constant("alloc" as const), min: fc.nat(70_000), span: fc.nat(70_000) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 11, max: 16 }), fc.array(op, { maxLength: 30 }), (bits, ops) => {
        const { mem, ida } = fresh(bits);
        const ref = new NaiveIda(bits);
        for (const o of ops) {
          if (o.kind === "free") {
            for (let id = o.id; id <= o.id + o.n; id++) assert.equal(ida_free(mem, ida, id), ref.free(id));
          } else if (o.kind === "alloc") {
            assert.equal(ida_alloc_range(mem, ida, o.min, o.min + o.span), ref.alloc(o.min, o.min + o.span));
          } else {
            // Both fill [min, min + span]: the reference directly, the IDA one allocation at a time.
            const max = Math.min(o.min + o.span, 2 ** bits - 1);
            const want: number[] = [];
            for (let id = o.min; id <= max; id++) if (!ref.used.has(id)) want.push(id);
            for (const id of want) ref.used.add(id);
            const got: number[] = [];
            for (
              let id = ida_alloc_range(mem, ida, o.min, max);
              id >= 0;
              id = ida_alloc_range(mem, ida, o.min, max)
            ) {
              got.push(id);
            }
            assert.deepEqual(got, want);
          }
        }
        assert.equal(ida_count(mem, ida), ref.used.size);
        assert.equal(ida_check(mem, ida), null);
        assertHashed(mem);
      }),
      { numRuns: 60 },
    );
  });
});
