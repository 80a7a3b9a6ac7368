// PCID/ASID management, TLB flushing and PTI's deferred user-ASID flush
// (seed 001; reference linux-tlb-pcid.md section 6). Kernel paths are run
// step by step on one CPU with nothing else enabled, so each figure is the
// paths' own.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { cpu_step } from "../src/engine/cpu.js";
import { user_access } from "../src/hw/tlb.js";
import { P_EXIT_TO_USER } from "../src/kernel/entry.js";
import { allocate_global_asid } from "../src/kernel/global_asid.js";
import type { Kernel } from "../src/kernel/kernel.js";
import type { KPath } from "../src/kernel/path.js";
import { P_SWITCH_TO_USER_CR3, switch_to_kernel_cr3 } from "../src/kernel/pti.js";
import { enter_lazy_tlb, P_SWITCH_MM, tlb_mm_free } from "../src/kernel/tlb.js";
import { flush_tlb_func, P_FLUSH_TLB_MM_RANGE } from "../src/kernel/tlb_flush.js";
import { cpumask_test, flush_tlb_one_kernel, user_mask_pending } from "../src/kernel/tlbstate.js";
import { PER_CPU_METRICS } from "../src/machine/metrics.js";
import { IRQ_CALL_FUNCTION, IRQ_NMI } from "../src/machine/state.js";
import { runJson } from "../src/report/run-report.js";
import { runScenario } from "../src/run/session.js";
import { compileScenario } from "../src/scenario/compile.js";
import { loadScenarioFile } from "../src/scenario/load.js";
import { bootEngine, drive, REPO_ROOT, scenario } from "./helpers.js";

/** A 1-CPU machine with `n` single-threaded processes (their mms are 1..n, tasks 2..n+1). */
function machine(n: number, extra = "", policy: string[] = [], cpus = 1) {
  const procs = Array.from(
    { length: n },
    (_, i) => `  - { name: p${i + 1}, program: [ { compute: 1000 } ] }`,
  );
  const cs = scenario(`name: t\nmachine: { cpus: ${cpus}${extra} }\nprocesses:\n${procs.join("\n")}\n`, {
    policy,
  });
  const { k } = bootEngine(cs);
  k.set(k.C.irqs_off, 0, 1); // nothing interrupts the paths under test
  return k;
}

/** Run `path` to its end on CPU 0, as task `t` (its mm is the flush target). */
function runPath(k: Kernel, t: number, path: KPath, a0 = 0, a1 = 0): void {
  k.set(k.C.curr, 0, t);
  const depth = k.get(k.T.depth, t);
  k.call(0, path, a0, a1);
  for (let i = 0; i < 100_000 && k.get(k.T.depth, t) > depth; i++) cpu_step(k, 0, 1000);
  assert.equal(k.get(k.T.depth, t), depth, `${path.name} ran to its end`);
}

const task = (mm: number) => mm + 1; // process i's leader is task slot i + 1 (slot 1 is the idle task)

/** Switch CPU 0 to mm `mm` (as its process's task: slots 1..cpus are the idle tasks). */
function switchTo(k: Kernel, mm: number): void {
  runPath(k, mm + k.params.cpus, P_SWITCH_MM, mm);
}

function cr3(k: Kernel) {
  const C = k.C;
  return {
    mm: k.get(C.cr3_mm, 0),
    pcid: k.get(C.cr3_pcid, 0),
    user: k.get(C.cr3_user, 0),
    noflush: k.get(C.cr3_noflush, 0),
  };
}

const violations = (k: Kernel) => k.violations.map((v) => `${v.property}: ${v.message}`);

