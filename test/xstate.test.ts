// XSTATE: the layout from CPUID, XSAVES/XRSTORS and their bytes, AMX and XFD,
// kernel FPU use, the update/replace helpers of seed 004, and the eager PASID
// MSR policies of seed 000 beside the mainline #GP fixup.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  MSR_IA32_PASID_VALID,
  rdmsr_pasid,
  xreg_value as xreg,
  xs_pasid,
  xsave_image,
} from "../src/hw/xsave.js";
import {
  buildXstateLayout,
  XFEATURE_MASK_PASID,
  XFEATURE_PASID,
  XFEATURE_XTILE_CFG,
  XFEATURE_XTILE_DATA,
  type XstateLayout,
  xfeature_get_offset,
  xstate_calculate_size,
} from "../src/hw/xstate.js";
import { runScenario } from "../src/run/session.js";
import { compileScenario } from "../src/scenario/compile.js";
import { InputError } from "../src/scenario/errors.js";
import { loadScenarioFile, loadScenarioString } from "../src/scenario/load.js";
import { bootEngine, cli, drive, scenario } from "./helpers.js";

const run = (yaml: string, policy: string[] = [], kernel: string[] = []) =>
  runScenario(compileScenario(loadScenarioString(yaml, "t.yaml"), { policy, kernel }));

const SPR = ["x87", "sse", "avx", "opmask", "zmm_hi256", "hi16_zmm", "pkru", "pasid", "amx"];

function layout(names: string[], cpuid = {}): XstateLayout {
  const L = buildXstateLayout(names, cpuid);
  if ("error" in L) throw new Error(L.error);
  return L;
}

const bits = (...nrs: number[]) => nrs.reduce((m, i) => m | (1 << i), 0);

describe("XSTATE layout", () => {
  test("compacted offsets follow each buffer's xcomp_bv: the reference's worked example puts PASID at 2440", () => {
    const L = layout(SPR);
    const xcomp = bits(2, 5, 6, 7, 9, 10, 17);
    const at = (nr: number) => xfeature_get_offset(L, xcomp, nr);
    assert.deepEqual(
      [at(2), at(5), at(6), at(7), at(9), at(10), at(17)],
      [576, 832, 896, 1408, 2432, 2440, 2496],
    );
    assert.equal(xstate_calculate_size(L, xcomp), 2560);
    const withTiles = xcomp | (1 << XFEATURE_XTILE_DATA);
    assert.equal(xfeature_get_offset(L, withTiles, XFEATURE_XTILE_DATA), 2560);
    assert.equal(xstate_calculate_size(L, withTiles), 10752);
    assert.equal(xfeature_get_offset(L, xcomp, XFEATURE_XTILE_DATA), -1, "not in a default buffer");
  });

  test("the default buffer leaves the dynamic TILEDATA out; PASID is supervisor", () => {
    const L = layout(SPR);
    assert.equal(L.defaultXcomp & (1 << XFEATURE_XTILE_DATA), 0);
    assert.notEqual(L.defaultXcomp & (1 << XFEATURE_XTILE_CFG), 0);
    assert.equal(L.supervisor, XFEATURE_MASK_PASID);
    assert.equal(L.sizes[XFEATURE_PASID], 8);
    assert.equal(L.sizes[XFEATURE_XTILE_DATA], 8192);
  });

  test("an inconsistent CPUID table is refused: wrong size, unaligned aligned component, overlap, half of AVX-512 or AMX", () => {
    const err = (names: string[], cpuid = {}) => {
      const L = buildXstateLayout(names, cpuid);
      assert.ok("error" in L, JSON.stringify(L));
      return L.error;
    };
    assert.match(
      err(SPR, { avx: { size: 128 } }),
      /size 128 does not match struct ymmh_struct \(256 bytes\)/,
    );
    assert.match(
      err(SPR, { amx_tiledata: { offset: 2820 } }),
      /64-byte aligned but its standard offset 2820/,
    );
    assert.match(err(SPR, { opmask: { offset: 600 } }), /overlaps 'avx'/);
    assert.match(err(SPR, { pasid: { offset: 3000 } }), /supervisor component/);
    assert.match(err(["avx", "opmask"]), /AVX-512 needs all three/);
    assert.match(err(["amx_tiledata"]), /come together/);
    assert.match(err(["avx"], { pkru: { size: 8 } }), /not in machine.xfeatures/);
    assert.match(err(SPR, { avx2: {} }), /unknown XSTATE component 'avx2'/);
  });

  test("bad XSTATE input in a scenario is a located one-line error with exit 2", () => {
    const yaml = `name: t
machine:
  xfeatures: [x87, sse, avx, pkru, pasid]
  cpuid_xstate: { avx: { size: 100 } }
processes: [ { name: p, program: [ { compute: 1 } ] } ]
`;
    assert.throws(
      () => scenario(yaml),
      (e: unknown) =>
        e instanceof InputError &&
        /^t\.yaml:4:\d+: machine\.cpuid_xstate\.avx\.size: size 100/.test(e.message),
    );
    const sup = `name: t
processes: [ { name: p, program: [ { fpu: [pasid] } ] } ]
`;
    assert.throws(() => scenario(sup), /supervisor component/);
    const perm = `name: t
machine: { xcomp_perm: [amx] }
processes: [ { name: p, program: [ { compute: 1 } ] } ]
`;
    assert.throws(() => scenario(perm), /AMX is not in machine.xfeatures/);
    const r = cli("run", "test/fixtures/fpu-no-amx.yaml");
    assert.equal(r.status, 2);
    assert.equal(r.stdout, "");
  });
});

