// switch_mm_irqs_off(), for now only what the foundation needs: the CPU's
// loaded mm and the CR3 write. The PCID/ASID issue replaces this path with
// choose_new_asid(), tlb_gen and the PTI user PCIDs.

import { defPath } from "./path.js";

/** switch_mm_irqs_off(prev, next): a0 = next mm. */
export const P_SWITCH_MM = defPath("switch_mm_irqs_off", [
  [
    "load_new_mm_cr3",
    (k, cpu, fr) => {
      const next = k.arg0(fr);
      if (k.get(k.C.loaded_mm, cpu) === next) return;
      k.set(k.C.loaded_mm, cpu, next);
      k.metrics.cr3_writes++;
      k.charge(k.cost("cr3_write"));
    },
  ],
]);