describe("seed 001: the deferred user-ASID flush", () => {
  function seedClaim(policy: string) {
    const k = machine(2, ", invpcid: false", [`user_asid_flush=${policy}`]);
    const A = 1;
    const B = 2;
    switchTo(k, A); // A in slot 1, in a syscall
    const m = k.metrics;
    const user0 = m.user_asid_flushes;
    const full0 = m.tlb_flushes_full;
    for (let i = 0; i < 1000; i++) runPath(k, task(A), P_FLUSH_TLB_MM_RANGE, 34, 0); // 34 pages: full
    const afterA = m.tlb_flushes_full - full0;
    switchTo(k, B);
    runPath(k, task(B), P_FLUSH_TLB_MM_RANGE, 34, 0);
    switchTo(k, A);
    const switchBack = cr3(k);
    runPath(k, task(A), P_SWITCH_TO_USER_CR3);
    return { k, afterA, switchBack, user: m.user_asid_flushes - user0, exit: cr3(k) };
  }

  test("deferred: 1,000 flushes, a switch, a flush, a switch, one exit: exactly one user-ASID flush; B's bit stays", () => {
    const { k, afterA, switchBack, user, exit } = seedClaim("deferred");
    assert.deepEqual(violations(k), []);
    assert.equal(afterA, 1000, "1,000 full flushes of kernel PCID 2 (CR3 reloads)");
    assert.equal(
      switchBack.noflush,
      1,
      "the switch back to A is NOFLUSH: local flushes kept ctxs[1].tlb_gen current",
    );
    assert.equal(user, 1, "one user-ASID flush for everything");
    assert.deepEqual(
      exit,
      { mm: 1, pcid: 0x802, user: 1, noflush: 0 },
      "the exit writes user PCID 0x802, flushing",
    );
    assert.equal(
      k.get(k.C.user_pcid_flush_mask, 0),
      1 << 3,
      "B's bit (kPCID 3) pending until B exits to user",
    );
  });

  test("immediate: one user-PCID flush per flush, and a NOFLUSH exit", () => {
    const { k, user, exit } = seedClaim("immediate");
    assert.deepEqual(violations(k), []);
    assert.equal(user, 1002, "1,000 flushes of A, B's flushing switch, B's flush");
    assert.equal(exit.noflush, 1);
    assert.equal(k.get(k.C.user_pcid_flush_mask, 0), 0);
  });

  test("with INVPCID, ranged flushes (<= 33 pages) flush the user PCID at once and set no bit", () => {
    const k = machine(1);
    switchTo(k, 1);
    runPath(k, task(1), P_SWITCH_TO_USER_CR3); // consume the first switch's bit
    assert.equal(k.get(k.C.user_pcid_flush_mask, 0), 0);
    const range0 = k.metrics.tlb_flushes_range;
    runPath(k, task(1), P_FLUSH_TLB_MM_RANGE, 33, 0);
    assert.equal(k.metrics.tlb_flushes_range - range0, 1, "33 pages: ranged");
    assert.equal(k.get(k.C.user_pcid_flush_mask, 0), 0, "no bit");
    runPath(k, task(1), P_FLUSH_TLB_MM_RANGE, 34, 0);
    assert.equal(k.get(k.C.user_pcid_flush_mask, 0), 1 << 2, "34 pages: full, bit 2");
  });

  test("bt-btr touches the mask only when a bit is set; btr pays the cache line on every exit", () => {
    const cost = (test: string) => {
      const k = machine(1, "", [`user_flush_test=${test}`]);
      switchTo(k, 1);
      runPath(k, task(1), P_SWITCH_TO_USER_CR3);
      k.extra = 0;
      switch_to_kernel_cr3(k, 0);
      runPath(k, task(1), P_SWITCH_TO_USER_CR3);
      return k.extra;
    };
    assert.equal(cost("btr") - cost("bt-btr"), 40, "one user_mask_rmw per exit with nothing pending");
  });
});

describe("choose_new_asid: round-robin, not LRU", () => {
  test("seven mms on one CPU with six slots: slots 1..5, then 0, then 1; M1 again evicts slot 2; M7 again hits", () => {
    const k = machine(7);
    const seen: string[] = [];
    for (const mm of [1, 2, 3, 4, 5, 6, 7, 1, 7]) {
      switchTo(k, mm);
      seen.push(`M${mm}:${k.get(k.C.loaded_mm_asid, 0)}${k.get(k.C.cr3_noflush, 0) ? "" : " flush"}`);
    }
    assert.deepEqual(seen, [
      "M1:1 flush",
      "M2:2 flush",
      "M3:3 flush",
      "M4:4 flush",
      "M5:5 flush",
      "M6:0 flush",
      "M7:1 flush",
      "M1:2 flush",
      "M7:1",
    ]);
    assert.equal(k.get(k.C.next_asid, 0), 3);
    assert.deepEqual(violations(k), []);
  });

  test("after M1..M6, a hit on M1 does not protect it: a new M7 takes slot 1", () => {
    const k = machine(7);
    for (const mm of [1, 2, 3, 4, 5, 6, 1, 7]) switchTo(k, mm);
    assert.equal(k.get(k.C.loaded_mm_asid, 0), 1);
  });

  test("a thread switch within one mm (not lazy) writes no CR3", () => {
    const k = machine(1);
    switchTo(k, 1);
    const w = k.metrics.cr3_writes;
    switchTo(k, 1);
    assert.equal(k.metrics.cr3_writes, w);
  });

  test("flush_tlb_one_kernel sets invalidate_other: the next switch forgets the other slots, B misses", () => {
    const k = machine(2);
    switchTo(k, 1);
    switchTo(k, 2);
    switchTo(k, 1); // A in slot 1, B cached in slot 2, next_asid 3
    flush_tlb_one_kernel(k, 0, 0);
    assert.equal(k.get(k.C.invalidate_other, 0), 1);
    switchTo(k, 2);
    assert.equal(k.get(k.C.loaded_mm_asid, 0), 3, "B misses and takes slot 3");
    assert.equal(k.get(k.C.cr3_noflush, 0), 0);
    assert.equal(k.get(k.C.invalidate_other, 0), 0);
  });
});

