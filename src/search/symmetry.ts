// Symmetry reduction (Ip and Dill's scalarsets): task, mm, files_struct,
// file and bond slots are names, not meanings. Before the plain search looks
// a state up, it is mapped to a representative of its class: live slots
// permuted among themselves (the tasks sorted by their contents, pointers
// masked; the rest in the order the tasks point at them), every pointer
// renamed (symmetry-kinds.ts), pids dropped and thread groups numbered where
// no program writes FPU registers (their values carry their writer's pid)
// and there are no global ASIDs (their sampling reads pid bits), mm
// allocation numbers (and ctx_ids) renamed onto themselves in order where
// every ctx_id is one of them. CPUs, idle tasks, devices, PASIDs and ASIDs
// stay. Any permutation gives a state of the same class, so the reduction is
// sound whichever the sort picks; the search explores the state it reached,
// never the representative, so counterexamples are real schedules. The
// representative's fingerprint is the state's own with what moves taken out
// and put back where it moves to (memory.ts's wordDelta). docs/architecture.md
// says more, and test/symmetry.test.ts what is checked.

import { INIT_MM_CTX_ID } from "../hw/tlb.js";
import type { Kernel } from "../kernel/kernel.js";
import type { LocalRef } from "../kernel/path.js";
import { HASH_HI, HASH_LO, wordDeltaHi, wordDeltaLo } from "../machine/memory.js";
import { FR_A0, FR_PATH, FRAME_WORDS } from "../machine/state.js";
import { OPCODE } from "../user/program.js";
import {
  BOND,
  CTX,
  FILE,
  FILES,
  FRAMES,
  GEN,
  kindsOf,
  MM,
  PID,
  PLAIN,
  REF_KIND,
  SBMM,
  type Slots,
  slots,
  TASK,
  TGID,
} from "./symmetry-kinds.js";

export class Symmetry {
  /** The representative's fingerprint, after `key()`. */
  lo = 0;
  hi = 0;
  private readonly w: Int32Array;
  private readonly task: Slots;
  private readonly mm: Slots;
  private readonly files: Slots;
  private readonly file: Slots;
  private readonly bond: Slots;
  private readonly regions: readonly Slots[];
  /** Pointer words outside the slot regions (glob, cpu, dev): address, kind. */
  private readonly fixedAddr: Int32Array;
  private readonly fixedKind: Int8Array;
  private fixedMask = 0;
  /** The fixed pointer words of one kind. */
  private readonly fixedTask: Int32Array;
  private readonly fixedMm: Int32Array;
  private readonly fixedSbmm: Int32Array;
  private readonly fixedCtx: Int32Array;
  private readonly ncpu: number;
  private readonly firstUser: number;
  private readonly renamePids: boolean;
  /** Each path's pointer locals, by path id. */
  private readonly refs: readonly (readonly LocalRef[])[];
  private readonly sig: Float64Array;
  private readonly anchor: Int32Array;
  private readonly mmSig: Float64Array;
  // value renaming: map[v] valid when stamp[v] === epoch
  private pidMap = new Int32Array(64);
  private pidStamp = new Int32Array(64);
  private genMap = new Int32Array(64);
  private genStamp = new Int32Array(64);
  private epoch = 0;
  private pidOn = false;
  private genOn = false;
  private readonly vals = new Int32Array(1024);

