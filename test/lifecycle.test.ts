// Process lifecycle and refcounts: fork, threads, CLONE_VM, exec and exit
// end with every task gone and every mm freed exactly once (but for the ones
// idle CPUs still borrow lazily), and the kernel's order of exit_mm, mmput,
// __mmput, exit_files and __mmdrop is the one kernel/exit.c and fork.c have.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Engine } from "../src/engine/engine.js";
import type { Kernel } from "../src/kernel/kernel.js";
import { mmdropHooks } from "../src/kernel/mm.js";
import { MM_FREE, MM_LIVE, MM_ZOMBIE, PF_IDLE, TASK_FREE } from "../src/machine/state.js";
import { runScenario, type SchedulerName } from "../src/run/session.js";
import type { CompiledScenario } from "../src/scenario/compile.js";
import { bootEngine, builtin, drive, Recorder, type StepInfo, scenario } from "./helpers.js";

// --- the workload mixes, with the counts each one must produce ----------------

interface Mix {
  name: string;
  cs: (seed: number) => CompiledScenario;
  /** Expected counts, derived from the program text (see each comment). */
  forks: number;
  execs: number;
  exits: number;
  /** Boot-time mms (one per initial process) + one per fork (dup_mm) + one per exec. */
  mmAllocs: number;
}

const MIXES: Mix[] = [
  {
    // 3 processes x repeat 5 x one fork; each child exits: 3 + 15 exits.
    name: "fork + exit",
    cs: (seed) =>
      scenario(
        `name: fork-exit
machine: { cpus: 2 }
processes:
  - name: p
    count: 3
    program:
      repeat: 5
      do:
        - compute: 10000
        - fork:
            - compute: 5000
            - exit: 0
        - sleep: 20000
`,
        { seed },
      ),
    forks: 15,
    execs: 0,
    exits: 18,
    mmAllocs: 3 + 15,
  },
  {
    // 2 processes x 2 threads x repeat 3 x one clone_thread: 12 threads, 4 + 12 exits, no new mm.
    name: "threads",
    cs: (seed) =>
      scenario(
        `name: threads
machine: { cpus: 2 }
processes:
  - name: p
    count: 2
    threads: 2
    program:
      repeat: 3
      do:
        - clone_thread:
            - compute: 3000
        - compute: 2000
        - yield: true
`,
        { seed },
      ),
    forks: 12,
    execs: 0,
    exits: 16,
    mmAllocs: 2,
  },
  {
    // 2 processes x repeat 2 x one clone_vm whose child execs: 4 clones, 4 execs (4 new mms).
    name: "clone_vm + exec",
    cs: (seed) =>
      scenario(
        `name: vm-exec
machine: { cpus: 2 }
processes:
  - name: p
    count: 2
    program:
      repeat: 2
      do:
        - clone_vm:
            - compute: 1000
            - exec:
                - compute: 2000
                - syscall: 500
        - compute: 1000
`,
        { seed },
      ),
    forks: 4,
    execs: 4,
    exits: 6,
    mmAllocs: 2 + 4,
  },
  {
    // 2 processes x repeat 3 x (one fork + the child's clone_thread) = 12 clones;
    // each forked child execs once (6 execs, killing its thread if it still lives).
    name: "fork + thread + exec",
    cs: (seed) =>
      scenario(
        `name: fork-thread-exec
machine: { cpus: 3 }
processes:
  - name: p
    count: 2
    program:
      repeat: 3
      do:
        - fork:
            - clone_thread:
                - syscall: 1000
            - exec:
                - compute: 1000
                - exit: 3
        - sleep: 5000
`,
        { seed },
      ),
    forks: 12,
    execs: 6,
    exits: 14,
    mmAllocs: 2 + 6 + 6,
  },
  {
    // scenarios/process-lifecycle.yaml: 2 threads x repeat 4 x (clone_thread, clone_vm,
    // fork whose child clones a thread) = 32 clones; each clone_vm child execs: 8 execs.
    // mms: 1 at boot + 8 forks + 8 execs.
    name: "scenarios/process-lifecycle.yaml",
    cs: (seed) => builtin("process-lifecycle", { seed }),
    forks: 32,
    execs: 8,
    exits: 34,
    mmAllocs: 1 + 8 + 8,
  },
];