describe("CR3 on entry and exit", () => {
  test("PTI + PCID: entry P_A|0x002|NOFLUSH, exit P_A|0x1802|NOFLUSH with nothing pending", () => {
    const k = machine(1);
    switchTo(k, 1);
    runPath(k, task(1), P_SWITCH_TO_USER_CR3);
    switch_to_kernel_cr3(k, 0);
    assert.deepEqual(cr3(k), { mm: 1, pcid: 0x002, user: 0, noflush: 1 });
    runPath(k, task(1), P_SWITCH_TO_USER_CR3);
    assert.deepEqual(cr3(k), { mm: 1, pcid: 0x802, user: 1, noflush: 1 });
  });

  test("PTI without PCID: PCID 0, every write flushes, the mask stays 0", () => {
    const k = machine(1, ", pcid: false");
    switchTo(k, 1);
    const f = k.metrics.tlb_flushes_full;
    switch_to_kernel_cr3(k, 0);
    assert.deepEqual(cr3(k), { mm: 1, pcid: 0, user: 0, noflush: 0 });
    runPath(k, task(1), P_SWITCH_TO_USER_CR3);
    assert.deepEqual(cr3(k), { mm: 1, pcid: 0, user: 1, noflush: 0 });
    assert.equal(k.metrics.tlb_flushes_full - f, 2, "a syscall is two full flushes");
    assert.equal(k.get(k.C.user_pcid_flush_mask, 0), 0);
    assert.deepEqual(violations(k), []);
  });

  test("PTI off: no user PCID, no bit is ever set", () => {
    const k = machine(1, ", pti: false");
    switchTo(k, 1);
    runPath(k, task(1), P_FLUSH_TLB_MM_RANGE, 40, 0);
    assert.equal(k.get(k.C.user_pcid_flush_mask, 0), 0);
    assert.equal(k.metrics.user_asid_flushes, 0);
  });
});

describe("shootdowns and the stale-TLB property", () => {
  const threads = (cpus: number, extra = "") =>
    scenario(`
name: shootdown
machine: { cpus: ${cpus}${extra} }
processes:
  - name: p
    threads: ${cpus}
    program:
      repeat: 20
      do:
        - touch: 8
        - munmap: 4
        - compute: 3000
        - touch: 8
        - mprotect: 40
        - compute: 3000
`);

  for (const cfg of ["", ", pti: false", ", pcid: false", ", invpcid: false"]) {
    const name = `a remote munmap: every CPU running the mm flushes before its next user access (machine${cfg || " defaults"})`;
    test(name, () => {
      for (const sched of ["sim", "random"] as const) {
        const cs = threads(4, cfg);
        const { k, e } = bootEngine(cs, sched, 7);
        e.run({ maxSteps: 5_000_000, maxCycles: Number.MAX_SAFE_INTEGER });
        assert.deepEqual(violations(k), [], sched);
        assert.ok(k.metrics.ipis > 0, `${sched}: shootdown IPIs were sent`);
        assert.ok(k.metrics.tlb_flushes_range > 0);
      }
    });
  }

  test("munmap with count: 1,000 flushes in one syscall, one exit", () => {
    const r = runScenario(
      scenario(`
name: seed
machine: { cpus: 1, invpcid: false }
processes:
  - name: a
    program: [ { touch: 8 }, { munmap: 34, count: 1000 }, { touch: 8 } ]
`),
    );
    assert.equal(r.violations_total, 0);
    assert.equal(r.metrics.syscalls, 2, "munmap and exit");
    assert.ok(r.metrics.tlb_flushes_full >= 1000);
  });

  test("the TLB model catches a skipped flush: with no deferred bit consumed, user code sees a stale entry", () => {
    const k = machine(1, ", invpcid: false");
    switchTo(k, 1);
    runPath(k, task(1), P_SWITCH_TO_USER_CR3);
    k.set(k.C.in_user, 0, 1);
    k.set(k.C.curr, 0, task(1));
    // A user access fills the user PCID; a full flush defers the user part.
    user_access(k, 0, 1, 0);
    switch_to_kernel_cr3(k, 0);
    runPath(k, task(1), P_FLUSH_TLB_MM_RANGE, 34, 0);
    k.set(k.C.user_pcid_flush_mask, 0, 0); // a broken exit path: the bit is lost
    runPath(k, task(1), P_SWITCH_TO_USER_CR3);
    user_access(k, 0, 1, 0);
    assert.ok(
      violations(k).some((v) => v.startsWith("tlb-stale")),
      violations(k).join("; "),
    );
  });

  test("built-in scenarios run clean on mainline", () => {
    for (const name of [
      "tlb-seed-001",
      "tlb-round-robin",
      "tlb-shootdown-storm",
      "tlb-pti-off",
      "tlb-nopcid",
    ]) {
      const r = runScenario(scenario(readBuiltin(name)));
      assert.equal(r.violations_total, 0, `${name}: ${JSON.stringify(r.violations.slice(0, 3))}`);
      assert.equal(r.complete, true, name);
    }
  });
});

function readBuiltin(name: string): string {
  return readFileSync(join(REPO_ROOT, "scenarios", `${name}.yaml`), "utf8");
}

describe("metrics.per_cpu", () => {
  test("each CPU's TLB counters add up to the run's, and the CPUs that run the unmapper do the flushing", () => {
    const r = runScenario(
      compileScenario(loadScenarioFile(join(REPO_ROOT, "scenarios", "tlb-shootdown-storm.yaml"))),
    );
    assert.equal(r.violations_total, 0);
    assert.equal(r.per_cpu.length, 8);
    for (const name of PER_CPU_METRICS) {
      const sum = r.per_cpu.reduce((s, m) => s + m[name], 0);
      assert.equal(sum, r.metrics[name], name);
    }
    const ranged = r.per_cpu.map((m) => m.tlb_flushes_range);
    assert.ok(ranged.filter((n) => n > 0).length >= 6, `ranged flushes on the unmappers' CPUs: ${ranged}`);
    const json = JSON.parse(runJson(r));
    assert.deepEqual(json.metrics.per_cpu, r.per_cpu);
  });
});

