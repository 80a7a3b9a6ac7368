// Program text's ops come from one table (USER_OPS in src/user/ops.ts); the
// opcodes are those programs have always been compiled with.

import assert from "node:assert/strict";
import { test } from "node:test";
import { USER_OPS } from "../src/user/ops.js";
import { OPCODE, OPCODE_NAMES } from "../src/user/program.js";

test("opcodes are the historical numbers, names indexed by opcode", () => {
  assert.deepEqual(OPCODE_NAMES, [
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
  ]);
  OPCODE_NAMES.forEach((name, i) => {
    assert.equal(OPCODE[name], i);
    assert.equal(USER_OPS[name].opcode, i);
  });
});
