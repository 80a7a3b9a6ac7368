// Chrome Trace Event JSON (opens in Perfetto, chrome://tracing, Chrome
// DevTools' trace engine, speedscope). Process 0 "machine" has a track per
// CPU, a track per device and an "events" track for what happens on no CPU.
//
// A CPU's track holds a slice per task while it runs, with the kernel
// functions it executes nested inside as the kernel's call graph nests them;
// interrupts nest on top; notable events (wake-ups, exits, PASID allocation)
// and every violation are instants. The model's stack of frames is a stack of
// continuations: callHooks() pushes hooks in reverse so that the first runs
// first, syscall exit pops do_syscall_64 and pushes exit_to_user_mode in one
// step. So a frame's slice opens when its first step runs (not when it is
// pushed), and a frame pushed in the step that popped another is a tail call:
// the popped slices stay open around it and close with it. Slices nest per
// track: a context switch closes the outgoing task's slices and reopens the
// incoming task's started frames.
//
// Each slice is one complete event ("X", with its duration), written when
// it closes, so inner slices come before the slices around them in the file
// (every reader sorts a track by time). Not B/E pairs: DevTools' trace
// engine pairs B with E on one stack across all tracks, in file order, so
// slices of two CPUs that overlap in time came out as "Begin/End events
// mismatch" and were dropped (test/trace-engine.test.ts runs that engine).
//
// A device's track holds a slice per descriptor while the device serves it
// (from when it reaches the head of the queue to its completion), with a
// flow arrow per descriptor from the submitting CPU's ENQCMD (a zero-length
// slice) to it. Each end of the arrow starts at its slice's timestamp, with
// its category ("descriptor"): DevTools binds a flow event to the event of
// the same ts, track and cat, Perfetto to the slice around it.
//
// Events go to a writer as they happen (the whole trace is never held in
// memory); `maxEvents` cuts the trace at an explicit limit: every open slice
// is closed there, nothing more is written, and the metadata says
// `"truncated": true`. Timestamps are simulated microseconds of the CPU's own
// clock (the device and events tracks: the scheduler's time), never going
// back on a track.

import type { Kernel } from "../kernel/kernel.js";
import type { TraceSink } from "../machine/machine.js";
import { FR_PC } from "../machine/state.js";

/** A frame as the trace sees it: its slice has opened (its first step ran) or not; the slices it carries (tail calls). */
interface TFrame {
  name: string;
  started: boolean;
  carried: string[];
}

export interface ChromeTraceOptions {
  /** Receives the JSON text in order (a chunk is reused once the call returns); absent: kept in memory and returned by finish(). */
  write?: (chunk: string | Uint8Array) => void;
  /** Stop after this many events (every open slice is then closed; the metadata says truncated). */
  maxEvents?: number;
  /** The time of a transition that is no CPU's step (device completions), in cycles; default: the latest CPU clock. */
  now?: () => number;
  /** Told of every instant on a CPU's track, with the names of the slices open there (bottom first): vs-kernel attributes flushes by them. */
  onInstant?: (cpu: number, name: string, args: Args, open: readonly string[]) => void;
}

type Args = Record<string, number | string>;

export class ChromeTrace implements TraceSink {
  /** Where the bytes go: the writer (it must be done with a chunk when it returns), or kept. */
  private readonly emit: (chunk: string | Uint8Array) => void;
  private readonly kept: string[] = [];
  private readonly out = Buffer.allocUnsafe(1 << 20);
  private pos = 0;
  private events = 0;
  private readonly maxEvents: number;
  private readonly now: () => number;
  /** Per CPU: the slices open on its track, bottom first (index 0: the running task's). */
  private readonly open: string[][];
  /** Per track (CPUs, then devices): its open slices' start, category and args, bottom first. */
  private readonly openTs: number[][];
  private readonly openCat: string[][];
  private readonly openArgs: (Args | undefined)[][];
  /** What `instant` is told besides the trace: each instant with the names of the slices open on its track. */
  private readonly onInstant:
    | ((cpu: number, name: string, args: Args, open: readonly string[]) => void)
    | null;
  /** Per CPU: slices at the top of its track whose frames returned in the current step (closed at its end unless a tail call takes them). */
  private readonly pend: Int32Array;
  /** Per task slot: the frames of its kernel stack, bottom first, and whose they are (pid). */
  private readonly tasks = new Map<number, { pid: number; frames: TFrame[] }>();
  /** Per CPU: its interrupt stack's frames. */
  private readonly irq: TFrame[][];
  /** Per track: the last timestamp written (µs). */
  private readonly lastTs: Float64Array;
  private readonly devTid0: number;
  private readonly eventsTid: number;
  /** Per device: the descriptors in its queue, oldest first: flow id, slice name. */
  private readonly queue: { id: number; name: string; at: number; ts: number }[][];
  private readonly serving: boolean[];
  private flowId = 0;
  private violations = 0;
  private readonly names = new Map<string, string>();
  truncated = false;
  private done = false;
  /** The simulated time (µs) where the trace was cut, if it was. */
  private cutAt = -1;