describe("reference scenarios (linux-tlb-pcid.md section 6)", () => {
  /** A in slot 1 on CPU 0, its first flushing switch's user bit consumed by one exit. */
  function loadedA(extra = "") {
    const k = machine(1, extra);
    switchTo(k, 1);
    runPath(k, task(1), P_SWITCH_TO_USER_CR3);
    switch_to_kernel_cr3(k, 0);
    return k;
  }

  test("7. range threshold: 33 pages are 33 INVLPG + INVPCID and no bit; 34 pages a full flush and bit 2; no INVPCID: 33 INVLPG and bit 2", () => {
    const k = loadedA();
    const m = k.metrics;
    const full0 = m.tlb_flushes_full;
    runPath(k, task(1), P_FLUSH_TLB_MM_RANGE, 33, 0);
    assert.equal(m.tlb_flushes_range, 1);
    assert.equal(m.tlb_flushes_full, full0);
    assert.equal(k.get(k.C.user_pcid_flush_mask, 0), 0, "INVPCID flushed the user PCID at once");
    runPath(k, task(1), P_FLUSH_TLB_MM_RANGE, 34, 0);
    assert.equal(m.tlb_flushes_full, full0 + 1);
    assert.equal(k.get(k.C.user_pcid_flush_mask, 0), 1 << 2, "kPCID 2's user half deferred");
    const n = loadedA(", invpcid: false");
    runPath(n, task(1), P_FLUSH_TLB_MM_RANGE, 33, 0);
    assert.equal(n.metrics.tlb_flushes_range, 1);
    assert.equal(
      n.get(n.C.user_pcid_flush_mask, 0),
      1 << 2,
      "without INVPCID the user part waits for the exit",
    );
  });

  test("8. generation reordering: F2 (partial, 2->3) arriving first at a CPU at gen 1 is promoted to full; F1 then does nothing", () => {
    const k = machine(1, "", [], 3);
    switchTo(k, 1); // A loaded on CPU 0, local gen 0
    const ga = k.C.ctx_gen.at + 0 * k.C.ctx_gen.stride + k.get(k.C.loaded_mm_asid, 0);
    k.mem.write(ga, 1); // CPU 0 is at gen 1
    k.set(k.M.tlb_gen, 1, 3); // two flushes since: F1 full (gen 2), F2 of 1 page (gen 3)
    const f1 = 1;
    const f2 = 2; // the initiators' flush_tlb_info, on CPUs 1 and 2
    for (const [cpu, pages, gen] of [
      [f1, 0, 2],
      [f2, 1, 3],
    ]) {
      k.set(k.C.fi_mm, cpu, 1);
      k.set(k.C.fi_pages, cpu, pages);
      k.set(k.C.fi_gen, cpu, gen);
    }
    const full0 = k.metrics.tlb_flushes_full;
    flush_tlb_func(k, 0, f2);
    assert.equal(k.metrics.tlb_flushes_full, full0 + 1, "promoted to a full flush");
    assert.equal(k.metrics.tlb_flushes_range, 0);
    assert.equal(k.w[ga], 3, "local = 3");
    flush_tlb_func(k, 0, f1);
    assert.equal(k.metrics.tlb_flushes_full, full0 + 1, "F1 (new gen 2 <= 3): no flush");
  });

  test("10. lazy catch-up: a CPU lazy on A that missed a flush switches back with a flushing CR3; up to date, no CR3 write", () => {
    const k = machine(1);
    switchTo(k, 1);
    enter_lazy_tlb(k, 0);
    const writes = k.metrics.cr3_writes;
    switchTo(k, 1); // nothing happened meanwhile
    assert.equal(k.metrics.cr3_writes, writes, "up to date: no CR3 write");
    enter_lazy_tlb(k, 0);
    k.add(k.M.tlb_gen, 1, 1); // a flush it was skipped for
    switchTo(k, 1);
    assert.equal(k.metrics.cr3_writes, writes + 1);
    assert.equal(k.get(k.C.cr3_noflush, 0), 0, "flushing");
    assert.equal(k.get(k.C.loaded_mm_asid, 0), 1, "same slot");
    assert.notEqual(k.get(k.C.user_pcid_flush_mask, 0) & (1 << 2), 0, "the user half deferred");
  });

  test("20. wrong-CPU IPI: a target that has B loaded leaves mm_cpumask(A) without flushing", () => {
    const k = machine(2, "", [], 2);
    switchTo(k, 1);
    switchTo(k, 2); // CPU 0 now runs B; A's bit in its cpumask stays (no trim)
    assert.ok(cpumask_test(k, 1, 0));
    k.set(k.C.fi_mm, 1, 1);
    k.set(k.C.fi_pages, 1, 1);
    k.set(k.C.fi_gen, 1, k.add(k.M.tlb_gen, 1, 1));
    const before = k.metrics.tlb_flushes_full + k.metrics.tlb_flushes_range;
    flush_tlb_func(k, 0, 1);
    assert.equal(k.metrics.tlb_flushes_full + k.metrics.tlb_flushes_range, before);
    assert.ok(!cpumask_test(k, 1, 0), "TLB_REMOTE_WRONG_CPU: bit cleared");
  });
});

