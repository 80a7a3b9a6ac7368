import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { InputError } from "../src/scenario/errors.js";
import { scenarioJsonSchema } from "../src/scenario/json-schema.js";
import { builtinScenarioDir, loadScenarioFile, loadScenarioString } from "../src/scenario/load.js";
import { normalizeProgram, POLICY_VALUES, type Program } from "../src/scenario/schema.js";

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

/** The InputError a load throws; every such message is a single line. */
function inputError(load: () => unknown): string {
  try {
    load();
  } catch (err) {
    assert.ok(err instanceof InputError, `expected an InputError, got ${String(err)}`);
    assert.ok(!err.message.includes("\n"), `message is not one line: ${JSON.stringify(err.message)}`);
    return err.message;
  }
  assert.fail("expected the scenario to be rejected");
}

const fromYaml = (source: string) => inputError(() => loadScenarioString(source, "x.yaml"));

/** A valid scenario with `program` spliced in at line 6 (each op on its own line, indented 6). */
const withProgram = (ops: string) =>
  `name: t\ndevices: { dsa0: {} }\nprocesses:\n  - name: p\n    program:\n${ops.replace(/^/gm, "      ")}\n`;

describe("loading scenarios", () => {
  test("the design's example scenario loads, with every default filled in", () => {
    const loaded = loadScenarioFile(fixture("thread-pool.yaml"));
    const s = loaded.scenario;
    assert.equal(s.name, "thread-pool");
    assert.equal(s.seed, 1);
    assert.deepEqual(s.machine, {
      cpus: 4,
      pti: true,
      pcid: true,
      invpcid: true,
      asid_slots: 6,
      global_asids_in_use: 0,
      initial_jiffies: 0,
      pasid_bits: 20,
      xfeatures: ["x87", "sse", "avx", "pkru", "pasid"],
      cpuid_xstate: {},
      xcomp_perm: [],
      softirq_fpu: false,
      nmi: false,
      cpu_mhz: 2000,
      tick_ns: 1_000_000,
      timeslice_ns: 3_000_000,
      quantum_ns: 500,
      jitter_pct: 2,
    });
    assert.deepEqual(s.devices, { dsa0: { wq: "shared", wq_depth: 16, latency_ns: 2000, kernel_wq: false } });
    assert.equal(s.policy.user_flush_test, "bt-btr");
    assert.equal(s.policy.xstate_helper, "lock-and-load");
    assert.equal(s.policy.xstate_check, "off");
    assert.deepEqual(s.costs, {});
    assert.deepEqual(s.kernel, []);
    assert.equal(s.processes[0].count, 2);
    assert.equal(s.processes[0].threads, 8);

    const program = normalizeProgram(s.processes[0].program, ["processes", 0, "program"]);
    assert.equal(program.repeat, 100);
    assert.deepEqual(
      program.ops.map((op) => [op.kind, op.count]),
      [
        ["bind", 1],
        ["enqcmd", 4],
        ["unbind", 1],
        ["compute", 1],
      ],
    );
    // ops carry their place in the file, for located messages later on
    assert.equal(loaded.locate(program.ops[1].path), `${fixture("thread-pool.yaml")}:16:11`);
  });

  test("locate falls back to the nearest node that exists", () => {
    const loaded = loadScenarioFile(fixture("thread-pool.yaml"));
    assert.equal(loaded.locate(["machine", "invpcid"]), `${fixture("thread-pool.yaml")}:5:3`);
    assert.equal(loaded.locate([]), `${fixture("thread-pool.yaml")}:2:1`);
  });

  test("a JSON scenario loads", () => {
    const s = loadScenarioFile(fixture("fork-exec.json")).scenario;
    assert.equal(s.seed, 7);
    assert.equal(s.policy.pasid_msr, "ipi");
    assert.equal(s.policy.pasid_lifetime, "mm");
    const [bind, fpu, fork, wait, exit] = normalizeProgram(s.processes[0].program, []).ops;
    assert.deepEqual(bind, { kind: "bind", device: "dsa0", private: true, count: 1, path: [0] });
    assert.deepEqual(fpu, { kind: "fpu", components: ["avx", "amx"], count: 1, path: [1] });
    assert.equal(fork.kind, "fork");
    assert.equal(wait.kind, "wait");
    assert.deepEqual(exit, { kind: "exit", code: 0, count: 1, path: [4] });
  });

  test("malformed YAML is reported at its line and column", () => {
    const message = inputError(() => loadScenarioFile(fixture("malformed.yaml")));
    assert.match(message, /^.*malformed\.yaml:5:18: Nested mappings are not allowed/);
  });

  test("a .json file must be JSON, and the error is located", () => {
    const message = inputError(() => loadScenarioString('{\n  "name": "x",\n}\n', "x.json"));
    assert.match(message, /^x\.json:3:1: invalid JSON: /);
  });

  test("an empty file, a list at the top, or two documents are rejected", () => {
    assert.match(fromYaml(""), /^x\.yaml:1:1: empty scenario/);
    assert.match(fromYaml("# nothing\n- 1\n"), /^x\.yaml:2:1: the top level must be a mapping/);
    assert.match(fromYaml("name: a\n---\nname: b\n"), /^x\.yaml:2:1: a scenario file holds one document/);
  });

  test("a value out of range names its path and points at the value", () => {
    const message = fromYaml(
      "name: t\nmachine:\n  cpus: 0\nprocesses: [{ name: p, program: [compute: 1] }]\n",
    );
    assert.equal(message, "x.yaml:3:9: machine.cpus: Too small: expected number to be >=1");
  });

  test("an unknown top-level key is rejected at the key", () => {
    const message = fromYaml(
      "name: t\nmachin: { cpus: 2 }\nprocesses: [{ name: p, program: [compute: 1] }]\n",
    );
    assert.match(
      message,
      /^x\.yaml:2:1: unknown key 'machin' \(expected one of: name, seed, machine, .*processes\)$/,
    );
  });

  test("a misspelt required key is reported as unknown rather than as missing", () => {
    const message = fromYaml("name: t\nprocess: [{ name: p, program: [compute: 1] }]\n");
    assert.match(message, /^x\.yaml:2:1: unknown key 'process' /);
  });

  test("an unknown machine key is rejected at the key", () => {
    const message = fromYaml(
      "name: t\nmachine:\n  cpus: 2\n  pcids: false\nprocesses: [{ name: p, program: [compute: 1] }]\n",
    );
    assert.match(message, /^x\.yaml:4:3: machine: unknown key 'pcids' \(expected one of: cpus, pti, pcid, /);
  });

  test("a missing required key is reported at the mapping that lacks it", () => {
    assert.equal(fromYaml("seed: 3\nprocesses: []\n"), "x.yaml:1:1: missing required key 'name'");
    assert.equal(
      fromYaml("name: t\nprocesses:\n  - name: p\n"),
      "x.yaml:3:5: processes[0]: missing required key 'program'",
    );
  });

  test("an unknown op is rejected at the op, naming it and listing the valid ones", () => {
    const message = fromYaml(withProgram("- compute: 10\n- frobnicate: 3"));
    assert.match(
      message,
      /^x\.yaml:7:9: processes\[0\]\.program\[1\]: unknown op 'frobnicate' \(expected one of: /,
    );
    assert.match(
      message,
      /bind, unbind, enqcmd, wait, compute, syscall, yield, sleep, fpu, xstate_write, kernel_fpu, req_xcomp_perm, gp_fault, signal, mmap, /,
    );
  });

  test("an unknown op inside a forked child's loop is located there", () => {
    const message = fromYaml(
      withProgram("- fork:\n    repeat: 2\n    do:\n      - mmap: 4\n      - frob: 1"),
    );
    assert.match(message, /^x\.yaml:10:15: processes\[0\]\.program\[0\]\.fork\.do\[1\]: unknown op 'frob'/);
  });

  test("a wrong value inside an op points at the value", () => {
    const message = fromYaml(withProgram("- clone_vm:\n    - enqcmd: 5"));
    assert.match(
      message,
      /^x\.yaml:7:21: processes\[0\]\.program\[0\]\.clone_vm\[0\]\.enqcmd: .*expected string/,
    );
  });

  test("an op written without its value is explained", () => {
    const message = fromYaml(withProgram("- compute: 1\n- yield"));
    assert.equal(
      message,
      "x.yaml:7:9: processes[0].program[1]: expected an op: a mapping such as 'compute: 5000'",
    );
  });

  test("two ops in one list item are rejected", () => {
    const message = fromYaml(withProgram("- bind: dsa0\n  enqcmd: dsa0"));
    assert.equal(
      message,
      "x.yaml:6:9: processes[0].program[0]: one op per list item, found 'bind' and 'enqcmd' (start a new '- ' item)",
    );
  });

  test("'count' on an op that cannot repeat is rejected at 'count'", () => {
    const message = fromYaml(withProgram("- unbind: dsa0\n  count: 2"));
    assert.equal(message, "x.yaml:7:16: processes[0].program[0].count: 'count' does not apply to 'unbind'");
  });

  test("an op naming an undeclared device is rejected at the device name", () => {
    const message = fromYaml(withProgram("- enqcmd: dsa1"));
    assert.equal(
      message,
      "x.yaml:6:17: processes[0].program[0].enqcmd: unknown device 'dsa1' (declared: dsa0)",
    );
  });

  test("a missing file is one short line", () => {
    assert.equal(
      inputError(() => loadScenarioFile("no/such/scenario.yaml")),
      "no/such/scenario.yaml: cannot read file: no such file",
    );
  });

  test("too many tasks are rejected", () => {
    const message = fromYaml(
      "name: t\nprocesses:\n  - { name: a, count: 10, threads: 10000, program: [compute: 1] }\n" +
        "  - { name: b, program: [compute: 1] }\n",
    );
    assert.equal(
      message,
      "x.yaml:3:3: processes: too many tasks: 100001 (count x threads summed over processes; max 100000)",
    );
  });
});

describe("normalised programs", () => {
  test("nested repeat and fork become a tree of ops with counts and document paths", () => {
    const program: Program = {
      repeat: 3,
      do: [
        { repeat: 2, do: [{ enqcmd: "dsa0", count: 4 }, { yield: null }] },
        { fork: [{ exit: 7 }] },
        { syscall: 0 },
      ],
    };
    assert.deepEqual(normalizeProgram(program, ["p"]), {
      repeat: 3,
      ops: [
        {
          kind: "repeat",
          n: 2,
          count: 1,
          path: ["p", "do", 0],
          program: {
            repeat: 1,
            ops: [
              { kind: "enqcmd", device: "dsa0", count: 4, path: ["p", "do", 0, "do", 0] },
              { kind: "yield", count: 1, path: ["p", "do", 0, "do", 1] },
            ],
          },
        },
        {
          kind: "fork",
          count: 1,
          path: ["p", "do", 1],
          program: { repeat: 1, ops: [{ kind: "exit", code: 7, count: 1, path: ["p", "do", 1, "fork", 0] }] },
        },
        { kind: "syscall", ns: 0, count: 1, path: ["p", "do", 2] },
      ],
    });
  });
});

describe("tooling", () => {
  test("scenarioJsonSchema() is a draft 2020-12 JSON Schema", () => {
    const schema = scenarioJsonSchema() as { $schema?: string; properties?: Record<string, unknown> };
    assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
    assert.ok(schema.properties?.processes);
    assert.doesNotThrow(() => JSON.stringify(schema));
  });

  test("POLICY_VALUES lists each policy's values, the default first", () => {
    assert.deepEqual(POLICY_VALUES.pasid_lifetime, ["mm", "unbind", "task-refcount", "static"]);
    assert.equal(POLICY_VALUES.pasid_msr[0], "gp-fixup");
    assert.deepEqual(
      Object.keys(POLICY_VALUES).sort(),
      [
        "pasid_lifetime",
        "pasid_msr",
        "tlb_shootdown",
        "user_asid_flush",
        "user_flush_test",
        "xstate_check",
        "xstate_helper",
        "nmi_restore_cr3",
        "lazy_tlb",
      ].sort(),
    );
  });

  test("the built-in scenarios live next to package.json", () => {
    const dir = builtinScenarioDir();
    assert.ok(dir.endsWith("scenarios"));
    assert.ok(existsSync(join(dirname(dir), "package.json")));
  });
});

describe("robustness", () => {
  /** Loads `text`; true if it loaded or failed with a one-line, located InputError. */
  function loadsOrFailsCleanly(text: string, file: string): boolean {
    try {
      loadScenarioString(text, file);
    } catch (err) {
      return err instanceof InputError && !err.message.includes("\n") && err.message.startsWith(`${file}:`);
    }
    return true;
  }

  test("any scenario-shaped input either loads or fails with a one-line located InputError", () => {
    const key = fc.constantFrom("name", "cpus", "program", "do", "repeat", "fork", "enqcmd", "count", "frob");
    const { node } = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: "small", maxDepth: 4 },
        fc.oneof(fc.integer({ min: -2, max: 300 }), fc.boolean(), fc.constant(null), fc.constant("dsa0")),
        fc.array(tie("node"), { maxLength: 3 }),
        fc.dictionary(key, tie("node"), { maxKeys: 3 }),
      ),
    }));
    const scenario = fc.record({
      name: node,
      devices: fc.constant({ dsa0: {} }),
      processes: fc.array(fc.record({ name: fc.constantFrom("p", "q"), program: node }), { maxLength: 3 }),
    });
    fc.assert(
      fc.property(fc.oneof(scenario, node), (v) => {
        const text = JSON.stringify(v);
        return loadsOrFailsCleanly(text, "f.json") && loadsOrFailsCleanly(text, "f.yaml");
      }),
      { numRuns: 200 },
    );
  });

  test("any text either loads or fails with a one-line located InputError", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (text) => loadsOrFailsCleanly(text, "f.yaml")),
      { numRuns: 200 },
    );
  });
});
