// Issue 15, the TLB side: each test follows one kernel function (read in
// v6.15-6.19-era sources: arch/x86/mm/tlb.c, arch/x86/include/asm/tlb.h and
// tlbflush.h, mm/mmu_gather.c, kernel/fork.c dup_mmap(), mm/mmap.c
// exit_mmap()) and fails on the model as it was before the issue.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { cpu_step } from "../src/engine/cpu.js";
import { CLONE, P_CLONE } from "../src/kernel/fork.js";
import { allocate_global_asid } from "../src/kernel/global_asid.js";
import type { Kernel } from "../src/kernel/kernel.js";
import { P_MMPUT } from "../src/kernel/mm.js";
import { enter_lazy_tlb, P_SWITCH_MM } from "../src/kernel/tlb.js";
import {
  CHANGE_FROM_NONE,
  CHANGE_UPGRADE,
  flush_tlb_func,
  MEMOP,
  MEMOP_MPROTECT,
  MEMOP_MUNMAP,
  P_FLUSH_TLB_MM_RANGE,
  P_MEMOP,
  TABLES_KEPT,
} from "../src/kernel/tlb_flush.js";
import { cpumask_test, pte_populate } from "../src/kernel/tlbstate.js";
import { IRQ_CALL_FUNCTION } from "../src/machine/state.js";
import { runScenario } from "../src/run/session.js";
import { InputError } from "../src/scenario/errors.js";
import { bootEngine, peekStep, scenario } from "./helpers.js";

/** `cpus` CPUs, `n` single-threaded processes: mm i's leader is task slot cpus + i. */
function machine(n: number, cpus: number, policy: string[] = []): Kernel {
  const procs = Array.from(
    { length: n },
    (_, i) => `  - { name: p${i + 1}, program: [ { compute: 1000 } ] }`,
  );
  const cs = scenario(`name: t\nmachine: { cpus: ${cpus} }\nprocesses:\n${procs.join("\n")}\n`, { policy });
  const { k } = bootEngine(cs);
  for (let c = 0; c < cpus; c++) k.set(k.C.irqs_off, c, 1); // nothing interrupts the paths under test
  return k;
}

const A = 1;
const B = 2;
const taskOf = (k: Kernel, mm: number) => mm + k.params.cpus;

/** switch_mm_irqs_off() to `mm` on `cpu`, as the mm's task. */
function switchOn(k: Kernel, cpu: number, mm: number): void {
  const t = taskOf(k, mm);
  k.set(k.C.curr, cpu, t);
  const d = k.get(k.T.depth, t);
  k.call(cpu, P_SWITCH_MM, mm);
  for (let i = 0; i < 100 && k.get(k.T.depth, t) > d; i++) cpu_step(k, cpu, 1000);
}

/** Step `cpu` until its next step is `name` (path.step); false if it never comes. */
function stepTo(k: Kernel, cpu: number, name: string, max = 200): boolean {
  for (let i = 0; i < max; i++) {
    if (peekStep(k, cpu) === name) return true;
    cpu_step(k, cpu, 1000);
  }
  return false;
}

/** Step through flush_tlb_mm_range's IPIs (the step after flush_tlb_multi): which of the other CPUs got one. */
function ipisOfNextFlush(k: Kernel, cpu: number, within = 4): number[] {
  assert.ok(stepTo(k, cpu, "flush_tlb_mm_range.inc_mm_tlb_gen", within), "a flush_tlb_mm_range() is made");
  cpu_step(k, cpu, 1000); // inc_mm_tlb_gen
  cpu_step(k, cpu, 1000); // flush_tlb_multi
  const out: number[] = [];
  for (let c = 0; c < k.params.cpus; c++) {
    if (c !== cpu && (k.get(k.C.pending, c) & IRQ_CALL_FUNCTION) !== 0) out.push(c);
  }
  return out;
}

/** CPU0 and CPU1 run A, CPU2 is lazy on A (a kernel thread borrowed it), CPU3 moved on to B. */
function fourCpus(policy: string[] = []): Kernel {
  const k = machine(2, 4, policy);
  switchOn(k, 0, A);
  switchOn(k, 1, A);
  switchOn(k, 2, A);
  enter_lazy_tlb(k, 2);
  switchOn(k, 3, A);
  switchOn(k, 3, B);
  for (let c = 0; c < 4; c++) assert.ok(cpumask_test(k, A, c), `cpu ${c} in mm_cpumask(A)`);
  k.set(k.C.curr, 0, taskOf(k, A));
  return k;
}