  constructor(private readonly k: Kernel) {
    const L = k.L;
    this.w = k.w;
    this.ncpu = k.params.cpus;
    this.firstUser = this.ncpu + 1;
    this.task = slots("task", L.task, L.task.f.state);
    this.mm = slots("mm", L.mm, L.mm.f.state);
    this.files = slots("files", L.files, L.files.f.count);
    this.file = slots("file", L.file, L.file.f.count);
    this.bond = slots("bond", L.bond, L.bond.f.dev);
    this.regions = [this.task, this.mm, this.files, this.file, this.bond];
    const addr: number[] = [];
    const kind: number[] = [];
    for (const [struct, r] of [
      ["glob", L.glob],
      ["cpu", L.cpu],
      ["dev", L.dev],
    ] as const) {
      const ks = kindsOf(struct, r.f, r.stride);
      for (let i = 0; i < r.count; i++)
        for (let o = 0; o < r.stride; o++)
          if (ks[o] !== PLAIN && ks[o] !== FRAMES) {
            addr.push(r.base + i * r.stride + o);
            kind.push(ks[o]);
          }
    }
    this.fixedAddr = Int32Array.from(addr);
    this.fixedKind = Int8Array.from(kind);
    for (const kd of kind) this.fixedMask |= 1 << kd;
    this.fixedTask = Int32Array.from(addr.filter((_, i) => kind[i] === TASK));
    this.fixedMm = Int32Array.from(addr.filter((_, i) => kind[i] === MM));
    this.fixedSbmm = Int32Array.from(addr.filter((_, i) => kind[i] === SBMM));
    this.fixedCtx = Int32Array.from(addr.filter((_, i) => kind[i] === CTX));
    this.refs = k.paths.map((p) => (p === undefined ? [] : p.refs));
    this.sig = new Float64Array(L.task.count);
    this.anchor = new Int32Array(L.task.count);
    this.mmSig = new Float64Array(L.mm.count);
    const writesFpu = k.programs.some((p) => {
      for (let i = 0; i < p.code.length; i += 2)
        if (p.code[i] === OPCODE.fpu || p.code[i] === OPCODE.xstate_write) return true;
      return false;
    });
    this.renamePids = !writesFpu && !k.model.tlb.invlpgb;
  }

  /** Compute the representative's fingerprint into lo/hi. */
  key(): void {
    const w = this.w;
    this.orderTasks();
    this.orderMms();
    this.orderFiles();
    this.orderValues();
    // The kinds of words whose values change: a region that does not move
    // and holds none of them is its own representative.
    const changed =
      (this.task.moved ? 1 << TASK : 0) |
      (this.mm.moved ? (1 << MM) | (1 << SBMM) : 0) |
      (this.files.moved ? 1 << FILES : 0) |
      (this.file.moved ? 1 << FILE : 0) |
      (this.bond.moved ? 1 << BOND : 0) |
      (this.pidOn ? (1 << PID) | (1 << TGID) : 0) |
      (this.genOn ? (1 << GEN) | (1 << CTX) : 0);
    let lo = w[HASH_LO];
    let hi = w[HASH_HI];
    // The slot regions: a slot that moves takes every nonzero word out of its
    // place and puts it, renamed, in its new one; one that stays renames its
    // pointers in place.
    const framesOff = this.k.T.frames.off;
    const depthOff = this.k.T.depth.off;
    for (let r = 0; r < this.regions.length; r++) {
      const s = this.regions[r];
      const { base, stride, count, kinds, map, refOffs, live } = s;
      if (!s.moved && (s.kindMask & changed) === 0) continue;
      const isTask = s === this.task;
      for (let i = 1; i < count; i++) {
        const j = map[i];
        const from = base + i * stride;
        // A free slot stays, and what it holds besides its free-list link
        // (a free slot too) is dead: it is left as it is.
        if (w[from + live] === 0) continue;
        if (j === i) {
          for (let x = 0; x < refOffs.length; x++) {
            const a = from + refOffs[x];
            const v = w[a];
            if (v === 0) continue;
            const nv = this.rename(kinds[refOffs[x]], v);
            if (nv === v) continue;
            lo ^= wordDeltaLo(a, v) ^ (nv === 0 ? 0 : wordDeltaLo(a, nv));
            hi ^= wordDeltaHi(a, v) ^ (nv === 0 ? 0 : wordDeltaHi(a, nv));
          }
          if (!isTask) continue;
          const depth = w[from + depthOff];
          for (let d = 0; d < depth; d++) {
            const fr = from + framesOff + d * FRAME_WORDS;
            for (let x = FR_A0; x < FRAME_WORDS; x++) {
              const v = w[fr + x];
              const nv = this.renameLocal(w[fr + FR_PATH], x, v);
              if (nv === v) continue;
              lo ^= (v === 0 ? 0 : wordDeltaLo(fr + x, v)) ^ (nv === 0 ? 0 : wordDeltaLo(fr + x, nv));
              hi ^= (v === 0 ? 0 : wordDeltaHi(fr + x, v)) ^ (nv === 0 ? 0 : wordDeltaHi(fr + x, nv));
            }
          }
          continue;
        }
        const to = base + j * stride;
        // Frames above the depth are zero (ret() clears them): a task's words end there.
        const end = isTask ? framesOff + w[from + depthOff] * FRAME_WORDS : stride;
        for (let o = 0; o < end; o++) {
          const v = w[from + o];
          if (v === 0) continue;
          const kd = kinds[o];
          let nv = v;
          if (kd === FRAMES) nv = this.frameWord(from, o, v);
          else if (kd !== PLAIN) nv = this.rename(kd, v);
          lo ^= wordDeltaLo(from + o, v);
          hi ^= wordDeltaHi(from + o, v);
          if (nv !== 0) {
            lo ^= wordDeltaLo(to + o, nv);
            hi ^= wordDeltaHi(to + o, nv);
          }
        }
      }
    }
    // Pointers in the fixed regions: renamed in place.
    const fa = this.fixedAddr;
    const fk = this.fixedKind;
    const fixedChange = (this.fixedMask & changed) !== 0;
    for (let i = 0; fixedChange && i < fa.length; i++) {
      const a = fa[i];
      const v = w[a];
      if (v === 0) continue;
      const nv = this.rename(fk[i], v);
      if (nv === v) continue;
      lo ^= wordDeltaLo(a, v) ^ (nv === 0 ? 0 : wordDeltaLo(a, nv));
      hi ^= wordDeltaHi(a, v) ^ (nv === 0 ? 0 : wordDeltaHi(a, nv));
    }
    // Interrupt frames' pointer locals, in place.
    const k = this.k;
    const C = k.C;
    const refsChange = (changed & ((1 << TASK) | (1 << MM) | (1 << FILES) | (1 << FILE) | (1 << BOND))) !== 0;
    for (let c = 0; refsChange && c < this.ncpu; c++) {
      const depth = w[C.irq_depth.at + c * C.irq_depth.stride];
      for (let d = 0; d < depth; d++) {
        const fr = k.irqFrameAddr(c, d);
        for (let x = 0; x < 2; x++) {
          const a = fr + FR_A0 + x;
          const v = w[a];
          const nv = this.renameLocal(w[fr + FR_PATH], FR_A0 + x, v);
          if (nv === v) continue;
          lo ^= (v === 0 ? 0 : wordDeltaLo(a, v)) ^ (nv === 0 ? 0 : wordDeltaLo(a, nv));
          hi ^= (v === 0 ? 0 : wordDeltaHi(a, v)) ^ (nv === 0 ? 0 : wordDeltaHi(a, nv));
        }
      }
    }
    this.lo = lo;
    this.hi = hi;
  }

