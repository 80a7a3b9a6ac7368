// Fidelity of the FPU/exec paths against the kernel source (issue #15 items 2
// and 6, and the exec finding's proposed fix). Each test names the function
// it is derived from; v6.19-era sources (docs/findings/exec-pasid-activated.md
// says which copies were read).

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { xsAddr } from "../src/hw/xsave.js";
import { XFEATURE_MASK_PASID } from "../src/hw/xstate.js";
import { softirq_kernel_fpu } from "../src/kernel/fpu.js";
import { TIF_NEED_FPU_LOAD } from "../src/machine/state.js";
import { runScenario } from "../src/run/session.js";
import { loadScenarioFile } from "../src/scenario/load.js";
import { explore } from "../src/search/plain.js";
import { boundOf } from "../src/search/plan.js";
import { bootEngine, builtin, cli, drive, REPO_ROOT, scenario } from "./helpers.js";

const FIX = "exec-clears-pasid-activated";

/** The preemption bound a built-in check scenario declares (null: none). */
function boundOfBuiltin(name: string): number | null {
  return boundOf(loadScenarioFile(join(REPO_ROOT, "scenarios", `${name}.yaml`)).scenario.check);
}

// --- item 2: fpu_flush_thread() -> fpstate_reset() at exec -------------------------------------

describe("AMX permission: inherited on fork, cleared on exec (fpstate_reset() in fpu_flush_thread())", () => {
  const AMX = "machine: { cpus: 1, xfeatures: [x87, sse, avx, pkru, pasid, amx] }";

  test("a task that requested AMX forks (the child may use tiles) and execs: its first tile use is SIGILL", () => {
    // fpu_clone() -> fpu_inherit_perms(): the child gets the group leader's
    // perm; exec -> flush_thread() -> fpu_flush_thread() -> fpstate_reset():
    // fpu->perm.__state_perm = fpu_kernel_cfg.default_features (TILEDATA is
    // dynamic, not a default feature), so handle_xfd_event() ->
    // xfd_enable_feature() finds no permission: -EPERM, SIGILL.
    const r = runScenario(
      scenario(`
name: amx-exec
${AMX}
processes:
  - name: p
    program:
      - req_xcomp_perm: amx
      - fpu: [amx]                          # #NM, buffer expanded
      - fork:
          - fpu: [amx]                      # inherited permission: #NM, expanded
          - exec: [ { fpu: [amx] } ]        # permission gone: #NM, SIGILL
      - sleep: 50000
      - fpu: [amx]                          # the parent keeps its expanded buffer: no #NM
`),
    );
    assert.equal(r.violations_total, 0, JSON.stringify(r.violations));
    assert.equal(
      r.metrics.xfd_faults,
      3,
      "parent's first use, child's first use, the exec'd image's first use",
    );
    assert.equal(r.metrics.sigill, 1, "only the exec'd image dies");
    assert.equal(r.metrics.execs, 1);
  });

  test("machine.xcomp_perm grants the boot image only: after exec the request must be made again", () => {
    const yaml = (prog: string) => `
name: amx-boot-perm
machine: { cpus: 1, xfeatures: [x87, sse, avx, pkru, pasid, amx], xcomp_perm: [amx] }
processes:
  - name: p
    program: [ { fpu: [amx] }, { exec: [ ${prog} { fpu: [amx] } ] } ]
`;
    const lost = runScenario(scenario(yaml("")));
    assert.equal(lost.metrics.xfd_faults, 2);
    assert.equal(lost.metrics.sigill, 1, "the grant did not survive exec");
    const again = runScenario(scenario(yaml("{ req_xcomp_perm: amx },")));
    assert.equal(again.metrics.xfd_faults, 2);
    assert.equal(again.metrics.sigill, 0, "a new ARCH_REQ_XCOMP_PERM after exec works");
    assert.equal(again.violations_total, 0, JSON.stringify(again.violations));
  });
});

