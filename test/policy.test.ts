// The policies and kernel variants come from one table (kernel/policy.ts):
// the schema, the compiler and the model's types are derived from it.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ModelConfig } from "../src/kernel/kernel.js";
import {
  isKernelVariant,
  KERNEL_VARIANT_NAMES,
  KERNEL_VARIANTS,
  type KernelVariant,
  POLICIES,
  type Policy,
} from "../src/kernel/policy.js";
import { POLICY_VALUES } from "../src/scenario/schema.js";

describe("one definition of policies and kernel variants", () => {
  test("the schema's policy values are the kernel's table", () => {
    assert.equal(POLICY_VALUES, POLICIES);
  });

  test("variant names are checked by the compiler, not only at run time", () => {
    const variants: ModelConfig["variants"] = new Set<KernelVariant>(["gp-fixup-irqs-on"]);
    assert.ok(variants.has("gp-fixup-irqs-on"));
    // @ts-expect-error a misspelt variant does not compile
    assert.ok(!variants.has("gp-fixup-irqs-onn"));
    // @ts-expect-error a misspelt policy value does not compile
    const bad: Policy<"pasid_msr"> = "gp-fixupp";
    assert.equal(bad, "gp-fixupp");
  });

  test("isKernelVariant knows exactly the table's names", () => {
    assert.deepEqual(KERNEL_VARIANT_NAMES, Object.keys(KERNEL_VARIANTS));
    for (const v of KERNEL_VARIANT_NAMES) assert.ok(isKernelVariant(v));
    assert.ok(!isKernelVariant("bogus"));
    assert.ok(!isKernelVariant("toString"));
  });
});