/** mms still allocated at the end must be exactly those idle CPUs borrow (or a switch still holds). */
function lazilyHeld(k: Kernel): Set<number> {
  const held = new Set<number>();
  for (let cpu = 0; cpu < k.params.cpus; cpu++) {
    const a = k.get(k.T.active_mm, k.get(k.C.idle, cpu));
    if (a !== 0) held.add(a);
    const p = k.get(k.C.prev_mm, cpu);
    if (p !== 0) held.add(p);
  }
  return held;
}

/** Runs `fn` with an __mmdrop hook installed, removing it afterwards. */
function withMmdropHook<T>(hook: (k: Kernel, mm: number, cpu: number) => void, fn: () => T): T {
  mmdropHooks.push(hook);
  try {
    return fn();
  } finally {
    const i = mmdropHooks.indexOf(hook);
    if (i >= 0) mmdropHooks.splice(i, 1);
  }
}

function checkMixRun(mix: Mix, sched: SchedulerName, seed: number): void {
  const cs = mix.cs(seed);
  const { k, e } = bootEngine(cs, sched, seed);
  /** Allocation generation of every mm __mmdrop freed, in order. */
  const freedGens: number[] = [];
  const { quiescent } = withMmdropHook(
    (hk, mm) => {
      if (hk === k) freedGens.push(hk.get(hk.M.gen, mm));
    },
    () => drive(e, {}, 1_000_000),
  );
  const where = `${mix.name}, ${sched} seed ${seed}`;
  const m = k.metrics;
  assert.ok(quiescent, `${where}: the run did not complete`);
  assert.deepEqual(k.violations, [], `${where}: violations`);
  assert.equal(k.violationCount, 0, where);
  assert.equal(m.fork_failures, 0, `${where}: fork failures`);
  assert.equal(m.forks, mix.forks, `${where}: forks`);
  assert.equal(m.execs, mix.execs, `${where}: execs`);
  assert.equal(m.exits, mix.exits, `${where}: exits`);
  assert.equal(m.mm_allocs, mix.mmAllocs, `${where}: mm_allocs`);

  // Every task slot but the idle tasks' is free again.
  for (let t = 1; t < k.L.task.count; t++) {
    if ((k.get(k.T.flags, t) & PF_IDLE) !== 0) continue;
    assert.equal(k.get(k.T.state, t), TASK_FREE, `${where}: task slot ${t} not freed`);
  }
  assert.equal(k.get(k.G.nr_user_tasks, 0), 0, where);
  assert.equal(k.get(k.G.nr_files, 0), 0, `${where}: files_structs left`);

  // Every mm allocated is freed exactly once, but for those idle CPUs still borrow.
  const held = lazilyHeld(k);
  assert.equal(m.mm_allocs - m.mm_frees, held.size, `${where}: allocs - frees vs lazily held mms`);
  assert.equal(k.get(k.G.nr_mms, 0), held.size, where);
  assert.equal(freedGens.length, m.mm_frees, where);
  assert.equal(new Set(freedGens).size, freedGens.length, `${where}: an mm was freed twice`);
  const heldGens = [...held].map((mm) => k.get(k.M.gen, mm));
  const everyGen = [...freedGens, ...heldGens].sort((a, b) => a - b);
  const allocated = Array.from({ length: k.get(k.G.mm_gen, 0) }, (_, i) => i + 1);
  assert.deepEqual(everyGen, allocated, `${where}: every allocation is freed or lazily held, once`);
  for (const mm of held) {
    assert.equal(k.get(k.M.state, mm), MM_ZOMBIE, `${where}: held mm ${mm} is torn down`);
    assert.equal(k.get(k.M.users, mm), 0, where);
  }
  for (let mm = 1; mm < k.L.mm.count; mm++) {
    if (!held.has(mm)) assert.equal(k.get(k.M.state, mm), MM_FREE, `${where}: mm ${mm} still allocated`);
  }
}