describe("XSAVES and XRSTORS", () => {
  test("the saved image has bit 10 clear before activation and P | 0x80000000 at the computed offset after the next XSAVES", () => {
    const cs = scenario(`
name: image
machine: { cpus: 1, xfeatures: [x87, sse, avx, opmask, zmm_hi256, hi16_zmm, pkru, pasid, amx_tilecfg, amx_tiledata] }
devices: { dsa0: {} }
processes:
  - name: app
    program: [ { fpu: [avx] }, { yield: true }, { bind: dsa0 }, { enqcmd: dsa0 }, { yield: true }, { wait: dsa0 }, { unbind: dsa0 } ]
  - name: other
    program: [ { compute: 1000 }, { yield: true }, { compute: 1000 }, { yield: true } ]
`);
    const { k, e } = bootEngine(cs);
    const app = cs.boot.params.cpus + 1;
    const L = k.model.xstate;
    const pasidAt = xfeature_get_offset(L, k.get(k.T.xcomp_bv, app), XFEATURE_PASID);
    assert.equal(pasidAt, 2440, "the default SPR buffer: PASID at 2440");
    const seen: { bv: number; word: number; pasid: number }[] = [];
    let lastBv = -1;
    drive(e, {
      after: () => {
        const bv = k.get(k.T.xfeatures, app);
        if (bv === lastBv || k.get(k.T.mm, app) === 0) return; // (and not once the task is gone)
        lastBv = bv;
        const img = new DataView(xsave_image(k, app).buffer);
        assert.equal(xfeature_get_offset(L, k.get(k.T.xcomp_bv, app), XFEATURE_PASID), pasidAt);
        seen.push({ bv, word: img.getUint32(pasidAt, true), pasid: k.get(k.M.pasid, k.get(k.T.mm, app)) });
      },
    });
    const before = seen.find((s) => (s.bv & (1 << 2)) !== 0);
    assert.ok(before, "an XSAVES saved AVX");
    assert.equal(before.bv & XFEATURE_MASK_PASID, 0, "bit 10 clear before activation");
    const after = seen.find((s) => (s.bv & XFEATURE_MASK_PASID) !== 0);
    assert.ok(after, "an XSAVES after the fixup saved the PASID");
    assert.equal(after.word, (after.pasid | MSR_IA32_PASID_VALID) >>> 0);
    assert.equal(after.word, 0x80000001);
  });

  test("XSAVES writes only what is not in init state: a task that never touches AVX moves fewer bytes than one that does", () => {
    const yaml = (ops: string) => `
name: bytes
machine: { cpus: 1 }
processes:
  - name: a
    program: { repeat: 20, do: [ ${ops} { compute: 1000 }, { yield: true } ] }
  - name: b
    program: { repeat: 20, do: [ { compute: 1000 }, { yield: true } ] }
`;
    const quiet = run(yaml(""));
    const avx = run(yaml("{ fpu: [avx] },"));
    assert.equal(quiet.violations_total, 0);
    assert.equal(avx.violations_total, 0);
    assert.equal(quiet.metrics.context_switches, avx.metrics.context_switches);
    assert.ok(quiet.metrics.xsaves_bytes > 0, "the header is written at every save");
    assert.ok(
      avx.metrics.xsaves_bytes >= quiet.metrics.xsaves_bytes + 20 * 256,
      JSON.stringify([quiet.metrics.xsaves_bytes, avx.metrics.xsaves_bytes]),
    );
    assert.ok(avx.metrics.xrstors_bytes > quiet.metrics.xrstors_bytes);
  });

  test("the MSR survives preemption by a task of another mm", () => {
    const r = run(`
name: survive
machine: { cpus: 1, timeslice_ns: 100000 }
devices: { dsa0: {} }
processes:
  - name: app
    program: [ { bind: dsa0 }, { enqcmd: dsa0 }, { compute: 2000000 }, { enqcmd: dsa0 }, { wait: dsa0 }, { unbind: dsa0 } ]
  - name: hog
    program: [ { compute: 2000000 } ]
`);
    assert.equal(r.violations_total, 0, JSON.stringify(r.violations));
    assert.ok(r.metrics.context_switches >= 4, `switched away and back: ${r.metrics.context_switches}`);
    assert.equal(r.metrics.gp_faults, 1, "one #GP: the second ENQCMD found the MSR restored");
    assert.equal(r.metrics.enqcmd_submitted, 2);
  });

  test("kernel_fpu_begin saves the user state first; the way out restores it", () => {
    const r = run(`
name: kfpu
machine: { cpus: 1 }
processes:
  - name: p
    program: [ { fpu: [avx] }, { kernel_fpu: true }, { kernel_fpu: true } ]
`);
    assert.equal(r.violations_total, 0, JSON.stringify(r.violations));
    assert.equal(r.metrics.kernel_fpu, 2);
    // The first save writes AVX; the second finds it unchanged since the XRSTORS
    // from this same buffer and skips it (the modified optimisation).
    // (The exiting task's last switch saves a header too.)
    assert.ok(r.metrics.xsaves_bytes >= 64 + 256 + 64, `${r.metrics.xsaves_bytes}`);
    assert.ok(r.metrics.xsaves_bytes < 2 * (64 + 256), `AVX saved once: ${r.metrics.xsaves_bytes}`);
    assert.equal(
      r.metrics.xrstors_bytes,
      64 + 2 * (64 + 256),
      "the first entry to user (all init), then AVX after each",
    );
  });
});

