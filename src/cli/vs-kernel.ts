// `vs-kernel`: the scenario on a real Linux kernel in QEMU too, its counts beside the model's.

import { type Command, Option } from "commander";
import { loadScenarioFile } from "../scenario/load.js";
import { vsKernelTable } from "../vskernel/compare.js";
import { vsKernel } from "../vskernel/vskernel.js";
import { intArg, resolveScenario } from "./args.js";

interface VsKernelFlags {
  kernelImage: string;
  accel: "auto" | "kvm" | "tcg";
  skipUnsupported?: boolean;
  timeout: number;
  json?: boolean;
}

async function cmdVsKernel(file: string, o: VsKernelFlags): Promise<void> {
  const r = await vsKernel(loadScenarioFile(resolveScenario(file)), {
    kernelImage: o.kernelImage,
    accel: o.accel,
    skipUnsupported: o.skipUnsupported === true,
    timeoutMs: o.timeout * 1000,
  });
  process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : vsKernelTable(r));
}

/** `vs-kernel SCENARIO`. */
export function registerVsKernel(cli: Command): void {
  cli
    .command("vs-kernel")
    .description(
      "run the scenario on a real Linux kernel in QEMU too: its tracepoint counts beside the model's",
    )
    .argument("<scenario>", "a scenario file (.yaml/.json) or a built-in scenario's name")
    .option(
      "--kernel-image <auto|path>",
      "a bzImage, or auto: Debian's linux-image-amd64 (apt-get download, cached)",
      "auto",
    )
    .addOption(
      new Option("--accel <name>", "KVM or TCG (auto: KVM where it works)")
        .choices(["auto", "kvm", "tcg"])
        .default("auto"),
    )
    .option(
      "--skip-unsupported",
      "leave out ops with no counterpart in the guest (listed), instead of refusing",
    )
    .option("--timeout <seconds>", "give up on the guest after this long", intArg("--timeout", 5, 3600), 120)
    .option(
      "--json",
      "one JSON object: {scenario, kernel: {version, accel}, rows: [{metric, kernel, model, ratio, exact}]}",
    )
    .action(async (file: string, o: VsKernelFlags) => {
      await cmdVsKernel(file, o);
    });
}
