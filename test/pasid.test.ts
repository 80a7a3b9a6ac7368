// PASID lifetime and the device side: what a user of `asidlab run` sees.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Engine } from "../src/engine/engine.js";
import { CORE_INVARIANTS } from "../src/engine/invariants.js";
import { RandomScheduler } from "../src/engine/random.js";
import { SimScheduler } from "../src/engine/sim.js";
import { boot } from "../src/kernel/boot.js";
import type { Kernel } from "../src/kernel/kernel.js";
import type { TraceSink } from "../src/machine/machine.js";
import { runScenario } from "../src/run/session.js";
import { compileScenario } from "../src/scenario/compile.js";
import { loadScenarioFile, loadScenarioString } from "../src/scenario/load.js";

function compile(yaml: string, kernel: string[] = [], policy: string[] = []) {
  return compileScenario(loadScenarioString(yaml, "t.yaml"), { kernel, policy });
}

function builtin(name: string, kernel: string[] = []) {
  return compileScenario(loadScenarioFile(`scenarios/${name}.yaml`), { kernel });
}

/** Records the trace's instants (pasid_alloc, pasid_free, bind failed, ...) in order. */
class Instants implements TraceSink {
  readonly events: { name: string; args: Record<string, number | string> }[] = [];
  pathEnter(): void {}
  pathExit(): void {}
  contextSwitch(): void {}
  instant(_cpu: number, name: string, args: Record<string, number | string>): void {
    this.events.push({ name, args });
  }
  pasids(name: string): number[] {
    return this.events.filter((e) => e.name === name).map((e) => Number(e.args.pasid));
  }
}

/** Run with the sim scheduler, recording instants; optionally stop at a step. */
function runRecorded(cs: ReturnType<typeof compile>, maxSteps = 10_000_000) {
  const k = boot(cs.boot);
  const rec = new Instants();
  k.trace = rec;
  const e = new Engine(k, CORE_INVARIANTS, new SimScheduler(cs.seed));
  const stop = e.run({ maxSteps, maxCycles: Number.MAX_SAFE_INTEGER });
  return { k, rec, stop };
}

const violations = (k: Kernel) => k.violations.map((v) => `${v.property}: ${v.message}`);

describe("PASID allocation", () => {
  test("two devices share the mm's one PASID: the allocator's count rises by one", () => {
    const cs = compile(`
name: two-devices
machine: { cpus: 1 }
devices: { dsa0: {}, dsa1: {} }
processes:
  - name: p
    program:
      - bind: dsa0
      - bind: dsa1
      - enqcmd: dsa0
      - enqcmd: dsa1
      - wait: dsa0
      - wait: dsa1
      - sleep: 10000
`);
    const { k, rec } = runRecorded(cs);
    assert.deepEqual(violations(k), []);
    assert.deepEqual(rec.pasids("pasid_alloc"), [1], "one allocation for both binds");
    assert.deepEqual(rec.pasids("bind"), [1, 1], "both devices bound with the mm's PASID");
    assert.equal(k.metrics.pasid_peak, 1, "the allocator's count rose by one");
    assert.equal(k.metrics.dma_writes, 2);
  });

  test("unbinding everything does not free the PASID under `mm`; under `unbind` it does, and the next bind reallocates", () => {
    const yaml = `
name: serial
machine: { cpus: 1 }
devices: { dsa0: {} }
processes:
  - name: p
    program:
      repeat: 5
      do: [ { bind: dsa0 }, { enqcmd: dsa0 }, { wait: dsa0 }, { unbind: dsa0 } ]
`;
    const mm = runScenario(compile(yaml, [], ["pasid_lifetime=mm"]));
    const unbind = runScenario(compile(yaml, [], ["pasid_lifetime=unbind"]));
    assert.equal(mm.violations_total, 0);
    assert.equal(unbind.violations_total, 0);
    assert.equal(mm.metrics.pasid_allocs, 1, "mm: allocated once, kept across unbinds");
    assert.equal(
      unbind.metrics.pasid_allocs,
      5,
      "unbind: freed at each last unbind, reallocated at each bind",
    );
    assert.equal(unbind.metrics.pasid_frees, 5);
    assert.equal(mm.metrics.drains, 5);
  });

  test("after the process exits its PASID is freed once, and the next bind gets it back (lowest free)", () => {
    const cs = compile(`
name: reuse-after-exit
machine: { cpus: 1 }
devices: { dsa0: {} }
processes:
  - name: first
    program: [ { bind: dsa0 }, { enqcmd: dsa0 }, { wait: dsa0 }, { unbind: dsa0 }, { exit: 0 } ]
  - name: second
    program: [ { sleep: 100000 }, { bind: dsa0 }, { unbind: dsa0 } ]
`);
    const { k, rec } = runRecorded(cs);
    assert.deepEqual(violations(k), []);
    const order = rec.events.filter((e) => e.name === "pasid_alloc" || e.name === "pasid_free");
    assert.deepEqual(
      order.map((e) => `${e.name} ${e.args.pasid}`),
      ["pasid_alloc 1", "pasid_free 1", "pasid_alloc 1"],
    );
  });

  test("exhaustion: binds beyond the device's PASIDs fail with ENOSPC and change nothing else", () => {
    const { k, rec } = runRecorded(builtin("narrow-device"));
    assert.deepEqual(violations(k), []);
    assert.deepEqual(rec.pasids("pasid_alloc").sort(), [1, 2, 3], "2-bit device: 1..3");
    assert.equal(k.metrics.bind_failures, 2);
    assert.deepEqual(
      rec.events.filter((e) => e.name === "bind failed").map((e) => e.args.errno),
      [28, 28],
      "ENOSPC",
    );
    assert.equal(k.metrics.enqcmd_submitted, 3, "only the three bound clients submit");
  });

  test("an mm whose PASID is too wide for another device gets EOVERFLOW there and keeps its PASID", () => {
    const cs = compile(`
name: overflow
machine: { cpus: 1 }
devices: { wide: {kernel_wq: true}, narrow: { pasid_bits: 1 } }
processes:
  - name: p
    program: [ { bind: wide }, { bind: narrow }, { enqcmd: wide }, { wait: wide }, { unbind: wide } ]
`);
    const { k, rec } = runRecorded(cs);
    assert.deepEqual(violations(k), []);
    // The kernel work queue took PASID 1 at probe; the process gets 2, too wide for a 1-bit device.
    assert.equal(k.get(k.D.kernel_pasid, 0), 1);
    assert.deepEqual(rec.pasids("pasid_alloc"), [2]);
    assert.deepEqual(
      rec.events.filter((e) => e.name === "bind failed").map((e) => e.args.errno),
      [75],
      "EOVERFLOW",
    );
    assert.equal(k.metrics.dma_writes, 1);
  });

  test("kernel PASIDs come from the same space and never collide with user PASIDs", () => {
    const cs = compile(`
name: kernel-wq
machine: { cpus: 1 }
devices: { dsa0: { kernel_wq: true }, dsa1: { kernel_wq: true } }
processes:
  - name: p
    count: 2
    program: [ { bind: dsa0 }, { enqcmd: dsa0 }, { wait: dsa0 }, { unbind: dsa0 } ]
`);
    const { k, rec } = runRecorded(cs);
    assert.deepEqual(violations(k), []);
    const kernelPasids = [k.get(k.D.kernel_pasid, 0), k.get(k.D.kernel_pasid, 1)];
    assert.deepEqual(kernelPasids, [1, 2], "the kernel work queues' PASIDs, at probe");
    const user = rec.pasids("pasid_alloc");
    assert.equal(user.length, 2);
    for (const p of user) assert.ok(!kernelPasids.includes(p), `user PASID ${p} is not a kernel one`);
  });
});

