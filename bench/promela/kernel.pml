/*
 * kernel.pml: the part of asidlab's model that its two Promela twins share
 * (bench/promela/exit-inflight.pml, gp-fixup.pml). The same abstraction as
 * asidlab's `check`, step for step where it matters: one transition is one
 * step of a CPU (interrupt entry, one kernel step of the task it runs, or one
 * user op), the tick raised on a CPU (a preemption, at most BOUND per path),
 * or the device completing its oldest descriptor. Kernel paths are program
 * counters with the same step names (comments); schedule, the exit-to-user
 * loop, the syscall path, the #GP fixup, open/release of the device file and
 * do_exit/mmput/mmdrop are modelled; a blocking mutex or drain spins (asidlab
 * sleeps and is woken). What is left out: CR3/PCID and TLB fields (the
 * switch_mm steps only advance), metrics, the end-state leak checks.
 *
 *   -DNCPU=1|2  CPUs; -DBOUND=k  preemptions per path; -DBUG  the kernel variant
 */
#ifndef NCPU
#define NCPU 1
#endif
#ifndef BOUND
#define BOUND 2
#endif
#ifndef NPROC
#define NPROC 2
#endif
#define NT (NCPU + NPROC)    /* one idle task per CPU, then one task per process */
#define TA NCPU
#define TB (NCPU + 1)
#define TC (NCPU + 2)
#define NPASID 16            /* pasid_bits: 4 */
#define WQD 4                /* wq_depth: 4 */
#define NOPS 6

/* user ops */
#define OP_END 0             /* end of the program: exit(0) */
#define OP_BIND 1
#define OP_ENQ 2
#define OP_WAIT 3
#define OP_UNBIND 4
#define OP_COMPUTE 5
#define OP_YIELD 6

/* kernel program counters (a task's next step) */
#define K_USER 0             /* user mode: the next op of its program */
#define K_IDLE 1             /* do_idle */
#define S1 10                /* schedule: __schedule */
#define S2 11                /* schedule: context_switch */
#define S3 12                /* switch_mm_irqs_off */
#define S4 13                /* choose_new_asid */
#define S5 14                /* load_new_mm_cr3 */
#define S6 15                /* loaded_mm = next */
#define S7 16                /* schedule: switch_fpu */
#define S8 17                /* save_fpregs_to_fpstate */
#define S9 18                /* __switch_to */
#define FTS 19               /* finish_task_switch */
#define RF1 20               /* ret_from_fork: schedule_tail */
#define SYX 21               /* syscall_exit_to_user_mode */
#define X1 30                /* exit_to_user_mode_loop */
#define X2 31                /* arch_exit_to_user_mode_prepare */
#define X3 32                /* fpregs_restore_userregs */
#define X4 33                /* SWITCH_TO_USER_CR3 */
#define X5 34                /* return_to_user */
#define SY1 40               /* syscall_enter_from_user_mode */
#define SY2 41               /* syscall_body */
#define O1 50                /* idxd_cdev_open: alloc_file */
#define O2 51                /* mutex_lock */
#define O3 52                /* iommu_alloc_mm_data */
#define O4 53                /* iommu_sva_bind_device */
#define O5 54                /* iommu_attach_device_pasid */
#define O6 55                /* mutex_unlock */
#define G1 60                /* exc_general_protection: cond_local_irq_enable */
#define G2 61                /* try_fixup_enqcmd_gp */
#define G3 62                /* wrmsrl */
#define G4 63                /* irqentry_exit_to_user */
#define R1 70                /* idxd_file_dev_release: idxd_device_drain_pasid */
#define R2 71                /* mutex_lock */
#define R3 72                /* iommu_sva_unbind_device */
#define R4 73                /* mmdrop (the bond's reference) */
#define R5 74                /* mutex_unlock */
#define E1 80                /* do_exit: exit_signals */
#define E2 81                /* mm_pasid_task_exit */
#define E3 82                /* exit_mm */
#define E4 83                /* mmput: atomic_dec_and_test */
#define E5 84                /* __mmput */
#define E6 85                /* mmput: mmdrop */
#define E7 86                /* exit_files: close_files */
#define E8 87                /* do_task_dead */
#define PSI 90               /* preempt_schedule_irq */
#define I1 1                 /* (per CPU irq_pc) common_interrupt: irqentry_enter */
#define I2 2                 /* irqentry_exit */

/* syscalls */
#define SC_OPEN 1
#define SC_CLOSE 2
#define SC_YIELD 3
#define SC_EXIT 4

