// User programs as the CPU sees them: a flat code array of (opcode, arg)
// pairs. The scenario compiler produces them; the user-mode executor runs
// them one op per step. Program text is static, so it lives outside the
// machine state; a task's position in it (upc, loop counters) is state.

export const U_END = 0; // falls off the end: exit(0)
export const U_LOOP = 1; // arg: iterations; pushes a loop counter
export const U_ENDLOOP = 2; // arg: pc of the loop body
export const U_COMPUTE = 3; // arg: ns of user work
export const U_SYSCALL = 4; // arg: ns in the kernel
export const U_YIELD = 5;
export const U_SLEEP = 6; // arg: ns
export const U_FORK = 7; // arg: child program id
export const U_CLONE_THREAD = 8;
export const U_CLONE_VM = 9;
export const U_EXEC = 10; // arg: program id
export const U_EXIT = 11; // arg: exit code
export const U_BIND = 12; // arg: device | OPEN_PRIVATE (open the device's file)
export const U_UNBIND = 13; // arg: device (close its newest open file)
export const U_ENQCMD = 14; // arg: device
export const U_WAIT = 15; // arg: device (poll until this mm's descriptors completed)
export const U_MMAP = 16; // arg: pages
export const U_MUNMAP = 17; // arg: pages; the next pair is U_ARG with the count (flushes in one syscall)
export const U_MPROTECT = 18; // as U_MUNMAP
export const U_TOUCH = 19; // arg: pages: a user access to each of pages 0 .. min(arg, TLB_PAGES)-1
export const U_ARG = 20; // arg: an extra operand of the op before it (never executed)
export const U_FPU = 21; // arg: mask of XSTATE components user code writes
export const U_XSTATE_WRITE = 22; // arg: mask of components a syscall changes in the caller's xstate
export const U_KERNEL_FPU = 23; // a syscall that uses the FPU in the kernel
export const U_XCOMP_PERM = 24; // arch_prctl(ARCH_REQ_XCOMP_PERM, XTILE_DATA)
export const U_GP = 25; // an instruction that takes #GP whatever IA32_PASID holds (a privileged one)
export const U_SIGNAL = 26; // kill(getpid(), sig): the handler's frame is set up on the way back
export const U_SIGRETURN = 27; // the handler returns: rt_sigreturn
export const U_SET_FIXMAP = 28; // arg: pages: a syscall whose driver remaps that many kernel fixmap pages

export const OPCODE_NAMES = [
  "end",
  "loop",
  "endloop",
  "compute",
  "syscall",
  "yield",
  "sleep",
  "fork",
  "clone_thread",
  "clone_vm",
  "exec",
  "exit",
  "bind",
  "unbind",
  "enqcmd",
  "wait",
  "mmap",
  "munmap",
  "mprotect",
  "touch",
  "arg",
  "fpu",
  "xstate_write",
  "kernel_fpu",
  "req_xcomp_perm",
  "gp_fault",
  "signal",
  "sigreturn",
  "set_fixmap",
] as const;