  /**
   * The representative itself, words and all (for tests and tools; the
   * search needs only its fingerprint): the state with its slots moved and
   * renamed as `key()` hashes it. Its fingerprint words are left as they were.
   * With `fresh` false, the permutation and renaming chosen by the last
   * `key()` are applied to the state as it is now (the symmetry test: a
   * step commutes with them).
   */
  representative(fresh = true): Int32Array {
    if (fresh) this.key();
    const w = this.w;
    const out = Int32Array.from(w);
    for (const s of this.regions) {
      const { base, stride, count, kinds, map } = s;
      for (let i = 1; i < count; i++) {
        const from = base + i * stride;
        const to = base + map[i] * stride;
        for (let o = 0; o < stride; o++) {
          const v = w[from + o];
          const kd = kinds[o];
          out[to + o] =
            v === 0 ? 0 : kd === FRAMES ? this.frameWord(from, o, v) : kd === PLAIN ? v : this.rename(kd, v);
        }
      }
    }
    for (let i = 0; i < this.fixedAddr.length; i++)
      out[this.fixedAddr[i]] = this.rename(this.fixedKind[i], w[this.fixedAddr[i]]);
    for (let c = 0; c < this.ncpu; c++) {
      const depth = w[this.k.C.irq_depth.at + c * this.k.C.irq_depth.stride];
      for (let d = 0; d < depth; d++) {
        const fr = this.k.irqFrameAddr(c, d);
        for (let x = 0; x < 2; x++)
          out[fr + FR_A0 + x] = this.renameLocal(w[fr + FR_PATH], FR_A0 + x, w[fr + FR_A0 + x]);
      }
    }
    return out;
  }

