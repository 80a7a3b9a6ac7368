// The hardware floor's view of the machine: the Machine (state, findings,
// metrics, charges) and the description of what the hardware is: its
// devices, the CPU features its instructions depend on, and the XSTATE
// layout CPUID enumerates. The kernel's ModelConfig is a superset, so a
// Kernel is an Hw.

import type { Machine } from "../machine/machine.js";
import type { DeviceParams } from "./device.js";
import type { XstateLayout } from "./xstate.js";

export interface HwModel {
  readonly devices: readonly DeviceParams[];
  /** CR4.PCIDE (X86_FEATURE_PCID). */
  readonly tlb: { readonly pcid: boolean };
  /** CPUID leaf 0xD: the components, their sizes and alignment. */
  readonly xstate: XstateLayout;
}

export type Hw = Machine & { readonly model: HwModel };