describe("NMIs and the paranoid CR3 restore", () => {
  /** Take an NMI on CPU 0 now and run it to its IRET. */
  function nmi(k: Kernel): void {
    k.set(k.C.pending, 0, k.get(k.C.pending, 0) | IRQ_NMI);
    cpu_step(k, 0, 1000);
    assert.equal(k.get(k.C.in_nmi, 0), 1, "the NMI was taken with IRQs off");
    for (let i = 0; i < 10 && k.get(k.C.in_nmi, 0) !== 0; i++) cpu_step(k, 0, 1000);
    assert.equal(k.get(k.C.in_nmi, 0), 0);
  }

  test("13. an NMI from kernel mode: no CR3 write since 6.9; before it (nmi_restore_cr3=always) a NOFLUSH rewrite; the mask unchanged", () => {
    for (const [variant, writes] of [
      [[], 0],
      [["nmi_restore_cr3=always"], 1],
    ] as const) {
      const cs = scenario(
        "name: t\nmachine: { cpus: 1 }\nprocesses: [ { name: p, program: [ { compute: 1 } ] } ]\n",
        {
          policy: [...variant],
        },
      );
      const { k } = bootEngine(cs);
      k.set(k.C.irqs_off, 0, 1);
      switchTo(k, 1);
      const before = cr3(k);
      const mask = k.get(k.C.user_pcid_flush_mask, 0);
      const w0 = k.metrics.cr3_writes;
      nmi(k);
      assert.equal(k.metrics.cr3_writes - w0, writes, variant.join() || "mainline");
      assert.deepEqual({ ...cr3(k), noflush: before.noflush }, before);
      assert.equal(k.get(k.C.user_pcid_flush_mask, 0), mask);
      assert.equal(k.violations.length, 0, JSON.stringify(k.violations));
    }
  });

  test("14. an NMI after the user CR3 is loaded, before SYSRET: kernel CR3 NOFLUSH in, and a pending bit consumed by one flushing write out", () => {
    const k = machine(1, ", invpcid: false");
    switchTo(k, 1); // a flushing switch: bit 2 pending
    assert.equal(k.get(k.C.user_pcid_flush_mask, 0), 1 << 2);
    // The exit path's CR3 switch with the bit already consumed, then an NMI before SYSRET.
    runPath(k, task(1), P_SWITCH_TO_USER_CR3);
    const user = cr3(k);
    assert.equal(user.pcid, 0x802);
    const flushes = k.metrics.user_asid_flushes;
    nmi(k);
    assert.deepEqual({ ...cr3(k), noflush: 1 }, { ...user, noflush: 1 });
    assert.equal(k.get(k.C.cr3_noflush, 0), 1, "nothing pending: NOFLUSH");
    assert.equal(k.metrics.user_asid_flushes, flushes);
    // Now a flush makes bit 2 pending again while the user CR3 is loaded (as a remote flush's
    // IPI could not, but an NMI-safe path that did would be caught): the NMI's exit consumes it.
    k.set(k.C.user_pcid_flush_mask, 0, 1 << 2);
    nmi(k);
    assert.equal(k.metrics.user_asid_flushes, flushes + 1, "one flushing write of the user CR3");
    assert.equal(k.get(k.C.user_pcid_flush_mask, 0), 0);
    assert.equal(k.violations.length, 0, JSON.stringify(k.violations));
  });

  test("an NMI between any two steps of the exit path leaves CR3 as it would be without it", () => {
    const base = (withNmiAt: number) => {
      const k = machine(1);
      switchTo(k, 1);
      const t = task(1);
      k.set(k.C.curr, 0, t);
      k.set(k.T.depth, t, 0); // drop its ret_from_fork frame: it is on the way out of a syscall
      k.call(0, P_EXIT_TO_USER);
      for (let i = 0; i < 50 && k.get(k.C.in_user, 0) === 0; i++) {
        if (i === withNmiAt) nmi(k);
        cpu_step(k, 0, 1000);
      }
      const { noflush: _n, ...end } = cr3(k); // an NMI after the switch writes it again, NOFLUSH
      return { k, end, mask: k.get(k.C.user_pcid_flush_mask, 0), userFlushes: k.metrics.user_asid_flushes };
    };
    const plain = base(-1);
    assert.equal(plain.k.get(plain.k.C.in_user, 0), 1);
    assert.equal(plain.k.violations.length, 0, JSON.stringify(plain.k.violations));
    for (let at = 0; at < 8; at++) {
      const r = base(at);
      assert.deepEqual(r.end, plain.end, `NMI before step ${at}`);
      assert.equal(r.mask, plain.mask, `NMI before step ${at}`);
      assert.equal(
        r.userFlushes,
        plain.userFlushes,
        `NMI before step ${at}: the pending bit is consumed once`,
      );
      assert.equal(r.k.violations.length, 0, `NMI before step ${at}: ${JSON.stringify(r.k.violations)}`);
    }
  });

  test("with machine.nmi, runs and check stay clean: NMIs land everywhere and restore CR3", () => {
    const r = runScenario(
      scenario(`
name: nmis
machine: { cpus: 2, nmi: true, tick_ns: 100000 }
processes:
  - name: p
    threads: 2
    program: { repeat: 30, do: [ { touch: 4 }, { munmap: 2 }, { compute: 50000 }, { yield: true } ] }
`),
    );
    assert.equal(r.violations_total, 0, JSON.stringify(r.violations));
    assert.ok(r.metrics.nmis > 10, `${r.metrics.nmis} NMIs`);
  });
});