// --- item 6: fpu_clone() when the parent has TIF_NEED_FPU_LOAD --------------------------------

describe("fpu_clone() with the parent's registers not loaded: fpregs_restore_userregs(), then XSAVES into the child", () => {
  const YAML = `
name: clone-need-load
machine: { cpus: 1 }
processes:
  - name: p
    program:
      - fpu: [avx]
      - fork: [ { compute: 1000 } ]
      - compute: 1000
`;

  test("a softirq's kernel FPU use before copy_thread(): the clone restores the parent (XRSTORS) and leaves its registers live", () => {
    // fpu_clone(): fpregs_lock(); if (test_thread_flag(TIF_NEED_FPU_LOAD))
    // fpregs_restore_userregs(); save_fpregs_to_fpstate(dst_fpu);
    // fpregs_unlock(). kernel_fpu_begin() from a softirq (on an interrupt
    // exit inside the fork syscall) is one way the parent gets there.
    const { k, e } = bootEngine(scenario(YAML));
    let seen = false;
    let before = { xrstors: 0, parent: 0, avx: 0 };
    drive(e, {
      before: (s) => {
        if (s.name !== "fpu_clone.fpu_clone") return;
        softirq_kernel_fpu(k, s.cpu); // saves the live user registers, sets TIF_NEED_FPU_LOAD, clobbers
        assert.notEqual(k.get(k.T.tif, s.task) & TIF_NEED_FPU_LOAD, 0);
        before = { xrstors: k.metrics.xrstors_bytes, parent: s.task, avx: k.w[xsAddr(k, s.task, 2)] };
        assert.notEqual(before.avx, 0, "the parent wrote AVX before the fork");
      },
      after: (s) => {
        if (s.name !== "fpu_clone.fpu_clone") return;
        seen = true;
        const parent = before.parent;
        assert.ok(
          k.metrics.xrstors_bytes > before.xrstors,
          "an XRSTORS of the parent's image inside fpu_clone()",
        );
        assert.equal(
          k.get(k.T.tif, parent) & TIF_NEED_FPU_LOAD,
          0,
          "fpregs_mark_activate(): the parent is live",
        );
        assert.equal(k.get(k.C.fpregs_owner, s.cpu), parent);
        assert.equal(k.get(k.T.fpu_last_cpu, parent), s.cpu);
        // The child: the parent's AVX value, by XSAVES from the restored registers.
        let child = 0;
        for (let t = 1; t < k.L.task.count; t++)
          if (t !== parent && k.get(k.T.pid, t) > k.get(k.T.pid, parent)) child = t;
        assert.ok(child > 0);
        assert.equal(k.w[xsAddr(k, child, 2)], before.avx);
        assert.notEqual(k.get(k.T.xfeatures, child) & 4, 0);
        assert.equal(
          k.get(k.T.xfeatures, child) & XFEATURE_MASK_PASID,
          0,
          "children never inherit PASID state",
        );
        assert.notEqual(k.get(k.T.tif, child) & TIF_NEED_FPU_LOAD, 0);
      },
    });
    assert.ok(seen, "the fork ran fpu_clone()");
    assert.equal(e.k.violations.length, 0, JSON.stringify(e.k.violations));
  });

  test("with the registers live (the usual fork) there is no XRSTORS in fpu_clone(), only the child's XSAVES", () => {
    const { k, e } = bootEngine(scenario(YAML));
    let rs = -1;
    let xs = -1;
    drive(e, {
      before: (s) => {
        if (s.name !== "fpu_clone.fpu_clone") return;
        rs = k.metrics.xrstors_bytes;
        xs = k.metrics.xsaves_bytes;
      },
      after: (s) => {
        if (s.name !== "fpu_clone.fpu_clone") return;
        assert.equal(k.metrics.xrstors_bytes, rs);
        assert.ok(k.metrics.xsaves_bytes > xs);
      },
    });
    assert.ok(rs >= 0, "the fork ran fpu_clone()");
  });
});

// --- the exec finding's proposed fix --------------------------------------------------------