describe("teardown and the no-reuse rule", () => {
  test("free-at-mmput hands out a PASID while the device still holds descriptors for it; mainline does not", () => {
    const bad = runScenario(builtin("exit-with-inflight", ["free-at-mmput"]));
    const good = runScenario(builtin("exit-with-inflight"));
    const props = new Set(bad.violations.map((v) => v.property));
    assert.ok(
      props.has("pasid-reuse"),
      `free-at-mmput breaks pasid-reuse: ${JSON.stringify(bad.violations)}`,
    );
    assert.ok(
      props.has("dma-address-space"),
      "the leaver's descriptors DMA into the newcomer's address space",
    );
    assert.equal(good.violations_total, 0, JSON.stringify(good.violations));
    assert.equal(
      good.metrics.dma_faults,
      8,
      "mainline: the torn-down entry makes the leaver's DMAs fault quietly",
    );
  });

  test("no-drain releases the file with descriptors still in flight and breaks the no-reuse rule", () => {
    const cs = compile(
      `
name: no-drain
machine: { cpus: 1 }
devices: { dsa0: { latency_ns: 50000 } }
processes:
  - name: p
    program: [ { bind: dsa0 }, { enqcmd: dsa0, count: 4 }, { unbind: dsa0 } ]
`,
      ["no-drain"],
      ["pasid_lifetime=unbind"],
    );
    const r = runScenario(cs);
    assert.ok(
      r.violations.some((v) => v.property === "pasid-reuse"),
      JSON.stringify(r.violations),
    );
    const mainline = runScenario(
      compile(
        `
name: drain
machine: { cpus: 1 }
devices: { dsa0: { latency_ns: 50000 } }
processes:
  - name: p
    program: [ { bind: dsa0 }, { enqcmd: dsa0, count: 4 }, { unbind: dsa0 } ]
`,
        [],
        ["pasid_lifetime=unbind"],
      ),
    );
    assert.equal(mainline.violations_total, 0, JSON.stringify(mainline.violations));
    assert.equal(mainline.metrics.dma_writes, 4, "the drain waited for all four");
  });

  test("a file passed to a child keeps the parent's PASID until the child closes it", () => {
    const { k, rec } = runRecorded(builtin("file-passed-on"));
    assert.deepEqual(violations(k), []);
    const seq = rec.events.map((e) => `${e.name}${e.args.pasid !== undefined ? ` ${e.args.pasid}` : ""}`);
    // The parent allocates 1 and exits; `other` binds while the child still holds the file: a new PASID.
    assert.deepEqual(rec.pasids("pasid_alloc"), [1, 2]);
    assert.ok(seq.indexOf("pasid_free 1") > seq.indexOf("pasid_alloc 2"), seq.join(", "));
    // 1 goes back only after the child's close released the file (its last reference).
    assert.ok(seq.indexOf("pasid_free 1") > seq.lastIndexOf("release"), seq.join(", "));
  });

  test("DRAIN_PASID waits only for its own PASID's descriptors", () => {
    const cs = compile(`
name: selective
machine: { cpus: 2 }
devices: { dsa0: { wq_depth: 32, latency_ns: 10000 } }
processes:
  - name: busy
    program: [ { bind: dsa0 }, { enqcmd: dsa0, count: 10 }, { wait: dsa0 }, { unbind: dsa0 } ]
  - name: quick
    program: [ { compute: 5000 }, { bind: dsa0 }, { unbind: dsa0 } ]
`);
    const { k, rec } = runRecorded(cs);
    assert.deepEqual(violations(k), []);
    const names = rec.events.map((e) => `${e.name}${e.name === "dsa0: complete" ? ` ${e.args.pasid}` : ""}`);
    // quick's release (no descriptors of its own) completes before busy's descriptors are done.
    const quickRelease = names.indexOf("release");
    const lastBusy = names.lastIndexOf("dsa0: complete 1");
    assert.ok(quickRelease >= 0 && quickRelease < lastBusy, names.join(", "));
  });
});