describe("reference scenario 9: IPI targets", () => {
  /** CPU0 (initiator) and CPU1 run A, CPU2 is lazy on A, CPU3 moved on to B; all four in mm_cpumask(A). */
  function fourCpus() {
    const k = machine(2, "", [], 4);
    const A = 1;
    const B = 2;
    const tA = A + 4;
    const tB = B + 4;
    const switchOn = (cpu: number, t: number, mm: number) => {
      k.set(k.C.curr, cpu, t);
      k.set(k.C.irqs_off, cpu, 1);
      const d = k.get(k.T.depth, t);
      k.call(cpu, P_SWITCH_MM, mm);
      for (let i = 0; i < 100 && k.get(k.T.depth, t) > d; i++) cpu_step(k, cpu, 1000);
    };
    switchOn(0, tA, A);
    switchOn(1, tA, A);
    switchOn(2, tA, A);
    enter_lazy_tlb(k, 2);
    switchOn(3, tA, A);
    switchOn(3, tB, B);
    for (let c = 0; c < 4; c++) assert.ok(cpumask_test(k, A, c), `cpu ${c} in mm_cpumask(A)`);
    k.set(k.C.curr, 0, tA);
    return k;
  }

  /** flush_tlb_mm_range on CPU0 up to its IPIs; returns the CPUs that got one. */
  function flush(k: Kernel, freed: number): number[] {
    k.call(0, P_FLUSH_TLB_MM_RANGE, 1, freed);
    cpu_step(k, 0, 1000); // inc_mm_tlb_gen
    cpu_step(k, 0, 1000); // flush_tlb_multi
    return [1, 2, 3].filter((c) => (k.get(k.C.pending, c) & IRQ_CALL_FUNCTION) !== 0);
  }

  test("a 1-page flush IPIs only CPU1; with freed_tables CPU2 and CPU3 too", () => {
    const k = fourCpus();
    assert.deepEqual(flush(k, 0), [1]);
    assert.equal(k.metrics.ipis, 1);
    const f = fourCpus();
    assert.deepEqual(flush(f, 1), [1, 2, 3]);
    assert.equal(f.metrics.ipis, 3);
  });
});

describe("reference scenario 16: global ASIDs and INVLPGB (6.15)", () => {
  test("the first allocation since boot resets the space with a flush and returns 6; a freed ASID waits for the next wrap", () => {
    const k = machine(3, "", ["tlb_shootdown=invlpgb"]);
    const flushes = k.metrics.invlpgb;
    assert.equal(allocate_global_asid(k), 6);
    assert.equal(k.metrics.invlpgb, flushes + 1, "reset_global_asid_space flushed");
    assert.equal(allocate_global_asid(k), 7);
    assert.equal(k.metrics.invlpgb, flushes + 1, "no flush for the second");
    // mm 1 takes 8, then is torn down: 8 is not handed out again before a wrap.
    k.set(k.M.global_asid, 1, allocate_global_asid(k));
    assert.equal(k.get(k.M.global_asid, 1), 8);
    tlb_mm_free(k, 1, 0);
    assert.equal(allocate_global_asid(k), 9);
    k.set(k.G.last_global_asid, 0, 2045); // the cursor at the top: the next allocation wraps
    assert.equal(
      allocate_global_asid(k),
      8,
      "after the wrap's flush, the freed 8 is the lowest free above 6, 7",
    );
    assert.equal(k.metrics.invlpgb, flushes + 2);
  });

  test("a 6-CPU unmapper gets ASID 6 once sampled; after the transition its flushes send no IPI and every switch to it is NOFLUSH", () => {
    const cs = scenario(readBuiltin("tlb-global-asid"));
    const { k, e } = bootEngine(cs);
    let afterIpis = -1;
    let afterFlushes = 0;
    let flushingLoads = 0;
    drive(e, {
      before: (s) => {
        if (s.cpu < 0 || s.name !== "flush_tlb_mm_range.flush_tlb_multi") return;
        const mm = k.get(k.C.fi_mm, s.cpu);
        if (k.get(k.M.global_asid, mm) === 0 || k.get(k.M.asid_transition, mm) !== 0) return;
        if (afterIpis < 0) afterIpis = k.metrics.ipis;
        afterFlushes++;
      },
      after: (s) => {
        if (s.cpu < 0 || s.name !== "switch_mm_irqs_off.load_new_mm_cr3") return;
        const asid = k.get(k.C.cr3_pcid, s.cpu) - 1;
        if (asid >= 6 && k.get(k.C.cr3_noflush, s.cpu) === 0) flushingLoads++;
      },
    });
    assert.equal(k.violations.length, 0, JSON.stringify(k.violations.slice(0, 2)));
    assert.equal(k.metrics.global_asids, 1);
    assert.ok(afterFlushes > 100, `${afterFlushes} flushes after the transition`);
    assert.equal(k.metrics.ipis, afterIpis, "no IPI after the transition");
    assert.equal(flushingLoads, 0, "switches to the global ASID never flush");
    const ipi = runScenario(scenario(readBuiltin("tlb-global-asid"), { policy: ["tlb_shootdown=ipi"] }));
    assert.ok(ipi.metrics.ipis > 10 * k.metrics.ipis, `${ipi.metrics.ipis} IPIs without INVLPGB`);
  });

  test("invlpgb needs PCID: a located error", () => {
    assert.throws(
      () =>
        scenario(
          "name: t\nmachine: { pcid: false }\npolicy: { tlb_shootdown: invlpgb }\nprocesses: [ { name: p, program: [ { compute: 1 } ] } ]\n",
        ),
      /t\.yaml:3:\d+: policy\.tlb_shootdown: 'invlpgb' \(global ASIDs\) needs machine\.pcid/,
    );
  });
});