describe("AMX", () => {
  const amx = (perm: string) => `
name: amx
machine: { cpus: 1, xfeatures: [x87, sse, avx, pkru, pasid, amx] }
processes:
  - name: p
    program: [ ${perm} { fpu: [amx] }, { yield: true }, { fpu: [amx] } ]
  - name: q
    program: [ { yield: true } ]
`;
  test("tile use without ARCH_REQ_XCOMP_PERM is SIGILL, after the XFD #NM", () => {
    const r = run(amx(""));
    assert.equal(r.violations_total, 0, JSON.stringify(r.violations));
    assert.equal(r.metrics.xfd_faults, 1);
    assert.equal(r.metrics.sigill, 1);
  });

  test("with permission the first tile op expands the buffer once and TILEDATA's 8 KiB move at each switch", () => {
    const r = run(amx("{ req_xcomp_perm: amx },"));
    assert.equal(r.violations_total, 0, JSON.stringify(r.violations));
    assert.equal(r.metrics.xfd_faults, 1, "one #NM: then the buffer has TILEDATA");
    assert.equal(r.metrics.sigill, 0);
    assert.ok(r.metrics.xsaves_bytes >= 8192, `${r.metrics.xsaves_bytes}`);
    assert.ok(r.metrics.xrstors_bytes >= 8192, `${r.metrics.xrstors_bytes}`);
  });

  test("machine.xcomp_perm grants it from the start; without AMX on the machine the request fails with EINVAL", () => {
    const r = runScenario(
      compileScenario(
        loadScenarioString(amx("").replace("xfeatures:", "xcomp_perm: [amx], xfeatures:"), "t.yaml"),
      ),
    );
    assert.equal(r.metrics.sigill, 0);
    const noAmx = run(`
name: noamx
processes:
  - name: p
    program: [ { req_xcomp_perm: amx }, { compute: 1000 } ]
`);
    assert.equal(noAmx.violations_total, 0);
    assert.equal(noAmx.metrics.sigill, 0, "the op returns -EINVAL and the task goes on");
  });
});