  constructor(
    private readonly k: Kernel,
    private readonly clock: Float64Array,
    opts: ChromeTraceOptions = {},
  ) {
    const write = opts.write;
    this.emit =
      write === undefined
        ? (c) => this.kept.push(typeof c === "string" ? c : Buffer.from(c).toString("utf8"))
        : write;
    this.maxEvents = opts.maxEvents ?? Number.POSITIVE_INFINITY;
    this.now = opts.now ?? (() => Math.max(0, ...this.clock));
    const cpus = k.params.cpus;
    const devs = k.model.devices.length;
    this.open = Array.from({ length: cpus }, () => []);
    this.openTs = Array.from({ length: cpus + devs }, () => []);
    this.openCat = Array.from({ length: cpus + devs }, () => []);
    this.openArgs = Array.from({ length: cpus + devs }, () => []);
    this.onInstant = opts.onInstant ?? null;
    this.pend = new Int32Array(cpus);
    this.irq = Array.from({ length: cpus }, () => []);
    this.devTid0 = cpus;
    this.eventsTid = cpus + devs;
    this.lastTs = new Float64Array(cpus + devs + 1);
    this.queue = Array.from({ length: devs }, () => []);
    this.serving = new Array(devs).fill(false);
    this.emit('{"traceEvents":[\n');
    this.meta("process_name", 0, { name: "machine" });
    for (let c = 0; c < cpus; c++) this.thread(c, `CPU ${c}`);
    for (let d = 0; d < devs; d++) this.thread(this.devTid0 + d, `device ${k.model.devices[d].name}`);
    this.thread(this.eventsTid, "events");
  }

  // --- output ------------------------------------------------------------

  private q(s: string): string {
    let j = this.names.get(s);
    if (j === undefined) {
      j = JSON.stringify(s);
      if (this.names.size < 100_000) this.names.set(s, j);
    }
    return j;
  }

  private put(json: string): void {
    this.events++;
    // At most 3 bytes per UTF-16 unit, and the separator.
    if (this.pos + json.length * 3 + 2 > this.out.length) this.flushBuf();
    if (this.events > 1) this.pos += this.out.write(",\n", this.pos, "latin1");
    if (json.length * 3 > this.out.length) {
      this.flushBuf();
      this.emit(json);
    } else this.pos += this.out.write(json, this.pos, "utf8");
  }

  private flushBuf(): void {
    if (this.pos === 0) return;
    this.emit(this.out.subarray(0, this.pos));
    this.pos = 0;
  }

  /** Room for one more event; at the limit, cut the trace there (once). */
  private room(): boolean {
    if (this.done) return false;
    if (this.events < this.maxEvents) return true;
    this.cut();
    return false;
  }

  private meta(name: string, tid: number, args: Args): void {
    this.put(`{"name":"${name}","ph":"M","pid":0,"tid":${tid},"args":${JSON.stringify(args)}}`);
  }

  private thread(tid: number, name: string): void {
    this.meta("thread_name", tid, { name });
    this.meta("thread_sort_index", tid, { sort_index: tid });
  }

  /** Cycles -> µs, rounded to ns (stable output), never before the track's last event. */
  private tsAt(tid: number, cycles: number): number {
    const t = Math.round((cycles * 1000) / this.k.params.cpuMhz) / 1000;
    const last = this.lastTs[tid];
    if (t < last) return last;
    this.lastTs[tid] = t;
    return t;
  }

  private ts(cpu: number): number {
    return this.tsAt(cpu, this.clock[cpu]);
  }

  /** Open a slice on track `tid` (CPU tracks keep its name in `open` too). */
  private openSlice(tid: number, ts: number, cat: string, args?: Args): void {
    this.openTs[tid].push(ts);
    this.openCat[tid].push(cat);
    this.openArgs[tid].push(args);
  }