describe("process lifecycle: counts and refcounts", () => {
  for (const mix of MIXES) {
    test(`${mix.name}: every run completes clean, with the program's forks/execs/exits and no mm leak (sim, seeds 1-4)`, () => {
      for (const seed of [1, 2, 3, 4]) checkMixRun(mix, "sim", seed);
    });
  }

  for (const mix of MIXES) {
    test(`${mix.name}: the same under the random scheduler (seeds 1-12)`, () => {
      for (let seed = 1; seed <= 12; seed++) checkMixRun(mix, "random", seed);
    });
  }

  test("the no-leak invariant is armed: an mm_count reference that nobody holds is reported at the end", () => {
    // A clean run first; then one mm_count reference that no CPU holds must be reported.
    const { k, e } = bootEngine(MIXES[0].cs(1));
    drive(e, {});
    assert.equal(k.violationCount, 0);
    const held = [...lazilyHeld(k)];
    assert.ok(held.length > 0, "some idle CPU borrows an mm at the end");
    k.add(k.M.count, held[0], 1); // a reference nobody holds
    e.checkEnd();
    assert.ok(
      k.violations.some((v) => v.property === "no-leak"),
      "an extra mm_count reference is reported as a leak",
    );
  });
});

// --- ordering, step by step ---------------------------------------------------

interface Row extends StepInfo {
  /** The kernel's step counter once the step ran. */
  stepNo: number;
  users: number;
  count: number;
  state: number;
  files: number;
}

/** Run to the end, one row per transition with the watched mm's and files' counts after it. */
function recordRun(
  k: Kernel,
  e: Engine,
  watch: () => { mm: number; files: number },
): { rows: Row[]; frees: { mm: number; stepNo: number; cpu: number; task: number; during: string }[] } {
  const rows: Row[] = [];
  const frees: { mm: number; stepNo: number; cpu: number; task: number; during: string }[] = [];
  let current: StepInfo | null = null;
  withMmdropHook(
    (hk, mm, cpu) => {
      if (hk !== k) return;
      assert.equal(hk.get(hk.M.count, mm), 0, `__mmdrop of mm ${mm} with mm_count > 0`);
      assert.equal(hk.get(hk.M.users, mm), 0, `__mmdrop of mm ${mm} with mm_users > 0`);
      assert.equal(hk.get(hk.M.state, mm), MM_ZOMBIE, `__mmdrop of mm ${mm} before __mmput`);
      frees.push({ mm, stepNo: hk.stepNo, cpu, task: hk.curr(cpu), during: current?.name ?? "?" });
    },
    () =>
      drive(e, {
        before: (s) => {
          current = s;
        },
        after: (s) => {
          const { mm, files } = watch();
          rows.push({
            ...s,
            stepNo: k.stepNo,
            users: k.get(k.M.users, mm),
            count: k.get(k.M.count, mm),
            state: k.get(k.M.state, mm),
            files: files === 0 ? -1 : k.get(k.F.count, files),
          });
        },
      }),
  );
  assert.deepEqual(k.violations, []);
  return { rows, frees };
}

/** User tasks (not idle) in use now. */
function userTasks(k: Kernel): number[] {
  const out: number[] = [];
  for (let t = 1; t < k.L.task.count; t++) {
    if (k.get(k.T.state, t) !== TASK_FREE && (k.get(k.T.flags, t) & PF_IDLE) === 0) out.push(t);
  }
  return out;
}

const indexOf = (rows: Row[], task: number, name: string, from = 0) =>
  rows.findIndex((r, i) => i >= from && r.task === task && r.name === name);

