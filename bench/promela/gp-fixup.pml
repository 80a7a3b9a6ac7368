/*
 * Promela twin of scenarios/check-gp-fixup.yaml (asidlab bench/spin.ts):
 * "app" binds dsa0, submits two descriptors (the first takes #GP and the
 * fixup writes IA32_PASID), waits and unbinds; "other" computes and yields.
 * Mainline runs the fixup with IRQs off: pass. -DBUG is --kernel
 * gp-fixup-irqs-on (seed 000's "preemption or BH here: kaboom"): IRQs on
 * between the checks and the MSR write, a preemption there saves the old
 * xstate and the restore on the way out loses the write: pasid-lost.
 */
#ifdef BUG
#define EXC_GP_IRQ_ENABLE irqs_off[c] = 0
#define FIXUP_AT_G2 skip
#define FIXUP_AT_G3 msr[c] = mmpasid[mmof[t]]; activated[t] = 1
#else
#define EXC_GP_IRQ_ENABLE skip
#define FIXUP_AT_G2 msr[c] = p; activated[t] = 1
#define FIXUP_AT_G3 skip
#endif
#define FREE_AT_MMPUT skip
#if NCPU > 1
#define NPROC 3              /* at 2 CPUs, other has count: 2 (one beside app on CPU 0) */
#endif

#include "kernel.pml"

inline programs() {
  /* app: bind, enqcmd, enqcmd, wait, unbind */
  prog[TA * NOPS + 0] = OP_BIND; prog[TA * NOPS + 1] = OP_ENQ; prog[TA * NOPS + 2] = OP_ENQ;
  prog[TA * NOPS + 3] = OP_WAIT; prog[TA * NOPS + 4] = OP_UNBIND; prog[TA * NOPS + 5] = OP_END;
  /* other: compute, yield */
  prog[TB * NOPS + 0] = OP_COMPUTE; prog[TB * NOPS + 1] = OP_YIELD; prog[TB * NOPS + 2] = OP_END;
#if NPROC > 2
  prog[TC * NOPS + 0] = OP_COMPUTE; prog[TC * NOPS + 1] = OP_YIELD; prog[TC * NOPS + 2] = OP_END
#endif
}

START
