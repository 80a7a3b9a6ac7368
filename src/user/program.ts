// User programs as the CPU sees them: a flat code array of (opcode, arg)
// pairs. The scenario compiler produces them; the user-mode executor runs
// them one op per step. Program text is static, so it lives outside the
// machine state; a task's position in it (upc, loop counters) is state.

import { USER_OPS, type UserOpName } from "./ops.js";

/** Each op's opcode by name (from the one table, USER_OPS in ops.ts): `OPCODE.compute` is 3. */
export const OPCODE: { readonly [N in UserOpName]: (typeof USER_OPS)[N]["opcode"] } = Object.fromEntries(
  Object.entries(USER_OPS).map(([name, def]) => [name, def.opcode]),
) as { [N in UserOpName]: (typeof USER_OPS)[N]["opcode"] };

/** Op names indexed by opcode (traces print them). */
export const OPCODE_NAMES: readonly UserOpName[] = (Object.keys(USER_OPS) as UserOpName[]).sort(
  (a, b) => USER_OPS[a].opcode - USER_OPS[b].opcode,
);
