// ITF JSON (the Informal Trace Format of Apalache and Quint) for a
// counterexample: one state per transition, each a record of the variables a
// reader of the trace wants beside the kernel source: per CPU who runs and in
// which mode, per live mm its counts and PASID, the PASID allocator's count,
// the devices' queues, and the transition that led to the state. Integers are
// ITF's {"#bigint": "..."} so any ITF reader takes them.

import { ida_count } from "../kernel/ida.js";
import type { Kernel } from "../kernel/kernel.js";
import { MM_FREE } from "../machine/state.js";

type Itf = { "#bigint": string } | string | boolean | Itf[] | { [k: string]: Itf };

const big = (n: number): Itf => ({ "#bigint": String(n) });

export const ITF_VARS = ["action", "cpus", "mms", "pasids_allocated", "devices"] as const;

/** The state after a transition, as an ITF record. */
export function itfState(k: Kernel, index: number, action: string): Record<string, Itf> {
  const cpus: Itf[] = [];
  for (let c = 0; c < k.params.cpus; c++) {
    const t = k.curr(c);
    cpus.push({
      curr: big(t),
      pid: big(k.get(k.T.pid, t)),
      in_user: k.get(k.C.in_user, c) !== 0,
      irqs_off: k.get(k.C.irqs_off, c) !== 0,
      preempt_count: big(k.get(k.C.preempt_count, c)),
      loaded_mm: big(k.get(k.C.loaded_mm, c)),
    });
  }
  const mms: Itf[] = [];
  for (let mm = 1; mm < k.L.mm.count; mm++) {
    if (k.get(k.M.state, mm) === MM_FREE) continue;
    mms.push({
      mm: big(mm),
      users: big(k.get(k.M.users, mm)),
      count: big(k.get(k.M.count, mm)),
      pasid: big(k.get(k.M.pasid, mm)),
    });
  }
  const devices: Itf[] = k.model.devices.map((d, i) => ({
    name: d.name,
    queued: big(k.get(k.D.wq_count, i)),
  }));
  return {
    "#meta": { index: big(index) },
    action,
    cpus,
    mms,
    pasids_allocated: big(ida_count(k.mem, k.ida)),
    devices,
  };
}

export function itfDocument(source: string, description: string, states: Record<string, Itf>[]): string {
  const doc = {
    "#meta": {
      format: "ITF",
      "format-description": "https://apalache-mc.org/docs/adr/015adr-trace.html",
      source,
      description,
    },
    vars: [...ITF_VARS],
    states,
  };
  return `${JSON.stringify(doc, null, 1)}\n`;
}
