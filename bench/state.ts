// Snapshot, hash and restore of the machine state: the operations an
// explorer does at every visited state. Measured on a small machine (4 CPUs,
// one process of 16 threads) that has run for a while, so the state is not
// the boot image. Next to them, a naive JSON snapshot of the same words, to
// show what the flat Int32Array with its incremental fingerprint saves.

import { Engine } from "../src/engine/engine.js";
import { CORE_INVARIANTS } from "../src/engine/invariants.js";
import { SimScheduler } from "../src/engine/sim.js";
import { boot } from "../src/kernel/boot.js";
import type { Kernel } from "../src/kernel/kernel.js";
import { compileScenario } from "../src/scenario/compile.js";
import { loadScenarioString } from "../src/scenario/load.js";
import { type OpOptions, type OpTiming, timeOp } from "./timing.js";

export const SMALL_MACHINE_YAML = `# bench: the machine snapshot, hash and restore are measured on
name: bench-state
seed: 1
machine: { cpus: 4 }
processes:
  - name: worker
    count: 1
    threads: 16
    program:
      repeat: 1000
      do:
        - compute: 20000
        - syscall: 1000
        - sleep: 5000
        - yield: true
`;

/** <= 1 µs per snapshot + hash on the 4-CPU / 16-task machine (the performance issue's target). */
export const TARGET_SNAPSHOT_HASH_NS = 1000;

/** Steps the small machine runs before it is measured. */
export const WARM_STEPS = 20_000;

export interface StateOp {
  key: string;
  label: string;
  timing: OpTiming;
  /** ns per operation this one is measured against, if any. */
  target?: number;
}

export interface StateResult {
  cpus: number;
  tasks: number;
  /** Task slots the state holds (idle tasks and room for forks included). */
  task_slots: number;
  /** Steps run before measuring. */
  steps: number;
  words: number;
  bytes: number;
  /** Length of the naive JSON snapshot, in UTF-16 code units (= bytes: it is ASCII). */
  json_bytes: number;
  ops: StateOp[];
}

export function bootSmallMachine(): { k: Kernel; tasks: number } {
  const cs = compileScenario(loadScenarioString(SMALL_MACHINE_YAML, "bench-state.yaml"));
  const k = boot(cs.boot);
  const e = new Engine(k, CORE_INVARIANTS, new SimScheduler(cs.seed));
  e.run({ maxSteps: WARM_STEPS, maxCycles: Number.MAX_SAFE_INTEGER });
  return { k, tasks: cs.boot.procs.reduce((n, p) => n + p.count * p.threads, 0) };
}

/** A string hash over the JSON text (FNV-1a, 32 bits): what a naive explorer would key its visited set by. */
function stringHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

export function measureState(opts: OpOptions, slowOpts: OpOptions): StateResult {
  const { k, tasks } = bootSmallMachine();
  const mem = k.mem;
  const buf = new Int32Array(mem.size);
  mem.snapshot(buf);
  const saved = buf.slice(); // the measured state, put back after each operation that changes memory
  const json = JSON.stringify(Array.from(mem.words));

  const ops: StateOp[] = [];
  const add = (key: string, label: string, batch: (n: number) => number, o: OpOptions, target?: number) => {
    mem.restore(saved);
    ops.push({ key, label, timing: timeOp(batch, o), target });
    mem.restore(saved);
  };

  add(
    "snapshot",
    "snapshot (copy into preallocated Int32Array)",
    (n) => {
      for (let i = 0; i < n; i++) mem.snapshot(buf);
      return buf[buf.length - 1];
    },
    opts,
  );
  add(
    "hash",
    "hash read (hashLo + hashHi)",
    (n) => {
      let x = 0;
      for (let i = 0; i < n; i++) x = (x + mem.hashLo() + mem.hashHi()) | 0;
      return x;
    },
    opts,
  );
  add(
    "snapshot_hash",
    "snapshot + hash",
    (n) => {
      let x = 0;
      for (let i = 0; i < n; i++) {
        mem.snapshot(buf);
        x = (x + mem.hashLo() + mem.hashHi()) | 0;
      }
      return x;
    },
    opts,
    TARGET_SNAPSHOT_HASH_NS,
  );
  add(
    "restore",
    "restore (copy back from the snapshot)",
    (n) => {
      for (let i = 0; i < n; i++) mem.restore(saved);
      return mem.hashLo();
    },
    opts,
  );
  add(
    "full_hash",
    "fullHash() (fingerprint from scratch)",
    (n) => {
      let x = 0;
      for (let i = 0; i < n; i++) x = (x + mem.fullHash()[0]) | 0;
      return x;
    },
    slowOpts,
  );
  add(
    "json_snapshot_hash",
    "naive: JSON.stringify(Array.from(words)) + string hash",
    (n) => {
      let x = 0;
      for (let i = 0; i < n; i++) x = (x + stringHash(JSON.stringify(Array.from(mem.words)))) | 0;
      return x;
    },
    slowOpts,
  );
  add(
    "json_restore",
    "naive: JSON.parse + copy back",
    (n) => {
      for (let i = 0; i < n; i++) mem.words.set(JSON.parse(json) as number[]);
      return mem.hashLo();
    },
    slowOpts,
  );

  return {
    cpus: k.params.cpus,
    tasks,
    task_slots: k.L.task.count - 1,
    steps: k.metrics.steps,
    words: mem.size,
    bytes: mem.size * Int32Array.BYTES_PER_ELEMENT,
    json_bytes: json.length,
    ops,
  };
}