describe("the lifetime policies on the built-in workloads", () => {
  for (const name of [
    "thread-pool",
    "fork-exec-churn",
    "short-lived-threads",
    "file-passed-on",
    "exit-with-inflight",
  ]) {
    for (const lifetime of ["mm", "unbind", "task-refcount", "static"]) {
      test(`${name} under ${lifetime}: no violation, sim and random schedulers`, () => {
        const cs = compileScenario(loadScenarioFile(`scenarios/${name}.yaml`), {
          policy: [`pasid_lifetime=${lifetime}`],
        });
        const r = runScenario(cs);
        assert.equal(r.violations_total, 0, JSON.stringify(r.first_violation));
        assert.ok(r.complete);
        for (const seed of [1, 2, 3]) {
          const k = boot(cs.boot);
          const e = new Engine(k, CORE_INVARIANTS, new RandomScheduler(seed));
          e.run({ maxSteps: 2_000_000, maxCycles: Number.MAX_SAFE_INTEGER });
          assert.deepEqual(violations(k), [], `random seed ${seed}`);
        }
      });
    }
  }

  test("the thread pool allocates once under mm and many times under unbind (seed 003's argument)", () => {
    const mm = runScenario(compileScenario(loadScenarioFile("scenarios/thread-pool.yaml"), {}));
    const unbind = runScenario(
      compileScenario(loadScenarioFile("scenarios/thread-pool.yaml"), { policy: ["pasid_lifetime=unbind"] }),
    );
    assert.equal(mm.metrics.pasid_allocs, 2, "one per process");
    assert.ok(unbind.metrics.pasid_allocs > mm.metrics.pasid_allocs);
  });
});

describe("injected bind failures", () => {
  for (const at of [
    "alloc_file",
    "iommu_alloc_mm_data",
    "iommu_sva_bind_device",
    "iommu_attach_device_pasid",
  ]) {
    test(`a failure injected at ${at} unwinds without a leak, and the next bind works`, () => {
      const cs = compile(`
name: fault-${at}
machine: { cpus: 1 }
devices: { dsa0: {} }
faults: [ { at: ${at}, nth: 1 } ]
processes:
  - name: p
    program: [ { bind: dsa0 }, { bind: dsa0 }, { enqcmd: dsa0 }, { wait: dsa0 }, { unbind: dsa0 }, { unbind: dsa0 } ]
`);
      const { k, rec } = runRecorded(cs);
      assert.deepEqual(
        violations(k),
        [],
        "no leak at the end: no bond, no file, no stray PASID or mm reference",
      );
      assert.equal(k.metrics.bind_failures, 1);
      assert.equal(rec.events.filter((e) => e.name === "fault injected").length, 1);
      assert.equal(k.metrics.dma_writes, 1, "the second bind works");
      assert.equal(k.metrics.ebadf, 1, "the second unbind has nothing left to close");
      assert.equal(k.get(k.G.nr_bonds, 0), 0);
      assert.equal(k.get(k.G.nr_open_files, 0), 0);
    });
  }

  test("a failure on every run of the attach step: every bind fails, nothing is left", () => {
    const cs = compile(`
name: fault-every
machine: { cpus: 1 }
devices: { dsa0: {} }
faults: [ { at: iommu_attach_device_pasid, every: true } ]
processes:
  - name: p
    count: 3
    program: [ { bind: dsa0 }, { bind: dsa0 } ]
`);
    const { k } = runRecorded(cs);
    assert.deepEqual(violations(k), []);
    assert.equal(k.metrics.bind_failures, 6);
  });
});