/* per CPU */
byte curr[NCPU];
bool irqs_off[NCPU];
byte preempt[NCPU];
bool pending[NCPU];
bool halted[NCPU];
byte irq_pc[NCPU];
byte loaded_mm[NCPU];
byte msr[NCPU];              /* IA32_PASID: 0 invalid, else the PASID */
byte fpowner[NCPU];
byte nextt[NCPU];
byte rq[NCPU * NT];
byte rqn[NCPU];
/* per task */
byte pc[NT];
byte ret[NT];                /* where schedule returns to */
byte rret[NT];               /* where the file release returns to */
byte upc[NT];
byte sysop[NT];
bool need_resched[NT];
bool need_fpu_load[NT];
byte fp_pasid[NT];           /* the PASID component of the task's saved xstate */
bool activated[NT];
bool dead[NT];
bool fd[NT];                 /* the task's one device file is open */
byte fpasid[NT];
byte sub[NT];                /* descriptors submitted */
byte done[NT];               /* ... and completed */
byte prog[NT * NOPS];
/* mm: one per process, numbered as its task (mm 0 = none) */
byte mmof[NT];
byte users[NT];
byte mmcount[NT];
byte mmpasid[NT];
byte nbonds[NT];
/* PASID allocator, IOMMU PASID table, the device's work queue */
bool used[NPASID];
byte pt[NPASID];             /* mm + 1 bound at that PASID, 0 none */
byte wq_pasid[WQD];
byte wq_task[WQD];
byte wqn;
byte lock;                   /* sva_lock: owner task + 1 */
byte npre;                   /* preemptions on the path */

inline enqueue(c, t) {
  rq[c * NT + rqn[c]] = t;
  rqn[c]++
}

/* Property pasid-reuse: a PASID is not freed or handed out while the device holds a descriptor for it. */
inline no_descriptor_for(p) {
  i = 0;
  do
  :: i < wqn -> assert(wq_pasid[i] != p); i++
  :: else -> break
  od
}

inline ida_free(p) {
  no_descriptor_for(p);
  used[p] = 0
}

/* __mmdrop of mm m: mm_pasid_drop frees its PASID (mainline lifetime `mm`) */
inline mmdrop(m) {
  mmcount[m]--;
  if
  :: mmcount[m] == 0 && mmpasid[m] != 0 -> ida_free(mmpasid[m]); mmpasid[m] = 0
  :: else -> skip
  fi
}

