// Preemption only where the kernel allows it: context switches happen with
// the scheduler's own preempt_count and never inside an interrupt; interrupts
// are taken only with IRQs on; kernel-mode preemption exists (on the way out
// of an interrupt to preemptible kernel code) and shows up where a long
// syscall meets a short tick.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Kernel } from "../src/kernel/kernel.js";
import { P_SCHEDULE, SCHEDULE, SM_PREEMPT, wake_up_process } from "../src/kernel/sched.js";
import { FR_PATH, FR_PC, TASK_DEAD, TASK_INTERRUPTIBLE } from "../src/machine/state.js";
import type { SchedulerName } from "../src/run/session.js";
import type { CompiledScenario } from "../src/scenario/compile.js";
import { explore } from "../src/search/plain.js";
import { bootEngine, builtin, drive, Recorder, scenario, taskStack } from "./helpers.js";

/** More runnable tasks than CPUs, with syscalls, sleeps and yields; short ticks. */
const contendedSmall = (seed: number) =>
  scenario(
    `name: contended-small
machine: { cpus: 2, tick_ns: 20000, timeslice_ns: 40000 }
processes:
  - name: busy
    count: 3
    threads: 2
    program:
      repeat: 8
      do:
        - compute: 30000
        - syscall: 40000
        - sleep: 10000
        - yield: true
`,
    { seed },
  );

/** One CPU, syscalls of 50 µs and a 1 µs tick: the tick always lands inside the syscall. */
const longSyscalls = (seed: number) =>
  scenario(
    `name: long-syscalls
machine: { cpus: 1, tick_ns: 1000, timeslice_ns: 2000 }
processes:
  - name: p
    count: 2
    program:
      repeat: 20
      do:
        - syscall: 50000
`,
    { seed },
  );

interface SwitchSeen {
  cpu: number;
  preemptCount: number;
  irqDepth: number;
  irqsOff: number;
}

interface PreemptSeen {
  cpu: number;
  task: number;
  preemptCount: number;
  irqDepth: number;
  /** The preempted task's kernel stack, bottom first (the preempting schedule() on top). */
  stack: string[];
  dead: boolean;
  /** A schedule() frame below that already ran __schedule (its tail not yet returned). */
  insideSchedule: boolean;
}

/** schedule() frames of task `t` below its top frame that have started executing. */
function scheduleInProgress(k: Kernel, t: number): boolean {
  const depth = k.get(k.T.depth, t);
  for (let d = 0; d < depth - 1; d++) {
    const fr = k.taskFrameAddr(t, d);
    if (k.w[fr + FR_PATH] === P_SCHEDULE.id && k.w[fr + FR_PC] > 0) return true;
  }
  return false;
}

/** Run to the end recording every context switch and every kernel preemption. */
function observe(cs: CompiledScenario, sched: SchedulerName, seed: number, maxTransitions = 400_000) {
  const { k, e } = bootEngine(cs, sched, seed);
  const switches: SwitchSeen[] = [];
  const preempts: PreemptSeen[] = [];
  k.trace = new Recorder({
    contextSwitch(cpu) {
      switches.push({
        cpu,
        preemptCount: k.get(k.C.preempt_count, cpu),
        irqDepth: k.get(k.C.irq_depth, cpu),
        irqsOff: k.get(k.C.irqs_off, cpu),
      });
    },
    pathEnter(cpu, _task, path) {
      // A preemption is schedule() entered with SM_PREEMPT (a0 = 1), from preempt_schedule_irq.
      if (path !== "schedule" || SCHEDULE.mode.get(k, k.topFrame(cpu)) !== SM_PREEMPT) return;
      const t = k.curr(cpu);
      preempts.push({
        cpu,
        task: t,
        preemptCount: k.get(k.C.preempt_count, cpu),
        irqDepth: k.get(k.C.irq_depth, cpu),
        stack: taskStack(k, t),
        dead: k.get(k.T.state, t) === TASK_DEAD,
        insideSchedule: scheduleInProgress(k, t),
      });
    },
  });
  const { quiescent } = drive(e, {}, maxTransitions);
  return { k, switches, preempts, quiescent };
}