describe("reference scenario 19: the width of user_pcid_flush_mask (PTI plus global ASIDs)", () => {
  /** CPU 0 runs mm 1 on global ASID 100 (ASIDs 6..99 held at boot); a fixmap flush defers its user flush. */
  function onAsid100(kernel: string[]) {
    const cs = scenario(
      "name: t\nmachine: { cpus: 1, invpcid: false, global_asids_in_use: 94 }\npolicy: { tlb_shootdown: invlpgb }\nprocesses:\n  - { name: p1, program: [ { compute: 1000 } ] }\n  - { name: p2, program: [ { compute: 1000 } ] }\n",
      { kernel },
    );
    const { k } = bootEngine(cs);
    k.set(k.C.irqs_off, 0, 1);
    const A = 1;
    k.set(k.M.global_asid, A, allocate_global_asid(k));
    assert.equal(k.get(k.M.global_asid, A), 100, "the first ASID above the 94 held");
    switchTo(k, A);
    assert.equal(cr3(k).pcid, 101, "kernel PCID 101");
    flush_tlb_one_kernel(k, 0, 0); // set_pte_vaddr() without INVPCID: invalidate_user_asid(100)
    return k;
  }
  const maskWord = (k: Kernel, i: number) => k.w[k.C.user_pcid_flush_mask.at + i];

  test("mainline (the posted fix): bit 101 of a 2048-bit mask, consumed by the flushing exit", () => {
    const k = onAsid100([]);
    assert.equal(k.C.user_pcid_flush_mask.len, 64, "2048 bits");
    assert.deepEqual(user_mask_pending(k, 0), [101]);
    assert.equal(maskWord(k, 3), 1 << 5);
    const flushes = k.metrics.user_asid_flushes;
    runPath(k, task(1), P_SWITCH_TO_USER_CR3);
    assert.deepEqual(cr3(k), { mm: 1, pcid: 0x800 | 101, user: 1, noflush: 0 });
    assert.equal(k.metrics.user_asid_flushes, flushes + 1);
    assert.deepEqual(user_mask_pending(k, 0), []);
    assert.deepEqual(violations(k), []);
  });

  test("user-pcid-mask-u16 (v6.15): __set_bit(101) lands in ctxs[0].ctx_id; the next switch's clear_asid_other() wipes it and the exit runs NOFLUSH", () => {
    const k = onAsid100(["user-pcid-mask-u16"]);
    assert.deepEqual(violations(k), [
      "user-mask: cpu 0: __set_bit(101) past the 16-bit user_pcid_flush_mask writes ctxs[0].ctx_id bit 21",
    ]);
    const slot0 = k.C.ctx_id.at;
    assert.equal(k.w[slot0] & (1 << 21), 1 << 21, "init_mm's slot 0 no longer holds ctx_id 1");
    assert.deepEqual(user_mask_pending(k, 0), [], "nothing in the 16 bits themselves");
    // To mm 2 and back: invalidate_other (set by the kernel-address flush) clears slot 0, bit 21 with it.
    switchTo(k, 2);
    switchTo(k, 1);
    const flushes = k.metrics.user_asid_flushes;
    runPath(k, task(1), P_SWITCH_TO_USER_CR3);
    assert.equal(cr3(k).noflush, 1, "the deferred flush of user PCID 0x865 is lost");
    assert.equal(k.metrics.user_asid_flushes, flushes);
    const fixed = onAsid100([]);
    switchTo(fixed, 2);
    switchTo(fixed, 1);
    runPath(fixed, task(1), P_SWITCH_TO_USER_CR3);
    assert.equal(cr3(fixed).noflush, 0, "mainline's bit survives the switches");
  });

  test("the run tlb-user-mask-width: the variant WARNs from the first global ASID past 15; mainline does not", () => {
    const ok = runScenario(scenario(readBuiltin("tlb-user-mask-width")));
    assert.equal(ok.violations.length, 0, JSON.stringify(ok.violations.slice(0, 2)));
    assert.ok(ok.metrics.global_asids >= 10, `${ok.metrics.global_asids} global ASIDs`);
    const bad = runScenario(scenario(readBuiltin("tlb-user-mask-width"), { kernel: ["user-pcid-mask-u16"] }));
    assert.ok(bad.violations.length > 0);
    assert.equal(bad.violations[0].property, "user-mask");
    assert.match(
      bad.violations[0].message,
      /__set_bit\(16\) past the 16-bit user_pcid_flush_mask writes cr4 bit 0/,
    );
  });

  test("asid_slots above 15 overflow the 16-bit mask too (TLB_NR_DYN_ASIDS+1 bits); mainline sizes the mask for them", () => {
    const procs = Array.from({ length: 17 }, (_, i) => `  - { name: p${i}, program: [ { compute: 1000 } ] }`);
    const text = `name: t\nmachine: { cpus: 1, asid_slots: 16 }\nprocesses:\n${procs.join("\n")}\n`;
    const ok = runScenario(scenario(text));
    assert.equal(ok.violations.length, 0, JSON.stringify(ok.violations.slice(0, 2)));
    assert.ok(ok.metrics.asid_switches >= 17);
    const bad = runScenario(scenario(text, { kernel: ["user-pcid-mask-u16"] }));
    assert.equal(bad.violations[0]?.property, "user-mask");
  });

  test("bad input: the variant without PTI, global ASIDs without invlpgb, asid_slots outside 1..2046", () => {
    const proc = "processes: [ { name: p, program: [ { compute: 1 } ] } ]\n";
    assert.throws(
      () => scenario(`name: t\nmachine: { pti: false }\nkernel: [ user-pcid-mask-u16 ]\n${proc}`),
      /t\.yaml:3:\d+: kernel\[0\]: kernel variant 'user-pcid-mask-u16' changes the deferred user-PCID flush mask/,
    );
    assert.throws(
      () => scenario(`name: t\nmachine: { global_asids_in_use: 5 }\n${proc}`),
      /t\.yaml:2:\d+: machine\.global_asids_in_use: global ASIDs need policy\.tlb_shootdown 'invlpgb'/,
    );
    for (const n of [0, 2047])
      assert.throws(
        () => scenario(`name: t\nmachine: { asid_slots: ${n} }\n${proc}`),
        /t\.yaml:2:\d+: machine\.asid_slots/,
      );
    assert.throws(
      () =>
        scenario(
          `name: t\nmachine: { asid_slots: 2000, global_asids_in_use: 100 }\npolicy: { tlb_shootdown: invlpgb }\n${proc}`,
        ),
      /t\.yaml:2:\d+: machine\.global_asids_in_use: 100 is more than the 45 global ASIDs above 2000 dynamic slots/,
    );
    // The top of the range runs, global ASIDs or not (none is left above 2046 slots).
    for (const policy of [[], ["tlb_shootdown=invlpgb"]]) {
      const r = runScenario(scenario(`name: t\nmachine: { asid_slots: 2046 }\n${proc}`, { policy }));
      assert.equal(r.violations.length, 0);
    }
  });
});

