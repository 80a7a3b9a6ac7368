// Signals with a handler (arch/x86/kernel/signal.c): the handler's frame
// holds the task's xstate (copy_fpstate_to_sigframe), rt_sigreturn restores
// it; a frame that cannot be written or read kills the task.

import { lineCost, write_xreg, xregAddr, xs_value } from "../hw/xsave.js";
import { XSAVE_HDR_SIZE } from "../hw/xstate.js";
import { TIF_NEED_FPU_LOAD, TIF_SIGPENDING } from "../machine/state.js";
import { fpregs_mark_activate, fpregs_restore_userregs, fpregs_state_valid } from "./fpregs.js";
import type { Kernel } from "./kernel.js";
import { defPath } from "./path.js";

// --- signals ---------------------------------------------------------------------------

function frameAddr(k: Kernel, t: number, i: number): number {
  return k.T.sigframe.at + t * k.T.sigframe.stride + i;
}

/**
 * handle_signal() -> setup_rt_frame(), for its FPU part: the user
 * components go to the signal frame (XSAVE from the live registers, or a
 * copy of the image), then fpu__clear_user_states() resets only the user
 * components: with the registers not live it first restores the supervisor
 * ones from the image (os_xrstor_supervisor), so IA32_PASID survives.
 */
export const P_HANDLE_SIGNAL = defPath("handle_signal", [
  [
    "copy_fpstate_to_sigframe",
    (k, cpu) => {
      const t = k.curr(cpu);
      const tif = k.get(k.T.tif, t);
      k.set(k.T.tif, t, tif & ~TIF_SIGPENDING);
      const L = k.model.xstate;
      const live = (tif & TIF_NEED_FPU_LOAD) === 0;
      let bytes = XSAVE_HDR_SIZE;
      for (let m = L.features & ~L.supervisor; m !== 0; m &= m - 1) {
        const bit = m & -m;
        const i = 31 - Math.clz32(bit);
        const v = live ? k.w[xregAddr(k, cpu, i)] : xs_value(k, t, i);
        if (k.w[frameAddr(k, t, i)] !== v) k.mem.write(frameAddr(k, t, i), v);
        if (v !== 0) bytes += L.sizes[i];
      }
      k.metrics.xsaves_bytes += bytes;
      k.charge(k.costs.xsaves + lineCost(k, bytes));
    },
  ],
  [
    "fpu__clear_user_states",
    (k, cpu) => {
      const t = k.curr(cpu);
      const L = k.model.xstate;
      if ((k.get(k.T.tif, t) & TIF_NEED_FPU_LOAD) !== 0 && !fpregs_state_valid(k, cpu, t)) {
        // os_xrstor_supervisor(): the supervisor components from the image.
        let bytes = XSAVE_HDR_SIZE;
        for (let m = L.supervisor; m !== 0; m &= m - 1) {
          const bit = m & -m;
          const i = 31 - Math.clz32(bit);
          k.mem.write(xregAddr(k, cpu, i), xs_value(k, t, i));
          if (xs_value(k, t, i) !== 0) bytes += L.sizes[i];
        }
        k.metrics.xrstors_bytes += bytes;
        k.charge(k.costs.xrstors + lineCost(k, bytes));
      }
      // restore_fpregs_from_init_fpstate(XFEATURE_MASK_USER_RESTORE), then fpregs_mark_activate().
      for (let m = L.features & ~L.supervisor; m !== 0; m &= m - 1) {
        const i = 31 - Math.clz32(m & -m);
        if (k.w[xregAddr(k, cpu, i)] !== 0) write_xreg(k, cpu, i, 0);
      }
      k.set(k.C.xrstor_task, cpu, 0);
      k.set(k.T.xs_newer, t, 0);
      fpregs_mark_activate(k, cpu, t);
    },
  ],
]);

/** rt_sigreturn(): fpu__restore_sig(): the user components back from the frame (XRSTOR). */
export const P_SIGRETURN = defPath("rt_sigreturn", [
  [
    "fpu__restore_sig",
    (k, cpu) => {
      const t = k.curr(cpu);
      const L = k.model.xstate;
      if ((k.get(k.T.tif, t) & TIF_NEED_FPU_LOAD) !== 0) fpregs_restore_userregs(k, cpu, t);
      let bytes = XSAVE_HDR_SIZE;
      for (let m = L.features & ~L.supervisor; m !== 0; m &= m - 1) {
        const i = 31 - Math.clz32(m & -m);
        const v = k.w[frameAddr(k, t, i)];
        if (k.w[xregAddr(k, cpu, i)] !== v) write_xreg(k, cpu, i, v);
        if (v !== 0) bytes += L.sizes[i];
      }
      k.metrics.xrstors_bytes += bytes;
      k.charge(k.costs.xrstors + lineCost(k, bytes));
    },
  ],
]);