describe("changing one component: update vs replace (seed 004)", () => {
  const writer = `
name: writer
machine: { cpus: 1, xfeatures: [x87, sse, avx, pkru, pasid, amx], xcomp_perm: [amx] }
processes:
  - name: p
    program: { repeat: 10, do: [ { fpu: [amx] }, { yield: true }, { xstate_write: [amx_tiledata] }, { xstate_write: [pkru] } ] }
  - name: q
    program: { repeat: 10, do: [ { yield: true } ] }
`;
  test("update costs more than replace for TILEDATA: it materialises 8 KiB first", () => {
    const upd = run(writer, ["xstate_helper=update"]);
    const rep = run(writer, ["xstate_helper=replace"]);
    for (const r of [upd, rep]) assert.equal(r.violations_total, 0, JSON.stringify(r.violations));
    assert.equal(upd.metrics.context_switches, rep.metrics.context_switches);
    assert.ok(upd.metrics.xstate_helper_bytes >= rep.metrics.xstate_helper_bytes + 10 * 8192);
    assert.ok(upd.metrics.cycles_total > rep.metrics.cycles_total);
  });

  test("the debug copy costs more still; lock-and-load restores the whole state when the registers are not live", () => {
    const rep = run(writer, ["xstate_helper=replace"]);
    const dbg = run(writer, ["xstate_helper=replace", "xstate_check=on"]);
    assert.equal(dbg.violations_total, 0);
    assert.ok(dbg.metrics.xstate_helper_bytes > rep.metrics.xstate_helper_bytes);
    assert.ok(dbg.metrics.cycles_total > rep.metrics.cycles_total);
    const lal = run(writer, ["xstate_helper=lock-and-load"]);
    assert.equal(lal.violations_total, 0, JSON.stringify(lal.violations));
  });

  test("a write to a component the task's buffer lacks is caught (get_xsave_addr() would return NULL)", () => {
    const r = run(`
name: nobuf
machine: { cpus: 1, xfeatures: [x87, sse, avx, pkru, pasid, amx] }
processes:
  - name: p
    program: [ { xstate_write: [amx_tiledata] } ]
`);
    assert.deepEqual(
      r.violations.map((v) => v.property),
      ["xstate-copy"],
    );
  });
});