describe("item 1: the flushes at fork and exit", () => {
  test("dup_mmap() ends with flush_tlb_mm(oldmm): a full flush of the parent's mm, IPIs to every CPU of its mask, lazy ones too", () => {
    const k = fourCpus();
    const gen = k.get(k.M.tlb_gen, A);
    const full = k.metrics.tlb_flushes_full;
    k.call(0, P_CLONE, CLONE.flags.put(0), CLONE.prog.put(0)); // fork: no CLONE_VM, so dup_mm()
    assert.deepEqual(
      ipisOfNextFlush(k, 0),
      [1, 2, 3],
      "freed_tables=true: on_each_cpu_mask(), no should_flush_tlb()",
    );
    assert.equal(k.get(k.M.tlb_gen, A), gen + 1, "inc_mm_tlb_gen(oldmm)");
    assert.equal(k.get(k.C.fi_pages, 0), 0, "TLB_FLUSH_ALL");
    assert.equal(k.get(k.C.fi_freed, 0), 1);
    cpu_step(k, 0, 1000); // flush_tlb_func, locally
    assert.equal(k.metrics.tlb_flushes_full, full + 1, "the parent's CPU flushed its whole PCID");
  });

  test("a thread (CLONE_VM) shares the mm: copy_mm() takes mmget() and flushes nothing", () => {
    const k = fourCpus();
    const gen = k.get(k.M.tlb_gen, A);
    k.call(0, P_CLONE, CLONE.flags.put(0x111), CLONE.prog.put(0)); // CLONE_VM|CLONE_FILES|CLONE_THREAD >> 8
    assert.ok(!stepTo(k, 0, "flush_tlb_mm_range.inc_mm_tlb_gen", 12));
    assert.equal(k.get(k.M.tlb_gen, A), gen);
  });

  test("exit_mmap() -> tlb_finish_mmu() -> tlb_flush(): a fullmm gather flushes TLB_FLUSH_ALL with freed_tables; the exiting CPU, lazy since exit_mm(), leaves the mm", () => {
    const k = fourCpus();
    enter_lazy_tlb(k, 0); // exit_mm(): current->mm = NULL, enter_lazy_tlb()
    const gen = k.get(k.M.tlb_gen, A);
    k.call(0, P_MMPUT, A); // the last mm_users reference
    assert.deepEqual(ipisOfNextFlush(k, 0), [1, 2, 3]);
    assert.equal(k.get(k.M.tlb_gen, A), gen + 1);
    assert.equal(k.get(k.C.fi_pages, 0), 0, "fullmm: TLB_FLUSH_ALL");
    cpu_step(k, 0, 1000); // flush_tlb_func: is_lazy -> switch_mm_irqs_off(NULL, &init_mm)
    assert.equal(k.get(k.C.loaded_mm, 0), 0, "the exiting CPU switched to init_mm");
  });

  test("a one-CPU fork+exit loop: one dup_mmap flush per fork, on top of the model's switch flushes (QEMU 6.1 trace: 50 rounds, 50 dup_mmap full flushes)", () => {
    const run = (rounds: number) =>
      runScenario(
        scenario(`
name: forks
machine: { cpus: 1, pcid: false, pti: false }
processes:
  - name: sh
    program: { repeat: ${rounds}, do: [ { touch: 1 }, { fork: [ { touch: 1 }, { exit: 0 } ] }, { sleep: 100000 } ] }
`),
      );
    const r = run(50);
    assert.equal(r.violations_total, 0);
    assert.equal(r.metrics.forks, 50);
    // Without PCID and PTI a CR3 write is a switch or flush_tlb_local(); the exits' flushes find
    // their CPU lazy and switch to init_mm: the flush_tlb_local()s are dup_mmap's, one per fork.
    assert.equal(r.metrics.tlb_flushes_full - r.metrics.asid_switches, r.metrics.forks);
  });
});

