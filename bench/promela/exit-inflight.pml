/*
 * Promela twin of scenarios/check-exit-inflight.yaml (asidlab bench/spin.ts):
 * "leaver" binds dsa0, submits two descriptors and exits with them in flight;
 * "newcomer" binds, submits one, waits for it and unbinds. Mainline (lifetime
 * `mm`) frees the PASID at __mmdrop, after the file release drained the
 * device: pass. -DBUG is --kernel free-at-mmput (5.18-rc1): the PASID is freed
 * in __mmput, before the release drains: pasid-reuse.
 */
#define EXC_GP_IRQ_ENABLE skip
#define FIXUP_AT_G2 msr[c] = p; activated[t] = 1
#define FIXUP_AT_G3 skip
#ifdef BUG
#define FREE_AT_MMPUT if :: mmpasid[mmof[t]] != 0 -> ida_free(mmpasid[mmof[t]]); mmpasid[mmof[t]] = 0 :: else -> skip fi
#else
#define FREE_AT_MMPUT skip
#endif

#include "kernel.pml"

inline programs() {
  /* leaver: bind, enqcmd x2, exit */
  prog[TA * NOPS + 0] = OP_BIND; prog[TA * NOPS + 1] = OP_ENQ; prog[TA * NOPS + 2] = OP_ENQ;
  prog[TA * NOPS + 3] = OP_END;
  /* newcomer: bind, enqcmd, wait, unbind */
  prog[TB * NOPS + 0] = OP_BIND; prog[TB * NOPS + 1] = OP_ENQ; prog[TB * NOPS + 2] = OP_WAIT;
  prog[TB * NOPS + 3] = OP_UNBIND; prog[TB * NOPS + 4] = OP_END
}

START