describe("pasid_msr policies (seed 000)", () => {
  const demand = () => compileScenario(loadScenarioFile("scenarios/xstate-demand-fill.yaml"));
  test("N threads that each submit: N #GPs under gp-fixup, none under task-work, ipi or ctxsw-resync", () => {
    const base = runScenario(demand());
    assert.equal(base.violations_total, 0, JSON.stringify(base.violations));
    assert.equal(base.metrics.gp_faults, 8, "8 submitters, one #GP each; the 4 others none");
    assert.equal(base.metrics.pasid_msr_writes, 8);
    for (const p of ["task-work", "ipi", "ctxsw-resync"]) {
      const r = runScenario(
        compileScenario(loadScenarioFile("scenarios/xstate-demand-fill.yaml"), {
          policy: [`pasid_msr=${p}`],
        }),
      );
      assert.equal(r.violations_total, 0, `${p}: ${JSON.stringify(r.violations)}`);
      assert.equal(r.metrics.gp_faults, 0, p);
      assert.equal(r.metrics.enqcmd_submitted, base.metrics.enqcmd_submitted, p);
    }
  });

  test("eager policies reach every task of the mm, CLONE_VM processes included; the lazy one only the submitters", () => {
    const r = (p: string) =>
      runScenario(
        compileScenario(loadScenarioFile("scenarios/eager-vs-lazy.yaml"), { policy: [`pasid_msr=${p}`] }),
      );
    const lazy = r("gp-fixup");
    const tw = r("task-work");
    const ipi = r("ipi");
    const resync = r("ctxsw-resync");
    for (const x of [lazy, tw, ipi, resync])
      assert.equal(x.violations_total, 0, JSON.stringify(x.violations));
    assert.equal(lazy.metrics.pasid_msr_writes, 4, "the 4 submitters");
    assert.equal(
      tw.metrics.pasid_msr_writes,
      15,
      "all 15 tasks of the mm: leader, 12 threads, 2 CLONE_VM children",
    );
    assert.equal(tw.metrics.task_works, 15);
    assert.ok(tw.metrics.ipis > 0);
    assert.equal(ipi.metrics.pasid_msr_writes, 15);
    assert.equal(ipi.metrics.task_works, 0, "5.10 updated from the IPI and at switch_to(), no task_work");
    assert.ok(
      resync.metrics.cycles_total > tw.metrics.cycles_total,
      "the per-switch check costs on every switch",
    );
  });

  test("a #GP that is not ENQCMD's, in a task that could activate, gets one fixup and replay, then SIGSEGV", () => {
    const r = run(`
name: othergp
machine: { cpus: 1 }
devices: { dsa0: {} }
processes:
  - name: p
    program: [ { bind: dsa0 }, { gp_fault: true } ]
`);
    assert.equal(r.metrics.gp_faults, 2, "the fixup's replay faults again");
    assert.equal(r.metrics.pasid_msr_writes, 1);
    assert.equal(r.metrics.sigsegv, 1);
    assert.equal(r.violations_total, 0, JSON.stringify(r.violations));
  });

  test("kernel variants apply only to their policy's code", () => {
    const yaml = `
name: v
devices: { dsa0: {} }
processes: [ { name: p, program: [ { compute: 1 } ] } ]
`;
    assert.throws(
      () => scenario(yaml, { kernel: ["ipi-in-bh"] }),
      /'ipi' code of policy.pasid_msr, which is 'gp-fixup'/,
    );
    assert.throws(
      () => scenario(yaml, { kernel: ["gp-fixup-irqs-on"], policy: ["pasid_msr=task-work"] }),
      /'gp-fixup' code of policy.pasid_msr/,
    );
    assert.doesNotThrow(() => scenario(yaml, { kernel: ["ipi-in-bh"], policy: ["pasid_msr=ipi"] }));
  });
});

describe("lifecycle", () => {
  test("thread, CLONE_VM child, forked child and the parent: who takes a #GP and who inherits", () => {
    const cs = compileScenario(loadScenarioFile("scenarios/xstate-lifecycle.yaml"));
    const r = runScenario(cs);
    assert.equal(r.violations_total, 0, JSON.stringify(r.violations));
    assert.equal(r.metrics.gp_faults, 4, "parent, thread, CLONE_VM child, forked child");
    assert.equal(r.metrics.pasid_msr_writes, 3, "the forked child's mm has no PASID: no fixup");
    assert.equal(r.metrics.sigsegv, 1);
    assert.equal(r.metrics.enqcmd_submitted, 4, "the parent's second ENQCMD needs no #GP");
  });

  test("a live MSR and the image agree with the mm after a run under every policy", () => {
    for (const p of ["gp-fixup", "ipi", "task-work", "ctxsw-resync"]) {
      const cs = compileScenario(loadScenarioFile("scenarios/eager-vs-lazy.yaml"), {
        policy: [`pasid_msr=${p}`],
      });
      const { k, e } = bootEngine(cs);
      drive(e, {
        after: (s) => {
          if (s.cpu < 0 || k.get(k.C.in_user, s.cpu) === 0) return;
          const t = k.curr(s.cpu);
          const msr = rdmsr_pasid(k, s.cpu);
          const mm = k.get(k.M.pasid, k.get(k.T.mm, t));
          if (msr !== 0) assert.equal(msr & 0xfffff, mm, `${p}: task ${t}`);
          void xs_pasid;
        },
      });
      assert.equal(k.violations.length, 0, `${p}: ${JSON.stringify(k.violations.slice(0, 2))}`);
    }
  });
});