describe("preemption only where allowed", () => {
  test("every context switch happens with preempt_count exactly 1 (the scheduler's own), IRQs off, outside any interrupt", () => {
    const runs: [string, (s: number) => CompiledScenario, SchedulerName, number[]][] = [
      ["contended-small", contendedSmall, "random", Array.from({ length: 25 }, (_, i) => i + 1)],
      ["contended-small", contendedSmall, "sim", [1, 2, 3]],
      ["scenarios/contended.yaml", (s) => builtin("contended", { seed: s }), "random", [1, 2, 3, 4, 5]],
      ["long-syscalls", longSyscalls, "random", [1, 2, 3]],
    ];
    let total = 0;
    for (const [name, cs, sched, seeds] of runs) {
      for (const seed of seeds) {
        const { switches, quiescent } = observe(cs(seed), sched, seed);
        const where = `${name}, ${sched} seed ${seed}`;
        assert.ok(quiescent, `${where}: did not complete`);
        assert.ok(switches.length > 0, `${where}: no context switch at all`);
        for (const s of switches) {
          assert.equal(s.irqDepth, 0, `${where}: switched inside an interrupt on cpu ${s.cpu}`);
          assert.equal(s.preemptCount, 1, `${where}: switched with preempt_count ${s.preemptCount}`);
          assert.equal(s.irqsOff, 1, `${where}: switched with IRQs on`);
        }
        total += switches.length;
      }
    }
    assert.ok(total > 100, `only ${total} switches seen`);
  });

  test("kernel-mode preemption happens on irq exit, only with preempt_count 0 and the interrupt frame gone", () => {
    let seedsWithPreemption = 0;
    let preemptions = 0;
    for (let seed = 1; seed <= 25; seed++) {
      const { k, preempts } = observe(contendedSmall(seed), "random", seed);
      assert.ok(
        k.metrics.preemptions <= preempts.length,
        "every counted preemption is a schedule(SM_PREEMPT)",
      );
      for (const p of preempts) {
        assert.equal(p.preemptCount, 0, `seed ${seed}: preempted with preempt_count ${p.preemptCount}`);
        assert.equal(p.irqDepth, 0, `seed ${seed}: preempted from inside the interrupt handler`);
        assert.ok(p.stack.length >= 2, `seed ${seed}: preempted from kernel code: ${p.stack.join(" ")}`);
      }
      if (k.metrics.preemptions > 0) seedsWithPreemption++;
      preemptions += k.metrics.preemptions;
    }
    assert.ok(seedsWithPreemption > 0, "no seed preempted the kernel");
    assert.ok(preemptions > 0);
  });

  test("a long syscall with a short tick is preempted inside the syscall", () => {
    // Existence: the sim on seed 1; the random scheduler on some seed of 1-10.
    for (const [sched, seeds] of [
      ["sim", [1]],
      ["random", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]],
    ] as const) {
      let inside = false;
      for (const seed of seeds) {
        const { k, preempts, quiescent } = observe(longSyscalls(seed), sched, seed);
        assert.ok(quiescent);
        assert.deepEqual(k.violations, []);
        if (preempts.some((p) => p.stack[0] === "do_syscall_64")) inside = true;
      }
      assert.ok(inside, `${sched}: a preemption inside do_syscall_64`);
    }
  });

  test("an interrupt is never taken by a CPU whose IRQs are off or that is already in an interrupt", () => {
    let irqEntries = 0;
    let stepsIrqsOff = 0;
    let pendingWhileOff = 0;
    for (const [sched, seeds] of [
      ["random", [1, 2, 3, 4, 5, 6, 7, 8]],
      ["sim", [1, 2]],
    ] as const) {
      for (const seed of seeds) {
        const { k, e } = bootEngine(contendedSmall(seed), sched, seed);
        let entered = -1;
        k.trace = new Recorder({
          pathEnter(cpu, _task, path) {
            if (path === "common_interrupt") entered = cpu;
          },
        });
        let irqsOffBefore = 0;
        let irqDepthBefore = 0;
        const { quiescent } = drive(
          e,
          {
            before(s) {
              entered = -1;
              if (s.cpu < 0) return;
              irqsOffBefore = k.get(k.C.irqs_off, s.cpu);
              irqDepthBefore = k.get(k.C.irq_depth, s.cpu);
              if (irqsOffBefore !== 0) {
                stepsIrqsOff++;
                if (k.get(k.C.pending, s.cpu) !== 0) pendingWhileOff++;
              }
            },
            after(s) {
              if (s.cpu < 0) {
                assert.equal(entered, -1, "an event transition took an interrupt");
                return;
              }
              if (entered < 0) return;
              assert.equal(entered, s.cpu, "the interrupt was taken by the CPU that stepped");
              irqEntries++;
              assert.equal(irqsOffBefore, 0, `${sched} seed ${seed}, step ${s.i}: interrupt with IRQs off`);
              assert.equal(irqDepthBefore, 0, `${sched} seed ${seed}, step ${s.i}: nested interrupt`);
            },
          },
          400_000,
        );
        assert.ok(quiescent);
      }
    }
    assert.ok(irqEntries > 0, "some interrupts were taken");
    assert.ok(stepsIrqsOff > 0, "some steps ran with IRQs off");
    assert.ok(pendingWhileOff > 0, "some interrupt was pending while IRQs were off (and had to wait)");
  });
});