describe("item 8: freed_tables at any size", () => {
  /** munmap of `pages` on CPU0 of fourCpus() (pages [0, touched) present); returns the IPI targets. */
  function munmap(k: Kernel, pages: number, touched: number, mode = 0): number[] {
    pte_populate(k, A, touched);
    k.call(
      0,
      P_MEMOP,
      MEMOP.pages.put(pages),
      MEMOP.op.put(MEMOP_MUNMAP) | MEMOP.mode.put(mode) | MEMOP.count.put(1),
    );
    return ipisOfNextFlush(k, 0);
  }

  test("unmapping an isolated one-page mapping frees its page table: freed_tables reaches the lazy CPU; pte_free_tlb() adds only PAGE_SIZE, so the flush stays ranged", () => {
    const k = fourCpus();
    assert.deepEqual(munmap(k, 1, 1), [1, 2, 3], "freed_tables: on_each_cpu_mask()");
    assert.equal(k.get(k.C.fi_pages, 0), 1, "tlb_flush_pmd_range(tlb, address, PAGE_SIZE): still one page");
    assert.equal(k.get(k.C.fi_freed, 0), 1);
  });

  test("part of a mapping (present PTEs left in the table), or tables: kept: a ranged flush, should_flush_tlb() skips lazy and other-mm CPUs", () => {
    const k = fourCpus();
    assert.deepEqual(munmap(k, 1, 8), [1]);
    assert.equal(k.get(k.C.fi_pages, 0), 1);
    assert.equal(k.get(k.C.fi_freed, 0), 0);
    const kept = fourCpus();
    assert.deepEqual(munmap(kept, 1, 1, TABLES_KEPT), [1]);
  });

  test("in a run: 50 one-page mmap/touch/munmap rounds on one CPU are 50 ranged flushes, freed tables or not (6.1 under QEMU: 50 of 50, docs/vs-kernel.md)", () => {
    const run = (extra: string) =>
      runScenario(
        scenario(`
name: one-page
machine: { cpus: 1 }
processes:
  - name: p
    program: { repeat: 50, do: [ { mmap: 1 }, { touch: 1 }, { munmap: 1${extra} } ] }
`),
      );
    const freed = run("");
    assert.equal(freed.metrics.tlb_flushes_range, 50);
    const kept = run(", tables: kept");
    assert.equal(kept.metrics.tlb_flushes_range, 50, "the page table kept: the same ranged flush");
    assert.equal(
      freed.metrics.tlb_flushes_full,
      kept.metrics.tlb_flushes_full,
      "no full flush from freeing the table",
    );
  });
});

describe("item 3: flush only what changed", () => {
  function memop(k: Kernel, op: number, pages: number, mode = 0): boolean {
    k.call(0, P_MEMOP, MEMOP.pages.put(pages), MEMOP.op.put(op) | MEMOP.mode.put(mode) | MEMOP.count.put(1));
    return stepTo(k, 0, "flush_tlb_mm_range.inc_mm_tlb_gen", 3);
  }

  test("munmap/mprotect of pages never touched: zap_pte_range() clears nothing, tlb_flush_mmu_tlbonly() returns: no flush, no tlb_gen", () => {
    const k = fourCpus();
    const gen = k.get(k.M.tlb_gen, A);
    assert.equal(memop(k, MEMOP_MUNMAP, 4), false);
    const m = fourCpus();
    assert.equal(memop(m, MEMOP_MPROTECT, 4), false);
    assert.equal(k.get(k.M.tlb_gen, A), gen);
  });

  test("a second munmap of the same pages finds no PTE: no flush", () => {
    const k = fourCpus();
    pte_populate(k, A, 4);
    assert.equal(memop(k, MEMOP_MUNMAP, 4), true);
    for (let i = 0; i < 50 && k.get(k.T.depth, taskOf(k, A)) > 0; i++) {
      for (let c = 0; c < 4; c++) {
        if (c !== 0) k.set(k.C.irqs_off, c, 0);
        cpu_step(k, c, 1000);
      }
    }
    assert.equal(memop(k, MEMOP_MUNMAP, 4), false);
  });

  test("mprotect: pte_needs_flush() is false from PROT_NONE (old PTE not present); an upgrade RO->RW still flushes (_PAGE_RW is flush_on_change)", () => {
    const k = fourCpus();
    pte_populate(k, A, 4);
    assert.equal(memop(k, MEMOP_MPROTECT, 4, CHANGE_FROM_NONE), false);
    const u = fourCpus();
    pte_populate(u, A, 4);
    assert.equal(memop(u, MEMOP_MPROTECT, 4, CHANGE_UPGRADE), true);
  });

  test("the ops say it: munmap without touch, mprotect change: from-none; bad keys are located errors", () => {
    const run = (munmap: string, mprotect: string) =>
      runScenario(
        scenario(`
name: untouched
machine: { cpus: 2 }
processes:
  - name: p
    threads: 2
    program: [ { mmap: 4 }, ${munmap}, { touch: 4 }, ${mprotect}, { compute: 1000 } ]
`),
      ).metrics;
    const ops = run("{ munmap: 4 }", "{ mprotect: 4, change: from-none }");
    const none = run("{ syscall: 0 }", "{ syscall: 0 }");
    for (const m of ["tlb_flushes_full", "tlb_flushes_range", "ipis"] as const)
      assert.equal(ops[m], none[m], m);
    const restrict = run("{ munmap: 4 }", "{ mprotect: 4 }");
    assert.ok(
      restrict.tlb_flushes_range > none.tlb_flushes_range,
      "a restricting mprotect of touched pages flushes",
    );
    assert.throws(
      () => scenario("name: t\nprocesses:\n  - { name: p, program: [ { mprotect: 4, tables: kept } ] }\n"),
      (e: unknown) => e instanceof InputError && /'tables' only goes with 'munmap'/.test(e.message),
    );
    assert.throws(
      () =>
        scenario("name: t\nprocesses:\n  - { name: p, program: [ { mprotect: 4, change: sideways } ] }\n"),
      (e: unknown) => e instanceof InputError && /change/.test(e.message),
    );
  });
});