  /** A word of a task's kernel frames (`o` its offset in the slot at `from`), renamed (only tasks hold frames). */
  private frameWord(from: number, o: number, v: number): number {
    const T = this.k.T;
    const rel = o - T.frames.off;
    const x = rel % FRAME_WORDS;
    if (x < FR_A0) return v;
    const fr = from + T.frames.off + rel - x;
    if ((rel - x) / FRAME_WORDS >= this.w[from + T.depth.off]) return v;
    return this.renameLocal(this.w[fr + FR_PATH], x, v);
  }

  /** Word `off` (FR_A0 or FR_A1) of a frame of path `path`, its pointer locals renamed. */
  private renameLocal(path: number, off: number, v: number): number {
    const refs = this.refs[path];
    if (refs === undefined) return v;
    for (let i = 0; i < refs.length; i++) {
      const r = refs[i];
      if (r.off !== off) continue;
      const low = 0xffffffff >>> (32 - r.bits);
      const p = (v >>> r.shift) & low;
      const np = this.rename(REF_KIND[r.kind], p) & low;
      v = (v & ~(low << r.shift)) | (np << r.shift);
    }
    return v;
  }

  private rename(kind: number, v: number): number {
    switch (kind) {
      case TASK:
        return v > 0 && v < this.task.count ? this.task.map[v] : v;
      case MM:
        return v > 0 && v < this.mm.count ? this.mm.map[v] : v;
      case FILES:
        return v > 0 && v < this.files.count ? this.files.map[v] : v;
      case FILE:
        return v > 0 && v < this.file.count ? this.file.map[v] : v;
      case BOND:
        return v > 0 && v < this.bond.count ? this.bond.map[v] : v;
      case SBMM:
        return v >= 2 && v - 2 < this.mm.count ? this.mm.map[v - 2] + 2 : v;
      case PID:
        return this.pidOn ? 0 : v;
      case TGID:
        if (!this.pidOn) return v;
        return v > 0 && v < this.pidStamp.length && this.pidStamp[v] === this.epoch ? this.pidMap[v] : 0;
      case GEN:
        return this.genOn && v > 0 && v < this.genStamp.length && this.genStamp[v] === this.epoch
          ? this.genMap[v]
          : v;
      case CTX: {
        const g = v - 1;
        return this.genOn && v > INIT_MM_CTX_ID && g < this.genStamp.length && this.genStamp[g] === this.epoch
          ? this.genMap[g] + 1
          : v;
      }
      default:
        return v;
    }
  }

  /** The live user tasks, sorted by their contents and their mm's (pointers masked), onto their own slots; idle tasks stay. */
  private orderTasks(): void {
    const w = this.w;
    const t = this.task;
    const T = this.k.T;
    const mm = this.mm;
    const M = this.k.M;
    // mm signatures first: a task's includes its mm's.
    for (let m = 1; m < mm.count; m++)
      if (w[M.state.at + m * M.state.stride] !== 0) this.mmSig[m] = this.signature(mm, m, 0, mm.stride);
    this.begin(t);
    // Where the fixed structures point at each task (a CPU's curr, its
    // fpregs_owner, a descriptor's submitter, a place in a run queue): not
    // a name, so part of what sorts it.
    const anchor = this.anchor;
    anchor.fill(0);
    const fa = this.fixedTask;
    for (let x = 0; x < fa.length; x++) {
      const v = w[fa[x]];
      if (v > 0 && v < t.count) anchor[v] = (Math.imul(anchor[v] ^ (x + 1), 0x9e3779b1) + x) | 0;
    }
    const C = this.k.C;
    for (let c = 0; c < this.ncpu; c++) {
      let v = w[C.rq_head.at + c * C.rq_head.stride];
      for (let pos = 1; pos <= t.count && v > 0 && v < t.count; pos++) {
        anchor[v] = (Math.imul(anchor[v] ^ (c * 4096 + pos), 0x85ebca6b) + pos) | 0;
        v = w[t.base + v * t.stride + T.rq_next.off];
      }
    }
    const order = t.order;
    const sigEnd = T.frames.off;
    let n = 0;
    for (let i = this.firstUser; i < t.count; i++) {
      const from = t.base + i * t.stride;
      if (w[from + t.live] === 0) continue;
      t.sorted[n] = i;
      const m = w[from + T.mm.off];
      let s = this.signature(t, i, (m > 0 && m < mm.count ? this.mmSig[m] : 0) + anchor[i], sigEnd);
      // the frames in use: path and pc (locals vary with pointers)
      const depth = w[from + T.depth.off];
      for (let d = 0; d < depth; d++) {
        const fr = from + T.frames.off + d * FRAME_WORDS;
        s = s * 31 + w[fr + FR_PATH] * 1024 + w[fr + 1];
        s %= 9007199254740881;
      }
      this.sig[i] = s;
      // insertion sort by (signature, slot)
      let j = n++;
      while (j > 0 && this.sig[order[j - 1]] > s) {
        order[j] = order[j - 1];
        j--;
      }
      order[j] = i;
    }
    t.n = n;
    this.finish(t);
  }