describe(`--kernel ${FIX}: clear pasid_activated in fpu_flush_thread()`, () => {
  test("run exec-after-activation: mainline dies of SIGSEGV (pasid-lost); with the fix the second ENQCMD is fixed up", () => {
    const bad = runScenario(builtin("exec-after-activation"));
    assert.deepEqual(
      bad.violations.map((v) => v.property),
      ["pasid-lost"],
    );
    assert.equal(bad.metrics.sigsegv, 1);
    assert.equal(bad.metrics.pasid_msr_writes, 1);
    const good = runScenario(builtin("exec-after-activation", { kernel: [FIX] }));
    assert.equal(good.violations_total, 0, JSON.stringify(good.violations));
    assert.equal(good.metrics.sigsegv, 0);
    assert.equal(good.metrics.gp_faults, 2, "one #GP per image, as Documentation/arch/x86/sva.rst describes");
    assert.equal(good.metrics.pasid_msr_writes, 2, "the fixup runs again after exec");
    assert.equal(good.metrics.enqcmd_submitted, 2);
    assert.equal(good.metrics.descriptors_completed, 2);
  });

  test("check check-exec-activation: mainline is a violation on every interleaving's first path, the fix passes", () => {
    const bound = boundOfBuiltin("check-exec-activation");
    const bad = explore(builtin("check-exec-activation").boot, [], { maxStates: 200_000 }, bound);
    assert.equal(bad.verdict, "violation");
    assert.equal(bad.finding?.property, "pasid-lost");
    const good = explore(
      builtin("check-exec-activation", { kernel: [FIX] }).boot,
      [],
      { maxStates: 200_000 },
      bound,
    );
    assert.equal(good.verdict, "pass", JSON.stringify(good.finding));
    assert.ok(good.states > 1000, `${good.states} states`);
  });

  test("every built-in check scenario, within a small budget: the fix gives mainline's verdict and no violation", () => {
    const names = readdirSync(join(REPO_ROOT, "scenarios"))
      .filter((f) => f.startsWith("check-") && f.endsWith(".yaml"))
      .map((f) => f.slice(0, -5));
    assert.ok(names.length >= 10);
    for (const name of names) {
      if (name === "check-exec-activation") continue; // above: the one the fix changes
      const main = builtin(name);
      const bound = boundOfBuiltin(name);
      const budget = { maxStates: 15_000 };
      const a = explore(main.boot, [], budget, bound);
      const b = explore(builtin(name, { kernel: [FIX] }).boot, [], budget, bound);
      assert.notEqual(b.verdict, "violation", `${name}: ${JSON.stringify(b.finding)}`);
      assert.equal(b.verdict, a.verdict, name);
      assert.equal(b.states, a.states, `${name}: no exec after activation here, so the same state space`);
    }
  });

  test("the CLI: run exits 1 on mainline and 0 with the fix; check likewise", () => {
    assert.equal(cli("run", "exec-after-activation", "--json").status, 1);
    const ok = cli("run", "exec-after-activation", "--kernel", FIX, "--json");
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).violations_total, 0);
    const dir = mkdtempSync(join(tmpdir(), "asidlab-exec-"));
    try {
      const c = cli("check", "check-exec-activation", "--kernel", FIX, "--json", "--out", join(dir, "s"));
      assert.equal(c.status, 0, c.stderr);
      assert.equal(JSON.parse(c.stdout).verdict, "pass");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// --- the device side: dedicated work queues, SVA domains per mm per IOMMU --------------------

describe("idxd_cdev_open(): a dedicated work queue takes one client (-EBUSY while it has one)", () => {
  const yaml = (wq: string) => `
name: dwq
machine: { cpus: 1 }
devices: { dsa0: { wq: ${wq} } }
processes:
  - name: a
    program:
      - bind: dsa0
      - sleep: 20000
      - unbind: dsa0
      - sleep: 40000
      - bind: dsa0          # the queue is free again
      - unbind: dsa0
  - name: b
    program:
      - sleep: 10000
      - bind: dsa0          # a holds it: -EBUSY on a dedicated queue
      - sleep: 40000
`;

  test("a second open while the first is open fails; after its release the queue opens again", () => {
    // if (idxd_wq_refcount(wq) > 0 && wq_dedicated(wq)) { rc = -EBUSY; goto failed; }
    // before iommu_sva_bind_device(): no PASID for the refused mm.
    const d = runScenario(scenario(yaml("dedicated")));
    assert.equal(d.violations_total, 0, JSON.stringify(d.violations));
    assert.equal(d.metrics.bind_failures, 1, "b's open: -EBUSY");
    assert.equal(d.metrics.pasid_allocs, 1, "only a's mm got a PASID");
    const sh = runScenario(scenario(yaml("shared")));
    assert.equal(sh.metrics.bind_failures, 0, "a shared queue takes any number of clients");
    assert.equal(sh.metrics.pasid_allocs, 2);
  });
});

describe("iommu_sva_bind_device(): one SVA domain per mm per IOMMU, domain->users counts its devices", () => {
  const yaml = (iommus: [string, string]) => `
name: sva-domains
machine: { cpus: 1 }
devices: { dsa0: { iommu: ${iommus[0]} }, iax0: { iommu: ${iommus[1]} } }
processes:
  - name: p
    program: [ { bind: dsa0 }, { bind: iax0 }, { sleep: 10000 }, { unbind: iax0 }, { sleep: 10000 }, { unbind: dsa0 } ]
`;
  /** mm_count of the process's mm after each step of the run, deduplicated in order. */
  function mmCounts(iommus: [string, string]): number[] {
    const { k, e } = bootEngine(scenario(yaml(iommus)));
    const seen: number[] = [];
    let mm = 0;
    drive(e, {
      after: (s) => {
        if (s.task <= 0 || s.cpu < 0) return;
        const m = k.get(k.T.mm, s.task);
        if (mm === 0 && m !== 0) mm = m;
        if (mm === 0 || k.get(k.T.mm, s.task) !== mm) return;
        const c = k.get(k.M.count, mm);
        if (seen[seen.length - 1] !== c) seen.push(c);
      },
    });
    assert.equal(e.k.violations.length, 0, JSON.stringify(e.k.violations));
    return seen;
  }

  test("two devices behind one IOMMU: the second bind reuses the mm's domain (no second mmgrab), the last unbind frees it", () => {
    // list_for_each_entry(domain, &mm->iommu_mm->sva_domains, next) { ...
    // iommu_attach_device_pasid() ...; domain->users++; } before
    // iommu_sva_domain_alloc() (its mmgrab); iommu_sva_unbind_device():
    // if (--domain->users == 0) { list_del(); iommu_domain_free(); } (mmdrop).
    const one = mmCounts(["dmar0", "dmar0"]);
    const two = mmCounts(["dmar0", "dmar1"]);
    const peak = (xs: number[]) => Math.max(...xs);
    assert.equal(peak(two) - peak(one), 1, `one domain instead of two: ${one} vs ${two}`);
  });
});

// --- the C reproducer compiles ----------------------------------------------------------------

describe("docs/findings/repro-exec-enqcmd.c", () => {
  const gcc = spawnSync("gcc", ["--version"], { encoding: "utf8" });
  test("compiles with gcc -c -Wall -Werror (skipped without gcc)", {
    skip: gcc.status !== 0 ? "no gcc" : false,
  }, () => {
    const dir = mkdtempSync(join(tmpdir(), "asidlab-repro-"));
    try {
      execFileSync(
        "gcc",
        [
          "-c",
          "-std=gnu11",
          "-O2",
          "-Wall",
          "-Wextra",
          "-Werror",
          join(REPO_ROOT, "docs", "findings", "repro-exec-enqcmd.c"),
          "-o",
          join(dir, "repro.o"),
        ],
        { stdio: "pipe" },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