describe("items 4 and 5: global ASIDs (6.15)", () => {
  /** fourCpus() with A on global ASID `g`, in transition (CPUs 1 and 2 still on their dynamic ASID). */
  function transition(): { k: Kernel; g: number } {
    const k = fourCpus(["tlb_shootdown=invlpgb"]);
    const g = allocate_global_asid(k);
    k.set(k.M.global_asid, A, g);
    k.set(k.M.asid_transition, A, 1);
    return { k, g };
  }

  test("native_flush_tlb_multi(): while mm_in_asid_transition(), on_each_cpu_mask() IPIs every CPU of the mask, not should_flush_tlb()'s pick", () => {
    const { k } = transition();
    k.call(0, P_FLUSH_TLB_MM_RANGE, 1, 0); // one page, no tables freed
    assert.deepEqual(ipisOfNextFlush(k, 0), [1, 2, 3]);
  });

  test("flush_tlb_func(): the global-ASID reload comes before the is_lazy test; a lazy straggler reloads onto the global ASID instead of leaving", () => {
    const { k, g } = transition();
    k.set(k.C.fi_mm, 0, A);
    k.set(k.C.fi_gen, 0, k.add(k.M.tlb_gen, A, 1));
    flush_tlb_func(k, 2, 0);
    assert.equal(k.get(k.C.loaded_mm, 2), A, "still on A");
    assert.equal(k.get(k.C.loaded_mm_asid, 2), g, "on the global ASID");
    assert.equal(k.get(k.C.is_lazy, 2), 0, "switch_mm_irqs_off() cleared is_lazy");
    // Lazy and already on the global ASID: is_global_asid() returns before the lazy test.
    enter_lazy_tlb(k, 2);
    flush_tlb_func(k, 2, 0);
    assert.equal(k.get(k.C.loaded_mm, 2), A, "INVLPGB keeps it current: it stays, lazy");
    assert.equal(k.get(k.C.is_lazy, 2), 1);
  });
});

describe("item 7: secondary TLBs of an SVA-bound mm", () => {
  test("flush_tlb_mm_range() ends with mmu_notifier_arch_invalidate_secondary_tlbs(): one IOTLB/device-TLB invalidation per flush while bound, none after unbind or exit_mmap's release", () => {
    const run = (bound: boolean) =>
      runScenario(
        scenario(`
name: sva
machine: { cpus: 1 }
devices: { dsa0: { wq_depth: 4, latency_ns: 1000 } }
processes:
  - name: p
    program:
      ${bound ? "- bind: dsa0" : "- compute: 1"}
      - touch: 2
      - munmap: 1
      - mprotect: 2
      ${bound ? "- unbind: dsa0" : "- compute: 1"}
      - touch: 1
      - munmap: 1
`),
      );
    const b = run(true);
    const u = run(false);
    assert.equal(b.violations_total, 0);
    assert.equal(u.metrics.secondary_tlb_flushes, 0);
    assert.equal(b.metrics.secondary_tlb_flushes, 2, "the munmap and the mprotect while bound");
    assert.ok(b.metrics.cycles_total > u.metrics.cycles_total);
  });
});