  /** The live mm slots in the order the (reordered) tasks, then the CPUs and devices, point at them. */
  private orderMms(): void {
    const w = this.w;
    const k = this.k;
    const T = k.T;
    const s = this.mm;
    this.begin(s);
    this.listLive(s);
    const t = this.task;
    for (let i = 1; i < this.firstUser; i++) {
      this.claim(s, w[T.mm.at + i * T.mm.stride]);
      this.claim(s, w[T.active_mm.at + i * T.active_mm.stride]);
    }
    for (let p = 0; p < t.n; p++) {
      const i = t.order[p];
      this.claim(s, w[T.mm.at + i * T.mm.stride]);
      this.claim(s, w[T.active_mm.at + i * T.active_mm.stride]);
    }
    const fm = this.fixedMm;
    for (let i = 0; i < fm.length; i++) this.claim(s, w[fm[i]]);
    const fs = this.fixedSbmm;
    for (let i = 0; i < fs.length; i++) if (w[fs[i]] >= 2) this.claim(s, w[fs[i]] - 2);
    this.finish(s);
  }

  /** files_structs by their tasks, files by their fd slots, bonds by their files. */
  private orderFiles(): void {
    const w = this.w;
    const k = this.k;
    const T = k.T;
    const fs = this.files;
    this.begin(fs);
    this.listLive(fs);
    for (let i = 1; i < this.firstUser; i++) this.claim(fs, w[T.files.at + i * T.files.stride]);
    for (let p = 0; p < this.task.n; p++) this.claim(fs, w[T.files.at + this.task.order[p] * T.files.stride]);
    this.finish(fs);
    const f = this.file;
    this.begin(f);
    this.listLive(f);
    const fd = k.F.fd;
    for (let p = 0; p < fs.n; p++) {
      const a = fd.at + fs.order[p] * fd.stride;
      for (let x = 0; x < fd.len; x++) this.claim(f, w[a + x]);
    }
    this.finish(f);
    const b = this.bond;
    this.begin(b);
    this.listLive(b);
    for (let p = 0; p < f.n; p++) this.claim(b, w[k.FL.bond.at + f.order[p] * k.FL.bond.stride]);
    this.finish(b);
  }

  /** Pids (in the new task order) and mm allocation numbers (in the new mm order, then ctx_ids) renamed onto themselves, sorted. */
  private orderValues(): void {
    const w = this.w;
    const k = this.k;
    this.epoch++;
    this.pidOn = false;
    this.genOn = false;
    if (this.renamePids) {
      // Thread groups numbered in the new task order; pids dropped.
      const T = k.T;
      let n = 0;
      for (let p = 0; p < this.task.n && n < this.vals.length; p++) {
        const m = this.note(w[T.tgid.at + this.task.order[p] * T.tgid.stride], n, true);
        if (m > n) this.pidMap[this.vals[n]] = m;
        n = m;
      }
      this.pidOn = true;
    }
    const M = k.M;
    const mm = this.mm;
    let n = 0;
    const maxGen = w[k.G.mm_gen.at];
    let clean = true;
    for (let p = 0; p < mm.n; p++) n = this.note(w[M.gen.at + mm.order[p] * M.gen.stride], n, false);
    const fa = this.fixedCtx;
    for (let i = 0; i < fa.length && clean; i++) {
      const v = w[fa[i]];
      if (v <= INIT_MM_CTX_ID) continue;
      if (v - 1 > maxGen || n >= this.vals.length) clean = false;
      else n = this.note(v - 1, n, false);
    }
    this.genOn = clean && this.assignGens(n);
  }