/* One step of CPU c: interrupt entry, an interrupt step, or the current task's next step. */
inline cpu_step(c) {
  t = curr[c];
  if
  :: irq_pc[c] == 0 && pending[c] && !irqs_off[c] ->              /* interrupt entry */
     irqs_off[c] = 1; halted[c] = 0; irq_pc[c] = I1
  :: irq_pc[c] == I1 ->                                             /* irqentry_enter */
     pending[c] = 0;
     if :: rqn[c] > 0 -> need_resched[t] = 1 :: else -> skip fi;
     irq_pc[c] = I2
  :: irq_pc[c] == I2 ->                                             /* irqentry_exit */
     irq_pc[c] = 0;
     if
     :: pc[t] == K_USER -> pc[t] = X1
     :: pc[t] != K_USER && preempt[c] == 0 && need_resched[t] -> ret[t] = pc[t]; pc[t] = PSI
     :: else -> irqs_off[c] = 0
     fi
  :: else ->
     if
     :: pc[t] == K_IDLE ->                                          /* do_idle */
        if :: rqn[c] > 0 -> ret[t] = K_IDLE; pc[t] = S1 :: else -> halted[c] = 1 fi
     :: pc[t] == PSI -> pc[t] = S1                                  /* preempt_schedule_irq */
     :: pc[t] == S1 ->                                              /* __schedule */
        preempt[c]++; irqs_off[c] = 1; need_resched[t] = 0;
        if :: t >= NCPU && !dead[t] -> enqueue(c, t) :: else -> skip fi;
        if
        :: rqn[c] > 0 ->
           nextt[c] = rq[c * NT];
           i = 0;
           do :: i + 1 < rqn[c] -> rq[c * NT + i] = rq[c * NT + i + 1]; i++ :: else -> break od;
           rq[c * NT + rqn[c] - 1] = 0; rqn[c]--
        :: else -> nextt[c] = c
        fi;
        if :: nextt[c] == t -> pc[t] = FTS :: else -> pc[t] = S2 fi
     :: pc[t] == S2 -> pc[t] = S3                                   /* context_switch */
     :: pc[t] == S3 -> loaded_mm[c] = 255; pc[t] = S4               /* switch_mm_irqs_off */
     :: pc[t] == S4 -> pc[t] = S5                                   /* choose_new_asid */
     :: pc[t] == S5 -> pc[t] = S6                                   /* load_new_mm_cr3 */
     :: pc[t] == S6 -> loaded_mm[c] = mmof[nextt[c]]; pc[t] = S7    /* loaded_mm = next */
     :: pc[t] == S7 -> pc[t] = S8                                   /* switch_fpu */
     :: pc[t] == S8 ->                                              /* save_fpregs_to_fpstate */
        if :: fpowner[c] == t && t >= NCPU -> fp_pasid[t] = msr[c] :: else -> skip fi;
        if :: nextt[c] >= NCPU -> need_fpu_load[nextt[c]] = 1 :: else -> skip fi;
        pc[t] = S9
     :: pc[t] == S9 ->                                              /* __switch_to */
        curr[c] = nextt[c]; nextt[c] = 0; pc[t] = FTS
     :: pc[t] == FTS ->                                             /* finish_task_switch */
        preempt[c]--; irqs_off[c] = 0; pc[t] = ret[t]; ret[t] = 0
     :: pc[t] == RF1 -> preempt[c]--; irqs_off[c] = 0; pc[t] = SYX  /* schedule_tail */
     :: pc[t] == SYX -> pc[t] = X1                                  /* syscall_exit_to_user_mode */
     :: pc[t] == X1 ->                                              /* exit_to_user_mode_loop */
        irqs_off[c] = 1;
        if :: need_resched[t] -> ret[t] = X1; pc[t] = S1 :: else -> pc[t] = X2 fi
     :: pc[t] == X2 -> pc[t] = X3                                   /* arch_exit_to_user_mode_prepare */
     :: pc[t] == X3 ->                                              /* fpregs_restore_userregs */
        if :: need_fpu_load[t] -> msr[c] = fp_pasid[t]; fpowner[c] = t; need_fpu_load[t] = 0 :: else -> skip fi;
        pc[t] = X4
     :: pc[t] == X4 -> pc[t] = X5                                   /* SWITCH_TO_USER_CR3 */
     :: pc[t] == X5 -> irqs_off[c] = 0; pc[t] = K_USER              /* return_to_user */
     :: pc[t] == K_USER ->                                          /* user: the next op */
        op = prog[t * NOPS + upc[t]];
        if
        :: op == OP_BIND -> upc[t]++; sysop[t] = SC_OPEN; pc[t] = SY1
        :: op == OP_UNBIND -> upc[t]++; sysop[t] = SC_CLOSE; pc[t] = SY1
        :: op == OP_YIELD -> upc[t]++; sysop[t] = SC_YIELD; pc[t] = SY1
        :: op == OP_END -> sysop[t] = SC_EXIT; pc[t] = SY1
        :: op == OP_COMPUTE -> upc[t]++
        :: op == OP_WAIT -> if :: done[t] == sub[t] -> upc[t]++ :: else -> skip fi
        :: op == OP_ENQ ->
           if
           :: msr[c] == 0 -> irqs_off[c] = 1; pc[t] = G1            /* #GP */
           :: msr[c] != 0 && wqn < WQD ->
              wq_pasid[wqn] = msr[c]; wq_task[wqn] = t; wqn++; sub[t]++; upc[t]++
           :: else -> skip                                          /* ZF=1: retry */
           fi
        fi
     :: pc[t] == SY1 -> pc[t] = SY2                                 /* syscall_enter_from_user_mode */
     :: pc[t] == SY2 ->                                             /* syscall_body */
        if
        :: sysop[t] == SC_OPEN -> pc[t] = O1
        :: sysop[t] == SC_CLOSE -> fd[t] = 0; rret[t] = SYX; pc[t] = R1
        :: sysop[t] == SC_YIELD -> ret[t] = SYX; pc[t] = S1
        :: sysop[t] == SC_EXIT -> pc[t] = E1
        fi;
        sysop[t] = 0
     :: pc[t] == O1 -> fd[t] = 1; pc[t] = O2                        /* alloc_file */
     :: pc[t] == O2 -> if :: lock == 0 -> lock = t + 1; pc[t] = O3 :: else -> skip fi   /* mutex_lock */
     :: pc[t] == O3 ->                                              /* iommu_alloc_mm_data */
        if
        :: mmpasid[mmof[t]] == 0 ->
           p = 1;
           do :: p < NPASID && used[p] -> p++ :: else -> break od;
           assert(p < NPASID);
           no_descriptor_for(p);
           used[p] = 1; mmpasid[mmof[t]] = p
        :: else -> skip
        fi;
        fpasid[t] = mmpasid[mmof[t]]; pc[t] = O4
     :: pc[t] == O4 -> mmcount[mmof[t]]++; nbonds[mmof[t]]++; pc[t] = O5   /* iommu_sva_bind_device */
     :: pc[t] == O5 -> pt[fpasid[t]] = mmof[t]; pc[t] = O6          /* iommu_attach_device_pasid */
     :: pc[t] == O6 -> lock = 0; pc[t] = SYX                        /* mutex_unlock */
     :: pc[t] == G1 -> EXC_GP_IRQ_ENABLE; pc[t] = G2                /* cond_local_irq_enable */
     :: pc[t] == G2 ->                                              /* try_fixup_enqcmd_gp */
        p = mmpasid[mmof[t]];
        if
        :: p == 0 || activated[t] ->
           assert(!activated[t]);                                   /* pasid-lost */
           pc[t] = G4
        :: else -> FIXUP_AT_G2; pc[t] = G3
        fi
     :: pc[t] == G3 -> FIXUP_AT_G3; pc[t] = G4                      /* wrmsrl */
     :: pc[t] == G4 -> pc[t] = X1                                   /* irqentry_exit_to_user */
     :: pc[t] == R1 ->                                              /* idxd_device_drain_pasid */
        i = 0; op = 0;
        do :: i < wqn -> if :: wq_pasid[i] == fpasid[t] -> op = 1 :: else -> skip fi; i++ :: else -> break od;
        if :: op == 0 -> pc[t] = R2 :: else -> skip fi
     :: pc[t] == R2 -> if :: lock == 0 -> lock = t + 1; pc[t] = R3 :: else -> skip fi   /* mutex_lock */
     :: pc[t] == R3 -> nbonds[mmof[t]]--; pt[fpasid[t]] = 0; pc[t] = R4   /* iommu_sva_unbind_device */
     :: pc[t] == R4 -> mmdrop(mmof[t]); pc[t] = R5                 /* mmdrop */
     :: pc[t] == R5 -> lock = 0; pc[t] = rret[t]; rret[t] = 0       /* mutex_unlock */
     :: pc[t] == E1 -> pc[t] = E2                                   /* exit_signals */
     :: pc[t] == E2 -> pc[t] = E3                                   /* mm_pasid_task_exit */
     :: pc[t] == E3 -> mmcount[mmof[t]]++; pc[t] = E4               /* exit_mm: mmgrab */
     :: pc[t] == E4 ->                                              /* atomic_dec_and_test */
        users[mmof[t]]--;
        if :: users[mmof[t]] == 0 -> pc[t] = E5 :: else -> pc[t] = E6 fi
     :: pc[t] == E5 -> FREE_AT_MMPUT; pc[t] = E6                    /* __mmput */
     :: pc[t] == E6 -> mmdrop(mmof[t]); pc[t] = E7                  /* mmdrop */
     :: pc[t] == E7 ->                                              /* exit_files: close_files */
        if :: fd[t] -> fd[t] = 0; rret[t] = E7; pc[t] = R1 :: else -> pc[t] = E8 fi
     :: pc[t] == E8 -> dead[t] = 1; mmdrop(mmof[t]); ret[t] = 0; pc[t] = S1   /* do_task_dead */
     fi
  fi;
  t = 0; op = 0; p = 0; i = 0
}