describe("process lifecycle: the order of exit", () => {
  test("a 2-thread process: mm_users drops per thread, __mmput at the last exit_mm, __mmdrop once mm_count is 0, exit_files after exit_mm", () => {
    const cs = scenario(`name: pair
machine: { cpus: 1 }
processes:
  - name: pair
    threads: 2
    program:
      - compute: 1000
  - name: later
    program:
      - compute: 1000
`);
    const { k, e } = bootEngine(cs);
    const [a, b, other] = userTasks(k);
    const M = k.get(k.T.mm, a);
    const F = k.get(k.T.files, a);
    assert.equal(k.get(k.T.mm, b), M, "threads share the mm");
    assert.notEqual(k.get(k.T.mm, other), M);
    assert.equal(k.get(k.M.users, M), 2);
    assert.equal(k.get(k.M.count, M), 1);
    assert.equal(k.get(k.F.count, F), 2);

    const entered: { task: number; path: string }[] = [];
    k.trace = new Recorder({ pathEnter: (_cpu, task, path) => entered.push({ task, path }) });
    const { rows, frees } = recordRun(k, e, () => ({ mm: M, files: F }));

    // mm_users drops by one per thread's mmput: 2 -> 1 -> 0.
    const decs = rows.filter((r) => r.name === "mmput.atomic_dec_and_test" && (r.task === a || r.task === b));
    assert.deepEqual(
      decs.map((r) => r.users),
      [1, 0],
    );
    const [firstDec, lastDec] = decs;
    assert.notEqual(firstDec.task, lastDec.task, "one mmput per thread");

    // __mmput (MM_ZOMBIE) exactly once, by the thread whose mmput took mm_users to 0, right after it.
    const mmputs = rows.filter((r) => r.name === "mmput.__mmput" && (r.task === a || r.task === b));
    const zombieAt = rows.findIndex((r) => r.state === MM_ZOMBIE);
    assert.equal(mmputs.length, 1);
    assert.equal(mmputs[0].task, lastDec.task);
    assert.equal(rows[zombieAt], mmputs[0], "the mm becomes a zombie at __mmput and not before");
    assert.ok(
      rows.slice(0, zombieAt).every((r) => r.state === MM_LIVE),
      "live until then",
    );
    assert.ok(rows.indexOf(lastDec) < zombieAt);

    // Each exit_mm takes the lazy-TLB reference (mm_count + 1) before its mmput.
    for (const t of [a, b]) {
      const at = indexOf(rows, t, "do_exit.exit_mm");
      assert.ok(at >= 0, `task ${t} ran exit_mm`);
      assert.equal(rows[at].count, (at > 0 ? rows[at - 1].count : 1) + 1, "mmgrab_lazy_tlb in exit_mm");
    }

    // __mmdrop of M once, after __mmput, when the CPU switched away from the lazy mm:
    // in finish_task_switch on a task that is neither thread.
    const freesOfM = frees.filter((f) => f.mm === M);
    assert.equal(freesOfM.length, 1, "M freed exactly once");
    const free = freesOfM[0];
    assert.ok(free.stepNo > mmputs[0].stepNo, "freed after __mmput");
    assert.ok(
      ["schedule.finish_task_switch", "ret_from_fork.schedule_tail"].includes(free.during),
      `freed by the lazy mmdrop of a context switch, not ${free.during}`,
    );
    assert.ok(free.task !== a && free.task !== b, "freed on another task's stack");

    // exit_files runs after exit_mm and its mmput, while files are still referenced.
    for (const t of [a, b]) {
      const exitMm = indexOf(rows, t, "do_exit.exit_mm");
      const dec = indexOf(rows, t, "mmput.atomic_dec_and_test", exitMm);
      const exitFiles = indexOf(rows, t, "do_exit.exit_files", exitMm);
      assert.ok(exitMm < dec && dec < exitFiles, `task ${t}: exit_mm -> mmput -> exit_files`);
      const before = rows[exitFiles - 1];
      assert.ok(before.files > 0, `task ${t}: files still referenced when its mm_users already dropped`);
      assert.equal(rows[exitFiles].files, before.files - 1, "exit_files drops one files reference");
    }
    assert.equal(rows[indexOf(rows, lastDec.task, "do_exit.exit_files") - 1].users, 0);

    // The same order as seen by the trace: do_exit, then mmput, then schedule (do_task_dead).
    for (const t of [a, b]) {
      const paths = entered.filter((x) => x.task === t).map((x) => x.path);
      const exit = paths.indexOf("do_exit");
      const put = paths.indexOf("mmput", exit);
      const sched = paths.indexOf("schedule", put);
      assert.ok(exit >= 0 && put > exit && sched > put, `task ${t}: ${paths.join(" ")}`);
    }
  });

  test("a CLONE_VM child that execs gets a fresh mm and leaves the parent's alive (mm_users - 1, not freed)", () => {
    const cs = scenario(`name: vm-exec
machine: { cpus: 1 }
processes:
  - name: parent
    program:
      - clone_vm:
          - exec:
              - compute: 1000
      - sleep: 200000
      - compute: 1000
`);
    const { k, e } = bootEngine(cs);
    const [parent] = userTasks(k);
    const M = k.get(k.T.mm, parent);
    let child = 0;
    let childMmAfterClone = -1;
    let childFiles = 0;
    let newMm = 0;
    let usersBeforeChildPut = -1;
    let usersAfterChildPut = -1;
    let stateAfterChildPut = -1;
    let parentExitMmStep = -1;
    let notLiveBeforeParentExit = 0;
    const frees: { mm: number; stepNo: number }[] = [];
    withMmdropHook(
      (hk, mm) => {
        if (hk === k) frees.push({ mm, stepNo: hk.stepNo });
      },
      () =>
        drive(e, {
          before: (s) => {
            if (s.name === "mmput.atomic_dec_and_test" && s.task === child && usersBeforeChildPut < 0) {
              usersBeforeChildPut = k.get(k.M.users, M);
            }
          },
          after: (s) => {
            if (child === 0 && s.name === "kernel_clone.dup_task_struct") {
              child = userTasks(k).find((t) => t !== parent) ?? 0;
            }
            if (s.name === "kernel_clone.copy_mm" && s.task === parent) {
              childMmAfterClone = k.get(k.T.mm, child);
              childFiles = k.get(k.T.files, child);
            }
            if (s.name === "do_execve.exec_mmap" && s.task === child) newMm = k.get(k.T.mm, child);
            if (s.name === "mmput.atomic_dec_and_test" && s.task === child && usersAfterChildPut < 0) {
              usersAfterChildPut = k.get(k.M.users, M);
              stateAfterChildPut = k.get(k.M.state, M);
            }
            if (s.name === "do_exit.exit_mm" && s.task === parent) parentExitMmStep = k.stepNo;
            if (parentExitMmStep < 0 && k.get(k.M.state, M) !== MM_LIVE) notLiveBeforeParentExit++;
          },
        }),
    );
    assert.deepEqual(k.violations, []);
    assert.ok(child !== 0, "the clone made a child");
    assert.equal(childMmAfterClone, M, "CLONE_VM shares the parent's mm");
    assert.notEqual(childFiles, k.get(k.T.files, parent) || -1, "without CLONE_FILES, its own files");
    assert.ok(newMm !== 0 && newMm !== M, "exec installs a fresh mm");
    assert.equal(usersBeforeChildPut, 2, "parent + CLONE_VM child");
    assert.equal(usersAfterChildPut, 1, "the exec's mmput drops the child's use of the parent's mm");
    assert.equal(stateAfterChildPut, MM_LIVE, "the parent's mm lives on");
    assert.equal(k.metrics.execs, 1);
    assert.equal(k.metrics.forks, 1);
    // The parent's mm stays live until the parent itself exits; then it is freed once, or
    // still borrowed by the idle CPU the parent left it to.
    assert.ok(parentExitMmStep > 0);
    assert.equal(notLiveBeforeParentExit, 0, "the parent's mm is live until the parent's exit_mm");
    const freesOfM = frees.filter((f) => f.mm === M);
    assert.ok(freesOfM.length <= 1);
    for (const f of freesOfM) assert.ok(f.stepNo > parentExitMmStep, "not freed before the parent's exit_mm");
    if (freesOfM.length === 0) assert.ok(lazilyHeld(k).has(M), "not freed: then lazily held at the end");
  });

  test("exec in a threaded process kills the other threads (they exit with SIGKILL) and the exec'ing task has a new mm", () => {
    for (const seed of [1, 2, 3]) {
      const cs = scenario(
        `name: de-thread
machine: { cpus: 2 }
processes:
  - name: app
    program:
      - clone_thread:
          - repeat: 1000
            do:
              - compute: 50000
              - syscall: 1000
      - compute: 20000
      - exec:
          - compute: 1000
`,
        { seed },
      );
      const { k, e } = bootEngine(cs);
      const [leader] = userTasks(k);
      const oldMm = k.get(k.T.mm, leader);
      let thread = 0;
      let deThreadStep = -1;
      let threadExit: { stepNo: number; code: number } | null = null;
      let leaderMmAfterExec = 0;
      let leaderMmUsers = -1;
      drive(e, {
        after: (s) => {
          if (thread === 0 && s.name === "kernel_clone.dup_task_struct") {
            thread = userTasks(k).find((t) => t !== leader) ?? 0;
          }
          if (s.name === "do_execve.de_thread") deThreadStep = k.stepNo;
          if (s.name === "do_exit.exit_signals" && s.task === thread && thread !== 0) {
            threadExit = { stepNo: k.stepNo, code: k.get(k.T.exit_code, thread) };
          }
          if (s.name === "do_execve.start_thread" && s.task === leader) {
            leaderMmAfterExec = k.get(k.T.mm, leader);
            leaderMmUsers = k.get(k.M.users, leaderMmAfterExec);
          }
        },
      });
      const where = `seed ${seed}`;
      assert.deepEqual(k.violations, [], where);
      assert.ok(thread !== 0, where);
      assert.ok(deThreadStep > 0, `${where}: exec ran de_thread`);
      assert.ok(threadExit !== null, `${where}: the other thread exited`);
      const te = threadExit as { stepNo: number; code: number };
      assert.ok(te.stepNo > deThreadStep, `${where}: it exited after de_thread killed it`);
      assert.equal(te.code, 9, `${where}: killed by SIGKILL, not a normal exit`);
      assert.ok(leaderMmAfterExec !== 0 && leaderMmAfterExec !== oldMm, `${where}: exec's new mm`);
      assert.equal(leaderMmUsers, 1, `${where}: the new mm has one user`);
      assert.equal(k.metrics.execs, 1, where);
      assert.equal(k.metrics.exits, 2, where);
      // The thread did not finish its 1000 iterations: it was cut short well before.
      assert.ok(k.metrics.syscalls < 1000, `${where}: ${k.metrics.syscalls} syscalls`);
    }
  });
});

describe("a thread killed by exec while it sleeps", () => {
  // The first thread sleeps long; the second execs meanwhile, and de_thread() kills the sleeper. Its
  // hrtimer must be cancelled as it dies (do_nanosleep's hrtimer_cancel), not fire later for a dead
  // or reused task slot: the forks after the exec take the freed slot.
  const SLEEP_EXEC = `name: sleep-exec
machine: { cpus: 2 }
processes:
  - name: a
    program:
      - clone_thread: [ { sleep: 1000000 }, { exit: 0 } ]
      - sleep: 1000
      - exec: [ { compute: 1000 } ]
      - fork: [ { compute: 100 } ]
      - fork: [ { compute: 100 } ]
      - compute: 2000000
`;
  for (const sched of ["sim", "random"] as const) {
    test(`leaves no timer to fire for it (${sched})`, () => {
      for (const seed of [1, 2, 3]) {
        const r = runScenario(scenario(SLEEP_EXEC, { seed }), { scheduler: sched });
        assert.deepEqual(r.violations, [], `seed ${seed}`);
        assert.equal(r.metrics.execs, 1);
      }
    });
  }
});