  /** Close the innermost open slice of track `tid` at `ts`: its complete event. */
  private closeSlice(tid: number, name: string, ts: number): void {
    const start = this.openTs[tid].pop();
    const cat = this.openCat[tid].pop();
    const args = this.openArgs[tid].pop();
    if (start === undefined || cat === undefined) return;
    // Durations in whole nanoseconds, as the timestamps are.
    this.writeSlice(tid, name, cat, start, Math.round((ts - start) * 1000) / 1000, args);
  }

  /** A slice's complete event. */
  private writeSlice(tid: number, name: string, cat: string, ts: number, dur: number, args?: Args): void {
    const a = args === undefined ? "" : `,"args":${JSON.stringify(args)}`;
    this.put(
      `{"name":${this.q(name)},"cat":"${cat}","ph":"X","ts":${ts},"dur":${dur},"pid":0,"tid":${tid}${a}}`,
    );
  }

  private begin(cpu: number, name: string, cat: string, args?: Args): void {
    if (!this.room()) return;
    this.open[cpu].push(name);
    this.openSlice(cpu, this.ts(cpu), cat, args);
  }

  /** Close the innermost open slice of `cpu`'s track (not subject to the limit: a cut closes everything). */
  private end(cpu: number): void {
    const name = this.open[cpu].pop();
    if (name === undefined) return;
    this.closeSlice(cpu, name, this.ts(cpu));
  }

  private closeAll(cpu: number): void {
    this.pend[cpu] = 0;
    while (this.open[cpu].length > 0) this.end(cpu);
  }

  /** Close the slices whose frames returned (no tail call took them). */
  private flushPend(cpu: number): void {
    let n = this.pend[cpu];
    this.pend[cpu] = 0;
    while (n-- > 0 && this.open[cpu].length > 1) this.end(cpu);
  }

  private instantAt(tid: number, ts: number, name: string, cat: string, scope: "t" | "g", args: Args): void {
    if (this.onInstant !== null && tid < this.open.length) this.onInstant(tid, name, args, this.open[tid]);
    if (!this.room()) return;
    this.put(
      `{"name":${this.q(name)},"cat":"${cat}","ph":"i","s":"${scope}","ts":${ts},"pid":0,"tid":${tid},"args":${JSON.stringify(args)}}`,
    );
  }

  // --- frames ---------------------------------------------------------------

  private taskName(t: number): string {
    const k = this.k;
    if (t === k.get(k.C.idle, k.get(k.T.cpu, t)) && t <= k.params.cpus) return `swapper/${t - 1}`;
    return `${k.programs[k.get(k.T.prog, t)].name}:${k.get(k.T.pid, t)}`;
  }

  /** Task `t`'s frames as the trace knows them (a new record when the slot changed hands). */
  private rec(t: number): { pid: number; frames: TFrame[] } {
    const pid = this.k.get(this.k.T.pid, t);
    let rec = this.tasks.get(t);
    if (rec === undefined || rec.pid !== pid) {
      rec = { pid, frames: [] };
      this.tasks.set(t, rec);
    }
    return rec;
  }

  /**
   * Task `t`'s frames, made `depth` deep: frames pushed while the task was
   * not running (fork's ret_from_fork, boot's) were not seen, and are read
   * from its stack (started if they have run a step).
   */
  private taskFrames(t: number, depth: number): TFrame[] {
    const k = this.k;
    const frames = this.rec(t).frames;
    if (frames.length > depth) frames.length = depth;
    for (let d = frames.length; d < depth; d++) {
      const fr = k.taskFrameAddr(t, d);
      frames.push({ name: k.pathNameAt(fr), started: k.w[fr + FR_PC] > 0, carried: [] });
    }
    return frames;
  }

  /** `cpu`'s interrupt stack's frames, made `depth` deep. */
  private irqFrames(cpu: number, depth: number): TFrame[] {
    const k = this.k;
    const frames = this.irq[cpu];
    if (frames.length > depth) frames.length = depth;
    for (let d = frames.length; d < depth; d++) {
      const fr = k.irqFrameAddr(cpu, d);
      frames.push({ name: k.pathNameAt(fr), started: k.w[fr + FR_PC] > 0, carried: [] });
    }
    return frames;
  }

