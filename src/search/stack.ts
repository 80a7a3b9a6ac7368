// The depth-first stack, over the undo journal: per depth, where the state
// is in the journal (and its fingerprint words), its transitions to take,
// the next one, and the preemptions used to reach it. Going back to a state
// undoes the writes since it: a few dozen words, not the machine.

import type { Kernel } from "../kernel/kernel.js";
import { MAX_ENABLED } from "./transitions.js";

export class DfsStack {
  readonly marks: number[] = [];
  readonly hlo: number[] = [];
  readonly hhi: number[] = [];
  /** Per depth: the transitions to take (`counts` of them), the next one's index. */
  readonly trs: Int32Array[] = [];
  readonly counts: number[] = [];
  readonly nexts: number[] = [];
  /** Per depth: preemptions (ticks) taken to reach the state. */
  readonly ticks: number[] = [];
  /** The transitions from the initial state to the state at `depth`. */
  readonly path: number[] = [];
  depth = 0;
  /** Memory holds the state at `depth` (it was just pushed): nothing to undo. */
  fresh = true;

  constructor(private readonly k: Kernel) {
    k.mem.startJournal();
  }

  /** Record the state in memory as the one at depth `d`, reached with `t` ticks. */
  push(d: number, t: number): void {
    const k = this.k;
    if (this.trs.length <= d) this.trs.push(new Int32Array(MAX_ENABLED));
    this.marks[d] = k.mem.mark();
    this.hlo[d] = k.w[0];
    this.hhi[d] = k.w[1];
    this.nexts[d] = 0;
    this.ticks[d] = t;
  }

  /** Make the state pushed at depth + 1 by `tr` the current one. */
  descend(tr: number): void {
    this.depth++;
    this.path.push(tr);
    this.fresh = true;
  }

  /** Back to the state one level up (memory is restored when it takes its next transition). */
  pop(): void {
    this.depth--;
    this.path.pop();
    this.fresh = false;
  }

  /** Memory to the state at depth `d`, before taking one of its transitions. */
  restore(d: number): void {
    if (!this.fresh) this.k.mem.undo(this.marks[d], this.hlo[d], this.hhi[d]);
    this.fresh = false;
  }
}