proctype cpu(byte c) {
  byte t, op, p, i;
end:
  do
  :: d_step { !halted[c] || pending[c] -> cpu_step(c) }
  od
}

/* The tick on CPU c: a possible preemption, when a task waits in its run queue. */
proctype tick(byte c) {
end:
  do
  :: d_step { !halted[c] && !pending[c] && rqn[c] > 0 && npre < BOUND -> pending[c] = 1; npre++ }
  od
}

/* The device completes its oldest descriptor; the DMA must land in the submitter's mm. */
proctype device() {
  byte i;
end:
  do
  :: d_step {
       wqn > 0 ->
       assert(pt[wq_pasid[0]] == mmof[wq_task[0]]);                   /* dma-wrong-space */
       done[wq_task[0]]++;
       i = 0;
       do :: i + 1 < wqn -> wq_pasid[i] = wq_pasid[i + 1]; wq_task[i] = wq_task[i + 1]; i++ :: else -> break od;
       wq_pasid[wqn - 1] = 0; wq_task[wqn - 1] = 0; wqn--; i = 0
     }
  od
}

/* Boot: an idle task on each CPU; process i's task on CPU i % NCPU's run queue (asidlab's round robin), each with its own mm. */
inline boot() {
  c = 0;
  do
  :: c < NCPU -> curr[c] = c; pc[c] = K_IDLE; c++
  :: else -> break
  od;
  c = 0;
  do
  :: c < NPROC -> pc[NCPU + c] = RF1; mmof[NCPU + c] = NCPU + c; users[NCPU + c] = 1; mmcount[NCPU + c] = 1;
     rq[(c % NCPU) * NT + rqn[c % NCPU]] = NCPU + c; rqn[c % NCPU]++; c++
  :: else -> break
  od
}

/* The scenario file defines programs() and then runs START (the init process). */
#define START init { byte c; atomic { boot(); programs(); c = 0; do :: c < NCPU -> run cpu(c); run tick(c); c++ :: else -> break od; run device() } }