describe("signals and softirqs", () => {
  test("signal delivery resets the user components, keeps IA32_PASID, and sigreturn brings the user ones back", () => {
    const cs = scenario(`
name: sig
machine: { cpus: 1 }
devices: { dsa0: {} }
processes:
  - name: p
    program: [ { bind: dsa0 }, { enqcmd: dsa0 }, { fpu: [avx] }, { signal: true }, { enqcmd: dsa0 }, { wait: dsa0 }, { unbind: dsa0 } ]
`);
    const { k, e } = bootEngine(cs);
    let avxBefore = -1;
    let avxAfter = -1;
    let inHandler: number[] = [];
    drive(e, {
      before: (s) => {
        if (s.name === "handle_signal.copy_fpstate_to_sigframe") avxBefore = xreg(k, 0, 2);
      },
      after: (s) => {
        if (s.name === "handle_signal.fpu__clear_user_states") inHandler = [xreg(k, 0, 2), rdmsr_pasid(k, 0)];
        if (s.name === "rt_sigreturn.fpu__restore_sig") avxAfter = xreg(k, 0, 2);
      },
    });
    assert.equal(avxAfter, avxBefore, "sigreturn restored AVX from the frame");
    assert.equal(k.violations.length, 0, JSON.stringify(k.violations));
    assert.notEqual(avxBefore, 0);
    assert.equal(inHandler[0], 0, "the handler runs with AVX in its init state");
    assert.equal(inHandler[1] & MSR_IA32_PASID_VALID, MSR_IA32_PASID_VALID, "the PASID survived");
    assert.equal(k.metrics.gp_faults, 1, "no second #GP after the signal");
    assert.equal(k.metrics.enqcmd_submitted, 2);
  });

  test("a softirq using the FPU on the ticks' exits saves the interrupted task's registers", () => {
    const yaml = (on: boolean) => `
name: softirq
machine: { cpus: 2, softirq_fpu: ${on} }
devices: { dsa0: { latency_ns: 5000 } }
processes:
  - name: p
    threads: 2
    program: [ { bind: dsa0 }, { repeat: 5, do: [ { fpu: [avx] }, { enqcmd: dsa0 }, { kernel_fpu: true }, { wait: dsa0 }, { compute: 1500000 } ] }, { unbind: dsa0 } ]
`;
    const off = run(yaml(false));
    const on = run(yaml(true));
    for (const r of [off, on]) assert.equal(r.violations_total, 0, JSON.stringify(r.violations));
    assert.ok(
      on.metrics.kernel_fpu > off.metrics.kernel_fpu,
      `${on.metrics.kernel_fpu} vs ${off.metrics.kernel_fpu}`,
    );
    assert.ok(on.metrics.xsaves_bytes > off.metrics.xsaves_bytes);
  });
});

describe("freeing a PASID while the mm lives (docs/findings.md)", () => {
  test("under an eager policy and the unbind lifetime, a task reaches user mode with the freed PASID in its MSR; never under the mm lifetime", () => {
    const cs = (msr: string, lifetime: string) =>
      compileScenario(loadScenarioFile("scenarios/short-lived-threads.yaml"), {
        policy: [`pasid_msr=${msr}`, `pasid_lifetime=${lifetime}`],
      });
    const window = runScenario(cs("task-work", "unbind"), { scheduler: "random" });
    assert.ok(window.violations.length > 0);
    assert.ok(
      window.violations.every((v) => v.property === "pasid-msr"),
      JSON.stringify(window.violations[0]),
    );
    assert.match(window.violations[0].message, /its mm's is 80000000/, "the mm has no PASID any more");
    for (const msr of ["task-work", "ipi", "ctxsw-resync"]) {
      const r = runScenario(cs(msr, "mm"), { scheduler: "random" });
      assert.equal(r.violations_total, 0, `${msr} + mm: ${JSON.stringify(r.violations[0])}`);
    }
  });
});