  /** Open the slices of `t`'s started frames on `cpu`'s track (it was just switched in). */
  private reopen(cpu: number, t: number): void {
    for (const f of this.taskFrames(t, this.k.get(this.k.T.depth, t))) {
      for (const c of f.carried) this.begin(cpu, c, "kernel");
      if (f.started) this.begin(cpu, f.name, "kernel");
    }
  }

  // --- TraceSink ------------------------------------------------------------

  /** Open the running tasks' slices at the start of the run. */
  startRun(): void {
    for (let c = 0; c < this.open.length; c++) {
      const t = this.k.curr(c);
      this.begin(c, this.taskName(t), "task", { task: t, pid: this.k.get(this.k.T.pid, t) });
      this.reopen(c, t);
    }
  }

  pathEnter(cpu: number, _task: number, path: string): void {
    if (this.done) return;
    const k = this.k;
    const irqDepth = k.get(k.C.irq_depth, cpu);
    const t = k.curr(cpu);
    // The frame was just pushed: on the interrupt stack when in an interrupt, else on the task's.
    const stack =
      irqDepth > 0 ? this.irqFrames(cpu, irqDepth - 1) : this.taskFrames(t, k.get(k.T.depth, t) - 1);
    const n = this.pend[cpu];
    const open = this.open[cpu];
    const carried = n > 0 ? open.slice(open.length - n) : [];
    this.pend[cpu] = 0;
    stack.push({ name: path, started: false, carried });
  }

  pathExit(cpu: number): void {
    if (this.done) return;
    this.flushPend(cpu);
    const k = this.k;
    const irqDepth = k.get(k.C.irq_depth, cpu);
    const t = k.curr(cpu);
    // The frame was just popped: from the interrupt stack if it was one deeper, else from the task's.
    const stack =
      this.irq[cpu].length > irqDepth
        ? this.irqFrames(cpu, irqDepth + 1)
        : this.taskFrames(t, k.get(k.T.depth, t) + 1);
    const f = stack.pop();
    if (f !== undefined) this.pend[cpu] = f.carried.length + (f.started ? 1 : 0);
  }

  stepBegin(cpu: number): void {
    if (this.done) return;
    this.flushPend(cpu);
    const k = this.k;
    const irqDepth = k.get(k.C.irq_depth, cpu);
    const t = k.curr(cpu);
    const irq = this.irqFrames(cpu, irqDepth);
    const stack = irqDepth > 0 ? irq : this.taskFrames(t, k.get(k.T.depth, t));
    const top = stack[stack.length - 1];
    if (top === undefined || top.started) return;
    top.started = true;
    this.begin(cpu, top.name, "kernel");
  }

  stepEnd(cpu: number): void {
    if (this.done) return;
    this.flushPend(cpu);
  }

  contextSwitch(cpu: number, prev: number, next: number): void {
    if (this.done) return;
    this.closeAll(cpu);
    for (const f of this.irq[cpu]) {
      f.started = false;
      f.carried = [];
    }
    this.instantAt(cpu, this.ts(cpu), "sched_switch", "sched", "t", {
      prev: this.taskName(prev),
      next: this.taskName(next),
    });
    this.begin(cpu, this.taskName(next), "task", { task: next, pid: this.k.get(this.k.T.pid, next) });
    this.reopen(cpu, next);
  }

  instant(cpu: number, name: string, args: Args): void {
    if (this.done) return;
    if (cpu < 0)
      this.instantAt(this.eventsTid, this.tsAt(this.eventsTid, this.now()), name, "event", "t", args);
    else this.instantAt(cpu, this.ts(cpu), name, "event", "t", args);
  }

  submit(cpu: number, d: number, pasid: number): void {
    if (this.done || !this.room()) return;
    const id = ++this.flowId;
    const ts = this.ts(cpu);
    this.writeSlice(cpu, "ENQCMD", "descriptor", ts, 0, { pasid, device: this.k.model.devices[d].name });
    this.put(`{"name":"descriptor","cat":"descriptor","ph":"s","id":${id},"ts":${ts},"pid":0,"tid":${cpu}}`);
    this.queue[d].push({ id, name: `descriptor PASID ${pasid}`, at: this.clock[cpu], ts });
    if (!this.serving[d]) this.serve(d, this.now());
  }

