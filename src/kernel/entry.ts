// The way back to user space (kernel/entry/common.c): exit_to_user_mode()'s
// work loop (a kill, a reschedule, a signal), then the exit-to-user hooks
// where the model issues plug in (the FPU restore, PTI's CR3 switch, the
// PASID task_work). Entry is syscall.ts and irq.ts.

import { PF_EXITING, TIF_KILLED, TIF_NEED_RESCHED, TIF_SIGPENDING } from "../machine/state.js";
import { defPath } from "./path.js";
import { P_EXIT } from "./process.js";
import { P_SCHEDULE, SM_NONE } from "./sched.js";
import { P_HANDLE_SIGNAL } from "./signal.js";

/** exit_to_user_mode(): handle pending work, then return to user space. */
export const P_EXIT_TO_USER = defPath("exit_to_user_mode", [
  [
    "exit_to_user_mode_loop",
    (k, cpu, fr) => {
      const t = k.curr(cpu);
      const tif = k.get(k.T.tif, t);
      if ((tif & TIF_KILLED) !== 0 && (k.get(k.T.flags, t) & PF_EXITING) === 0) {
        k.call(cpu, P_EXIT, 9 /* SIGKILL */);
        return;
      }
      if ((tif & TIF_NEED_RESCHED) !== 0) {
        k.jump(fr, 0); // loop until no work is left
        k.call(cpu, P_SCHEDULE, SM_NONE);
        return;
      }
      if ((tif & TIF_SIGPENDING) !== 0) {
        k.jump(fr, 0); // arch_do_signal_or_restart(), then look again
        k.call(cpu, P_HANDLE_SIGNAL);
        return;
      }
      k.set(k.C.irqs_off, cpu, 1); // local_irq_disable_exit_to_user()
    },
  ],
  ["arch_exit_to_user_mode_prepare", (k, cpu) => k.callHooks(cpu, k.hooks.exit_to_user)],
  [
    "return_to_user",
    (k, cpu) => {
      // SYSRET/IRET: back in user mode, interrupts on.
      k.ret(cpu);
      k.set(k.C.in_user, cpu, 1);
      k.set(k.C.irqs_off, cpu, 0);
      if (k.get(k.T.depth, k.curr(cpu)) !== 0) {
        k.warn("kernel-stack", `returning to user with kernel frames left`, cpu);
      }
    },
    "syscall_exit",
  ],
]);