describe("preemption only where allowed: regressions of bugs the random scheduler found", () => {
  test("a task that reached do_task_dead() is never preempted before its final __schedule()", () => {
    const bad: string[] = [];
    for (let seed = 1; seed <= 10; seed++) {
      const { preempts } = observe(builtin("process-lifecycle", { seed }), "random", seed, 200_000);
      const p = preempts.find((x) => x.dead);
      if (p) bad.push(`seed ${seed}: dead task ${p.task} preempted on cpu ${p.cpu}`);
    }
    assert.deepEqual(bad, []);
  });

  test("preemption never nests inside schedule(): the scheduler's preempt_count is held until schedule() returns", () => {
    const bad: string[] = [];
    for (let seed = 1; seed <= 10; seed++) {
      const { preempts } = observe(contendedSmall(seed), "random", seed);
      const p = preempts.find((x) => x.insideSchedule);
      if (p) bad.push(`seed ${seed}: task ${p.task} preempted with stack ${p.stack.join(" > ")}`);
    }
    assert.deepEqual(bad, []);
  });

  test("the kernel stack stays bounded under the random scheduler (no 'kernel-stack' findings)", () => {
    const found: string[] = [];
    for (const seed of [18, 3, 2]) {
      const { k } = observe(builtin("process-lifecycle", { seed }), "random", seed, 200_000);
      for (const v of k.violations)
        if (v.property === "kernel-stack") found.push(`seed ${seed}: ${v.message}`);
    }
    assert.deepEqual(found, []);
  });
});

describe("p->on_cpu: a wakeup never migrates a task its old CPU is still switching out", () => {
  test("woken between __switch_to and finish_task_switch, the task is queued on that CPU, not on an idle one", () => {
    const cs = scenario(
      "name: t\nmachine: { cpus: 2 }\nprocesses:\n  - { name: a, program: [ { compute: 1000 } ] }\n  - { name: b, program: [ { compute: 1000 } ] }\n",
    );
    const { k } = bootEngine(cs);
    const t = 3; // a's task (slots 1..2 are the idle tasks)
    const queued = (cpu: number) => k.get(k.C.nr_running, cpu);
    // CPU 0 has switched from t to b (curr = b) but not run finish_task_switch(t) yet; t went to sleep.
    k.set(k.T.state, t, TASK_INTERRUPTIBLE);
    k.set(k.T.on_rq, t, 0);
    k.set(k.T.cpu, t, 0);
    k.set(k.C.curr, 0, 4);
    k.set(k.C.prev_task, 0, t);
    const before = [queued(0), queued(1)];
    assert.ok(wake_up_process(k, t, 1));
    assert.deepEqual(
      [queued(0) - before[0], queued(1) - before[1]],
      [1, 0],
      "queued on CPU 0, where it is still on_cpu",
    );
    // Once finish_task_switch() has run (prev_task cleared), a wakeup may pick another CPU again.
    k.set(k.T.state, t, TASK_INTERRUPTIBLE);
    k.set(k.T.on_rq, t, 0);
    k.set(k.C.prev_task, 0, 0);
    assert.ok(wake_up_process(k, t, 1));
  });

  test("xstate-lifecycle at bound 1: no CPU frees a task that another CPU runs (the search found one at 60 k states before)", () => {
    const cs = builtin("xstate-lifecycle");
    const r = explore(cs.boot, [], { maxStates: 150_000 }, 1);
    assert.notEqual(r.verdict, "violation", JSON.stringify(r.finding?.message));
  });
});