describe("reference scenario 6: A -> kernel thread -> B, lazy TLB then (4.15) and now", () => {
  function viaKthread(policy: string[], extra = "") {
    const k = machine(2, extra, policy);
    const A = 1;
    const B = 2;
    switchTo(k, A);
    const writes = k.metrics.cr3_writes;
    enter_lazy_tlb(k, 0); // context_switch() to a kernel thread
    const inKthread = {
      cr3Writes: k.metrics.cr3_writes - writes,
      loaded: k.get(k.C.loaded_mm, 0),
      lazy: k.get(k.C.is_lazy, 0),
      inMaskA: cpumask_test(k, A, 0),
      pcid: cr3(k).pcid,
    };
    switchTo(k, B);
    return { k, inKthread, b: cr3(k) };
  }

  test("mainline: A stays loaded and lazy, no CR3 write; B then gets its own slot", () => {
    const { k, inKthread, b } = viaKthread([]);
    assert.deepEqual(inKthread, { cr3Writes: 0, loaded: 1, lazy: 1, inMaskA: true, pcid: 2 });
    assert.equal(b.mm, 2);
    assert.equal(b.pcid, 3, "B in slot 2");
    assert.deepEqual(violations(k), []);
  });

  test("lazy_tlb=init-mm (4.15-4.18 with PCID): the kernel thread loads init_mm by slot lookup (slot 0) and leaves mm_cpumask(A)", () => {
    const { k, inKthread, b } = viaKthread(["lazy_tlb=init-mm"]);
    assert.deepEqual(inKthread, { cr3Writes: 1, loaded: 0, lazy: 0, inMaskA: false, pcid: 1 });
    assert.equal(b.mm, 2);
    assert.equal(b.pcid, 3);
    assert.deepEqual(violations(k), []);
    // Without PCID 4.15 deferred the switch (tlb_defer_switch_to_init_mm()): lazy as now.
    const nopcid = viaKthread(["lazy_tlb=init-mm"], ", pcid: false");
    assert.equal(nopcid.inKthread.lazy, 1);
    assert.equal(nopcid.inKthread.cr3Writes, 0);
  });

  test("in a run: lazy_tlb=init-mm writes CR3 on every switch to idle, and a remote munmap needs no IPI to a CPU that left", () => {
    const text = readBuiltin("tlb-shootdown-storm");
    const lazy = runScenario(scenario(text));
    const eager = runScenario(scenario(text, { policy: ["lazy_tlb=init-mm"] }));
    assert.equal(lazy.violations.length, 0);
    assert.equal(eager.violations.length, 0, JSON.stringify(eager.violations.slice(0, 2)));
    assert.ok(
      eager.metrics.cr3_writes > lazy.metrics.cr3_writes,
      `${eager.metrics.cr3_writes} vs ${lazy.metrics.cr3_writes}`,
    );
  });
});
