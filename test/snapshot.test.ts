// The machine as data: a snapshot restores the exact state (fingerprint
// included), replaying the same transitions from it reaches the same state,
// and the incremental fingerprint is always the full hash of the memory.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { HASH_HI, HASH_LO, HEADER_WORDS, Memory } from "../src/machine/memory.js";
import { bootEngine, builtin, drive, scenario } from "./helpers.js";

/** 4 CPUs, 2 processes x 8 threads: syscalls, sleeps (timers) and yields. */
const pool = (seed: number) =>
  scenario(
    `name: pool-16
machine: { cpus: 4, tick_ns: 50000, timeslice_ns: 100000 }
processes:
  - name: pool
    count: 2
    threads: 8
    program:
      repeat: 30
      do:
        - syscall: 2000
        - compute: 5000
        - sleep: 3000
        - yield: true
`,
    { seed },
  );

const incremental = (m: Memory): [number, number] => [m.hashLo(), m.hashHi()];

describe("snapshot, restore and the state fingerprint", () => {
  test("restore + replaying the same transitions reaches the same hash and identical memory (4 CPUs, 16 tasks)", () => {
    const N = 1500;
    const M = 2500;
    const { k, e } = bootEngine(pool(11), "random", 11);
    assert.equal(k.params.cpus, 4);
    let userTasks = 0;
    for (let t = 1; t < k.L.task.count; t++) if (k.get(k.T.state, t) !== 0) userTasks++;
    assert.equal(userTasks, 16 + 4, "16 tasks and 4 idle tasks");

    // N transitions, then the snapshot.
    const { transitions, quiescent } = drive(e, {}, N);
    assert.equal(transitions, N);
    assert.ok(!quiescent, "the run is longer than N transitions");
    const snap = k.mem.snapshot();
    const snapHash = k.mem.hashHex();
    const clocks = e.clock.slice();

    // M more, one by one, recording each transition and the hash after it.
    const taken: number[] = [];
    const hashes: string[] = [];
    for (let i = 0; i < M; i++) {
      const tr = e.sched.next(e);
      assert.ok(tr >= 0, "still running");
      taken.push(tr);
      e.exec(tr);
      hashes.push(k.mem.hashHex());
    }
    const finalHash = k.mem.hashHex();
    const finalMem = k.mem.snapshot();
    assert.notEqual(finalHash, snapHash, "the run moved on from the snapshot");
    assert.ok(!k.mem.equals(snap));

    // Back to the snapshot: same words, same fingerprint.
    k.mem.restore(snap);
    e.clock.set(clocks);
    assert.ok(k.mem.equals(snap));
    assert.equal(k.mem.hashHex(), snapHash);
    assert.deepEqual(incremental(k.mem), k.mem.fullHash());

    // The same transitions again: the same hash at every step and the same final memory.
    for (let i = 0; i < taken.length; i++) {
      e.exec(taken[i]);
      assert.equal(k.mem.hashHex(), hashes[i], `hash after replayed transition ${i}`);
    }
    assert.equal(k.mem.hashHex(), finalHash);
    assert.ok(k.mem.equals(finalMem), "identical memory after the replay");
  });

  test("the incremental fingerprint equals the full hash after every step (sim and random)", () => {
    for (const sched of ["sim", "random"] as const) {
      const { k, e } = bootEngine(builtin("process-lifecycle", { seed: 2 }), sched, 2);
      assert.deepEqual(incremental(k.mem), k.mem.fullHash(), "after boot");
      let steps = 0;
      drive(
        e,
        {
          after: (s) => {
            steps++;
            const full = k.mem.fullHash();
            if (k.mem.hashLo() !== full[0] || k.mem.hashHi() !== full[1]) {
              assert.fail(
                `${sched}: fingerprint differs from the full hash after transition ${s.i} (${s.name})`,
              );
            }
          },
        },
        5000,
      );
      assert.ok(steps > 500, `${sched}: only ${steps} steps checked`);
    }
  });

  test("restoring a snapshot of another machine layout throws and leaves the memory alone", () => {
    const small = bootEngine(pool(1)).k;
    const other = bootEngine(
      scenario(
        "name: other\nmachine: { cpus: 2 }\nprocesses:\n  - name: p\n    program: [ { compute: 1 } ]\n",
      ),
    ).k;
    assert.notEqual(small.mem.size, other.mem.size);
    const before = small.mem.snapshot();
    assert.throws(() => small.mem.restore(other.mem.snapshot()), RangeError);
    assert.ok(small.mem.equals(before));
    assert.equal(small.mem.equals(other.mem.snapshot()), false, "equals() of another layout is false");
  });

  test("changing one word changes the hash; changing it back restores it", () => {
    const { k } = bootEngine(pool(1));
    const mem = k.mem;
    const h0 = mem.hashHex();
    const addr = k.L.task.addr(5) + k.T.ticks.off;
    const old = mem.read(addr);
    mem.write(addr, old + 1);
    assert.notEqual(mem.hashHex(), h0);
    assert.deepEqual(incremental(mem), mem.fullHash());
    mem.write(addr, old);
    assert.equal(mem.hashHex(), h0);
    // Writing the same value is no change at all.
    mem.write(addr, old);
    assert.equal(mem.hashHex(), h0);
  });

  describe("properties (fast-check)", () => {
    const SIZE = 48;
    const write = fc.record({ addr: fc.integer({ min: HEADER_WORDS, max: SIZE - 1 }), v: fc.integer() });
    const writes = fc.array(write, { maxLength: 200 });

    test("for any sequence of writes, the incremental hash equals fullHash after each one", () => {
      fc.assert(
        fc.property(writes, (ws) => {
          const m = new Memory(SIZE);
          for (const { addr, v } of ws) {
            m.write(addr, v);
            assert.deepEqual(incremental(m), m.fullHash());
          }
        }),
      );
    });

    test("the hash depends only on the contents, not on the order of the writes", () => {
      fc.assert(
        fc.property(writes, (ws) => {
          const a = new Memory(SIZE);
          for (const { addr, v } of ws) a.write(addr, v);
          // Rebuild the same contents directly, highest address first.
          const b = new Memory(SIZE);
          for (let addr = SIZE - 1; addr >= HEADER_WORDS; addr--) b.write(addr, a.read(addr));
          assert.equal(b.hashHex(), a.hashHex());
          // Undo every write: back to the empty memory's hash.
          for (let addr = HEADER_WORDS; addr < SIZE; addr++) a.write(addr, 0);
          assert.equal(a.hashHex(), new Memory(SIZE).hashHex());
        }),
      );
    });

    test("any change of a single word changes the fingerprint", () => {
      fc.assert(
        fc.property(writes, write, (ws, w) => {
          const m = new Memory(SIZE);
          for (const { addr, v } of ws) m.write(addr, v);
          fc.pre(m.read(w.addr) !== w.v);
          const lo = m.words[HASH_LO];
          const hi = m.words[HASH_HI];
          m.write(w.addr, w.v);
          assert.ok(m.words[HASH_LO] !== lo || m.words[HASH_HI] !== hi);
        }),
      );
    });

    test("snapshot, more writes, restore: back to the snapshot's words and hash", () => {
      fc.assert(
        fc.property(writes, writes, (before, after) => {
          const m = new Memory(SIZE);
          for (const { addr, v } of before) m.write(addr, v);
          const snap = m.snapshot();
          const h = m.hashHex();
          for (const { addr, v } of after) m.write(addr, v);
          m.restore(snap);
          assert.ok(m.equals(snap));
          assert.equal(m.hashHex(), h);
          assert.deepEqual(incremental(m), m.fullHash());
        }),
      );
    });
  });
});

describe("the undo journal (check's backtracking)", () => {
  test("undo to a mark gives back exactly the memory and fingerprint of that moment, at any depth", () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.tuple(fc.integer({ min: 2, max: 63 }), fc.integer()), { maxLength: 20 }), {
          minLength: 1,
          maxLength: 8,
        }),
        (levels) => {
          const m = new Memory(64);
          m.startJournal();
          const saved: { mark: number; lo: number; hi: number; words: Int32Array }[] = [];
          for (const writes of levels) {
            saved.push({ mark: m.mark(), lo: m.words[0], hi: m.words[1], words: m.snapshot() });
            for (const [a, v] of writes) m.write(a, v);
          }
          for (let i = saved.length - 1; i >= 0; i--) {
            const s = saved[i];
            m.undo(s.mark, s.lo, s.hi);
            assert.ok(m.equals(s.words), `level ${i}`);
            const [lo, hi] = m.fullHash();
            assert.deepEqual([m.hashLo(), m.hashHi()], [lo, hi]);
          }
        },
      ),
    );
  });
});
