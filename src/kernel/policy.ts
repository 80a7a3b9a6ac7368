// The model's switches, defined once: the policies (each a tuple of values,
// the first being mainline's default) and the kernel variants (historical or
// proposed code, each with the configuration it needs). The scenario schema,
// the compiler, the CLI and the kernel's own paths all derive from these
// tables, so a misspelt policy value or variant name does not compile.

/** The policies and their values; the first value of each is the default (mainline behaviour). */
export const POLICIES = {
  pasid_lifetime: ["mm", "unbind", "task-refcount", "static"],
  pasid_msr: ["gp-fixup", "ipi", "task-work", "ctxsw-resync"],
  user_asid_flush: ["deferred", "immediate"],
  tlb_shootdown: ["ipi", "invlpgb"],
  user_flush_test: ["bt-btr", "btr"],
  xstate_helper: ["lock-and-load", "update", "replace"],
  xstate_check: ["off", "on"],
  nmi_restore_cr3: ["paranoid", "always"],
  lazy_tlb: ["lazy", "init-mm"],
} as const;

export type PolicyKey = keyof typeof POLICIES;
/** The values of one policy: `Policy<"pasid_msr">` is `"gp-fixup" | "ipi" | ...`. */
export type Policy<K extends PolicyKey> = (typeof POLICIES)[K][number];
/** A value for every policy (a scenario's `policy:` after defaults). */
export type Policies = { [K in PolicyKey]: Policy<K> };

/** What a kernel variant needs of the configuration to mean anything (checked by the compiler). */
export interface VariantRequirements {
  /** It changes the PASID/device model: the scenario must declare a device. */
  readonly devices?: true;
  /** It changes this `pasid_msr` policy's code: the policy must be this value. */
  readonly pasidMsr?: Policy<"pasid_msr">;
  /** It changes the deferred user-PCID flush mask: machine.pti, machine.pcid and user_asid_flush 'deferred'. */
  readonly deferredUserFlush?: true;
}

export interface VariantDef {
  /** One line: what the code is and where it comes from. */
  readonly description: string;
  readonly needs: VariantRequirements;
}

/** Kernel variants the model knows: historical or proposed code, each from a thread or commit. */
export const KERNEL_VARIANTS = {
  "free-at-mmput": {
    description:
      "5.18-rc1: mm_pasid_drop() in __mmput(), before exit_files() drained the device (fixed by 2667ed10d9f0)",
    needs: { devices: true },
  },
  "no-drain": {
    description: "file release unbinds without DRAIN_PASID on the device",
    needs: { devices: true },
  },
  "gp-fixup-irqs-on": {
    description:
      "seed 000: the #GP fixup's checks and MSR write run with interrupts and preemption enabled ('preemption or BH here: kaboom')",
    needs: { devices: true, pasidMsr: "gp-fixup" },
  },
  "ipi-in-bh": {
    description:
      "5.10: the PASID IPI's update_pasid() lands inside an fpregs_lock() section (kernel_fpu_begin) and is overwritten by its XSAVES: a lost update, why ENQCMD was force-disabled in 5.13 (9bfecd058339)",
    needs: { devices: true, pasidMsr: "ipi" },
  },
  "83b0177a6c48": {
    description:
      "6.14-6.15: switch_mm_irqs_off() stores loaded_mm and loads tlb_gen with no barrier when its mm_cpumask bit is already set; under x86-TSO the flusher and the switcher can both miss each other's store (fixed by 83b0177a6c48)",
    needs: {},
  },
  "user-pcid-mask-u16": {
    description:
      "6.15: user_pcid_flush_mask is an unsigned short; under PTI a global ASID's kernel PCID (7-2046) sets and tests bits past it, in the rest of struct tlb_state (fixed by the posted 'x86/mm: Fix potential overflow in user_pcid_flush_mask', June 2025)",
    needs: { deferredUserFlush: true },
  },
  "exec-clears-pasid-activated": {
    description:
      "proposed fix (docs/findings/exec-pasid-activated.md): fpu_flush_thread() clears current->pasid_activated where exec resets the xstate (and with it IA32_PASID), so the new image's first ENQCMD takes the #GP fixup again instead of SIGSEGV",
    needs: {},
  },
  fea4e317f9e7: {
    description:
      "6.14-6.15: should_flush_tlb() sends no IPI to a CPU in LOADED_MM_SWITCHING: one between its NOFLUSH CR3 load and loaded_mm = next misses the flush (fixed by fea4e317f9e7)",
    needs: {},
  },
  "no-sleeper-cancel": {
    description:
      "a mutant, no kernel version: do_nanosleep() goes to do_exit() on a fatal signal without hrtimer_cancel(), so a sleeper killed by exec's de_thread() leaves its timer armed for a dead task (the model's own bug until issue #18, kept so that check is seen to find it)",
    needs: {},
  },
} as const satisfies Record<string, VariantDef>;

export type KernelVariant = keyof typeof KERNEL_VARIANTS;

/** The variant names, in the table's order. */
export const KERNEL_VARIANT_NAMES = Object.keys(KERNEL_VARIANTS) as KernelVariant[];

export function isKernelVariant(name: string): name is KernelVariant {
  return Object.hasOwn(KERNEL_VARIANTS, name);
}

/** A variant's requirements, widened to the interface (the const table's literal types are narrower). */
export function variantNeeds(v: KernelVariant): VariantRequirements {
  return KERNEL_VARIANTS[v].needs;
}