  /** Note value v (> 0) once in vals; the new count. */
  private note(v: number, n: number, pid: boolean): number {
    if (v <= 0) return n;
    let stamp = pid ? this.pidStamp : this.genStamp;
    if (v >= stamp.length) {
      let len = stamp.length;
      while (len <= v) len *= 2;
      const s2 = new Int32Array(len);
      s2.set(stamp);
      const m2 = new Int32Array(len);
      if (pid) {
        this.pidStamp = s2;
        m2.set(this.pidMap);
        this.pidMap = m2;
      } else {
        this.genStamp = s2;
        m2.set(this.genMap);
        this.genMap = m2;
      }
      stamp = s2;
    }
    if (stamp[v] === this.epoch) return n;
    stamp[v] = this.epoch;
    this.vals[n] = v;
    return n + 1;
  }

  /** The i-th mm allocation number noted is renamed to the i-th smallest; whether any changes. */
  private assignGens(n: number): boolean {
    const map = this.genMap;
    const vals = this.vals;
    // sort vals[0..n) (small n: insertion sort), then pair up first appearance with rank
    const firsts = this.firsts;
    for (let i = 0; i < n; i++) firsts[i] = vals[i];
    for (let i = 1; i < n; i++) {
      const v = vals[i];
      let j = i;
      while (j > 0 && vals[j - 1] > v) {
        vals[j] = vals[j - 1];
        j--;
      }
      vals[j] = v;
    }
    let moves = false;
    for (let i = 0; i < n; i++) {
      map[firsts[i]] = vals[i];
      if (firsts[i] !== vals[i]) moves = true;
    }
    return moves;
  }

  /** vals in the order they were noted (assign sorts vals). */
  private readonly firsts = new Int32Array(1024);

  /** Start a region's order: nothing placed, nothing moves. */
  private begin(s: Slots): void {
    const map = s.map;
    for (let i = 0; i < s.count; i++) map[i] = i;
    s.n = 0;
  }

  /** The live slots (from 1: 0 is NULL), in slot order, into `sorted`; their count in `live`. */
  private listLive(s: Slots): void {
    const w = this.w;
    let n = 0;
    for (let i = 1; i < s.count; i++) if (w[s.base + i * s.stride + s.live] !== 0) s.sorted[n++] = i;
    this.live = n;
  }

  private live = 0;

  /** Place live slot v next, unless it is NULL, out of range, free or placed. */
  private claim(s: Slots, v: number): void {
    if (v <= 0 || v >= s.count || s.map[v] < 0 || this.w[s.base + v * s.stride + s.live] === 0) return;
    s.order[s.n++] = v;
    s.map[v] = -1; // placed; the number comes in finish()
  }

  /**
   * The live slots not placed, in slot order; then the p-th placed goes to
   * the p-th live slot (`sorted`): the live slots are permuted among themselves.
   */
  private finish(s: Slots): void {
    const n = s === this.task ? s.n : this.live;
    if (s !== this.task)
      for (let p = 0; p < n; p++) if (s.map[s.sorted[p]] >= 0) s.order[s.n++] = s.sorted[p];
    let moved = false;
    for (let p = 0; p < n; p++) {
      s.map[s.order[p]] = s.sorted[p];
      if (s.order[p] !== s.sorted[p]) moved = true;
    }
    s.moved = moved;
  }

  /** A slot's contents with pointers and renamed values masked (a pointer counts only as set or not), mixed with `extra`. */
  private signature(s: Slots, i: number, extra: number, end: number): number {
    const w = this.w;
    const kinds = s.kinds;
    const from = s.base + i * s.stride;
    let h = 0x811c9dc5 ^ (extra % 4294967296);
    let h2 = 0x12345;
    for (let o = 0; o < end; o++) {
      let v = w[from + o];
      const kd = kinds[o];
      if (kd === PID || kd === TGID || kd === GEN) v = 0;
      else if (kd !== PLAIN) v = v === 0 ? 0 : 1;
      h = Math.imul(h ^ v, 0x01000193);
      h2 = Math.imul(h2 ^ v ^ (h >>> 15), 0x5bd1e995);
    }
    // 53 bits: an exact double, so that the sort compares what was mixed
    return (h >>> 0) * 2097152 + (h2 >>> 11);
  }
}