  /**
   * A time on device track `tid` at least 1 ns after the ENQCMD at
   * `submitted` µs: DevTools keys a flow's two ends by their time, and two
   * ends at one time are taken for one.
   */
  private afterSubmit(tid: number, ts: number, submitted: number): number {
    if (ts > submitted) return ts;
    const t = Math.round(submitted * 1000 + 1) / 1000;
    this.lastTs[tid] = t;
    return t;
  }

  /** The device starts on the descriptor at the head of its queue (at `cycles`, not before its submission: a CPU's clock may run ahead of the scheduler's time). */
  private serve(d: number, cycles: number): void {
    const head = this.queue[d][0];
    if (head === undefined || !this.room()) return;
    const tid = this.devTid0 + d;
    const ts = this.afterSubmit(tid, this.tsAt(tid, Math.max(cycles, head.at)), head.ts);
    this.serving[d] = true;
    this.openSlice(tid, ts, "descriptor");
    this.put(
      `{"name":"descriptor","cat":"descriptor","ph":"f","bp":"e","id":${head.id},"ts":${ts},"pid":0,"tid":${tid}}`,
    );
  }

  complete(d: number, pasid: number, mm: number): void {
    if (this.done) return;
    const tid = this.devTid0 + d;
    const ts = this.tsAt(tid, this.now());
    const head = this.serving[d] ? this.queue[d].shift() : undefined;
    if (head !== undefined) this.closeSlice(tid, head.name, ts);
    this.serving[d] = false;
    this.instantAt(tid, ts, mm === 0 ? "DMA fault" : "complete", "device", "t", { pasid, mm });
    this.serve(d, this.now());
  }

  violation(cpu: number, property: string, message: string): void {
    if (this.done || this.violations >= 100) return;
    this.violations++;
    const args = { property, message };
    if (cpu >= 0) this.instantAt(cpu, this.ts(cpu), `violation: ${property}`, "violation", "t", args);
    else {
      const tid = this.eventsTid;
      this.instantAt(tid, this.tsAt(tid, this.now()), `violation: ${property}`, "violation", "g", args);
    }
  }

  // --- the end ----------------------------------------------------------------

  /** Close every open slice: the CPUs' and the devices'. */
  private closeEverything(): void {
    for (let c = 0; c < this.open.length; c++) this.closeAll(c);
    for (let d = 0; d < this.queue.length; d++) {
      const tid = this.devTid0 + d;
      const ts = this.tsAt(tid, this.now());
      const q = this.queue[d];
      if (this.serving[d] && q.length > 0) this.closeSlice(tid, q.shift()!.name, ts);
      this.serving[d] = false;
      // Descriptors still waiting in the queue: a mark each at the end, where their flow arrows land.
      for (const desc of q) {
        const name = `${desc.name} (queued)`;
        const at = this.afterSubmit(tid, this.tsAt(tid, Math.max(this.now(), desc.at)), desc.ts);
        this.openSlice(tid, at, "descriptor");
        this.put(
          `{"name":"descriptor","cat":"descriptor","ph":"f","bp":"e","id":${desc.id},"ts":${at},"pid":0,"tid":${tid}}`,
        );
        this.closeSlice(tid, name, at);
      }
      q.length = 0;
    }
  }

  /** Stop at the limit: close everything and write nothing more; detach from the kernel (the run goes on without the trace's cost). */
  private cut(): void {
    this.truncated = true;
    this.done = true;
    this.cutAt = Math.round((this.now() * 1000) / this.k.params.cpuMhz) / 1000;
    this.closeEverything();
    if (this.k.trace === this) this.k.trace = null;
  }

  /** Events written so far. */
  get count(): number {
    return this.events;
  }

  /** Where the trace was cut (simulated µs), or -1. */
  get truncatedAtUs(): number {
    return this.cutAt;
  }

  /** Close every open slice and end the JSON with its metadata; returns the whole text when no writer was given, else "". */
  finish(meta: Record<string, string | number>): string {
    if (!this.done) this.closeEverything();
    this.done = true;
    if (this.k.trace === this) this.k.trace = null;
    const m: Record<string, string | number | boolean> = {
      ...meta,
      truncated: this.truncated,
      events: this.events,
    };
    if (this.truncated) {
      m.max_events = this.maxEvents;
      m.truncated_at_us = this.cutAt;
    }
    this.flushBuf();
    const other = JSON.stringify(m);
    this.emit(`\n],"displayTimeUnit":"ns","metadata":${other},"otherData":${other}}\n`);
    return this.kept.join("");
  }
}
