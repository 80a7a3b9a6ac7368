// Opening and closing a device's character file, as idxd's cdev does it:
//   open:    idxd_cdev_open -> iommu_sva_bind_device(dev, mm) under
//            iommu_sva_lock: PASID reuse or allocation, one handle per
//            (device, mm) with a refcount, attach to the device's PASID
//            table, and the bond's mmgrab of the mm. One error exit path.
//   release: when the file's last reference goes (close, or exit_files at
//            exit, which runs after exit_mm): DRAIN_PASID on the device ->
//            iommu_sva_unbind_device: clear the PASID-table entry -> flush
//            the PASID cache, IOTLB and device TLB -> drop the handle ->
//            freeing the domain drops the mmgrab (and with it, maybe, the mm
//            and its PASID).
// iommu_sva_lock is a mutex; a task that finds it taken yields and tries
// again (the model's stand-in for sleeping on the mutex).

import { raise_irq } from "../hw/apic.js";
import { wq_complete, wq_outstanding } from "../hw/device.js";
import { DRAIN_WAITERS_MAX, FD_MAX, IRQ_DEVICE, TASK_INTERRUPTIBLE } from "../machine/state.js";
import {
  EMFILE,
  ENOSPC,
  flush_pasid_caches,
  iommu_alloc_global_pasid,
  iommu_alloc_mm_data,
  iommu_free_global_pasid,
  iommu_translate,
  mm_bond_put,
  pasid_get,
  pasid_put,
  pt_clear,
  pt_set,
} from "./iommu.js";
import type { Kernel } from "./kernel.js";
import { mmdrop, mmgrab } from "./mm.js";
import { defPath, frameLocals } from "./path.js";
import { P_SCHEDULE, SM_NONE, wake_up_process } from "./sched.js";
import { P_SCHED_YIELD } from "./sleep.js";

/**
 * open(dev)'s locals: a0 = the device, the open flags and (set by the first
 * step) the fd reserved for it; a1 = the new file.
 */
const OPEN = frameLocals(
  { dev: [0, 0, 8], priv: [0, 8, 1], fd: [0, 16, 16], file: [1, 0, 32, "file"] },
  "idxd_cdev_open",
);
/** open() flags of the model: a private PASID (SVM_FLAG_PRIVATE_PASID), not the mm's. */
export const OPEN_PRIVATE = OPEN.priv.put(1);
/** Fault-injection sites, in the order of FAULT_SITES in the scenario schema. */
const FAULT_ALLOC_FILE = 0;
const FAULT_ALLOC_MM_DATA = 1;
const FAULT_BIND_DEVICE = 2;
const FAULT_ATTACH = 3;
const ENOMEM = 12;
const EBUSY = 16;
/** An fd reserved by get_unused_fd_flags() but not yet installed: close() and fork do not see it. */
const FD_RESERVED = -1;

function fd_addr(k: Kernel, files: number, i: number): number {
  return k.F.fd.at + files * k.F.fd.stride + i;
}

/** The newest installed file of `files` on device `d` (its fd index), or -1. */
export function fd_of_dev(k: Kernel, files: number, d: number): number {
  for (let i = FD_MAX - 1; i >= 0; i--) {
    const f = k.w[fd_addr(k, files, i)];
    if (f > 0 && k.get(k.FL.dev, f) === d + 1) return i;
  }
  return -1;
}

/** dup_fd(): a forked child's files_struct gets the parent's files, each with one more reference. */
export function dup_fd(k: Kernel, from: number, to: number): void {
  for (let i = 0; i < FD_MAX; i++) {
    const f = k.w[fd_addr(k, from, i)];
    if (f <= 0) continue; // free, or reserved by an open in progress
    k.mem.write(fd_addr(k, to, i), f);
    k.add(k.FL.count, f, 1);
    k.metrics.refcount_ops++;
  }
}

export function sva_lock(k: Kernel, cpu: number, fr: number, pc: number): boolean {
  const holder = k.get(k.G.sva_lock, 0);
  const me = k.curr(cpu);
  if (holder === 0) {
    k.set(k.G.sva_lock, 0, me);
    return true;
  }
  if (holder === me) k.warn("sva-lock", `task ${me} takes iommu_sva_lock twice`, cpu);
  k.jump(fr, pc); // try again after yielding
  k.call(cpu, P_SCHED_YIELD);
  return false;
}

export function sva_unlock(k: Kernel, cpu: number): void {
  if (k.get(k.G.sva_lock, 0) !== k.curr(cpu))
    k.warn("sva-lock", "iommu_sva_lock released by a non-owner", cpu);
  k.set(k.G.sva_lock, 0, 0);
}

/**
 * idxd_wq_refcount() of device `d`'s work queue: its files that completed
 * open and are not yet freed (idxd_wq_get() at the end of a successful
 * open, idxd_wq_put() at the end of release). Read under iommu_sva_lock, which the
 * model's open holds where idxd holds wq->wq_lock.
 */
function wq_refcount(k: Kernel, d: number): number {
  let n = 0;
  for (let f = 1; f < k.L.file.count; f++) if (k.get(k.FL.dev, f) === d + 1 && k.get(k.FL.bond, f) !== 0) n++;
  return n;
}

/**
 * The other attached bonds that share `mm`'s SVA domain on `d`'s IOMMU
 * (iommu_sva_bind_device() looks for a domain in
 * mm->iommu_mm->sva_domains first; domain->users counts its attachments).
 * A private PASID's bond has its own domain. `except` is the bond being
 * created or released.
 */
function sva_domain_users(k: Kernel, d: number, mm: number, except: number): number {
  const iommu = k.model.devices[d].iommu;
  let n = 0;
  for (let b = 1; b < k.L.bond.count; b++) {
    if (b === except || k.get(k.B.mm, b) !== mm || k.get(k.B.priv, b) !== 0) continue;
    const bd = k.get(k.B.dev, b);
    if (bd !== 0 && k.model.devices[bd - 1].iommu === iommu) n++;
  }
  return n;
}

function bond_find(k: Kernel, d: number, mm: number): number {
  for (let b = 1; b < k.L.bond.count; b++) {
    if (k.get(k.B.dev, b) === d + 1 && k.get(k.B.mm, b) === mm && k.get(k.B.priv, b) === 0) return b;
  }
  return 0;
}

// --- open --------------------------------------------------------------------

/**
 * open(dev), its locals in OPEN: the device and OPEN_PRIVATE as user space
 * passed them (a0 = device | OPEN_PRIVATE), the fd and the file. The fd is
 * reserved first and installed only when the bind succeeded, so another
 * thread sharing the fd table never sees a half-opened file.
 */
export const P_DEV_OPEN = defPath("idxd_cdev_open", [
  [
    "alloc_file",
    (k, cpu, fr) => {
      const files = k.get(k.T.files, k.curr(cpu));
      let free = -1;
      for (let i = 0; i < FD_MAX && free < 0; i++) if (k.w[fd_addr(k, files, i)] === 0) free = i;
      if (k.should_fail(FAULT_ALLOC_FILE)) return open_fail(k, cpu, ENOMEM);
      const f = free < 0 ? 0 : k.slot_pop(k.G.file_free, k.FL.next_free);
      if (f === 0) return open_fail(k, cpu, EMFILE);
      k.set(k.FL.count, f, 1);
      k.set(k.FL.dev, f, OPEN.dev.get(k, fr) + 1);
      k.set(k.FL.opener, f, k.get(k.T.mm, k.curr(cpu)));
      k.mem.write(fd_addr(k, files, free), FD_RESERVED); // get_unused_fd_flags()
      k.add(k.G.nr_open_files, 0, 1);
      OPEN.fd.set(k, fr, free);
      OPEN.file.set(k, fr, f);
    },
  ],
  ["mutex_lock", (k, cpu, fr) => void sva_lock(k, cpu, fr, 1)],
  [
    "iommu_alloc_mm_data",
    (k, cpu, fr) => {
      const d = OPEN.dev.get(k, fr);
      const mm = k.get(k.T.mm, k.curr(cpu));
      const f = OPEN.file.get(k, fr);
      // idxd_cdev_open(): a dedicated work queue takes one client. (Its client's
      // submissions still go through the enqcmd op; the kernel's users use
      // MOVDIR64B with the WQCFG PASID there: docs/model-vs-kernel.md.)
      if (k.model.devices[d].dedicated && wq_refcount(k, d) > 0) return open_unwind(k, cpu, fr, EBUSY);
      if (k.should_fail(FAULT_ALLOC_MM_DATA)) return open_unwind(k, cpu, fr, ENOMEM);
      const pasid =
        OPEN.priv.get(k, fr) !== 0
          ? iommu_alloc_global_pasid(k, k.model.devices[d].maxPasids, cpu) || -ENOSPC
          : iommu_alloc_mm_data(k, d, mm, cpu);
      if (pasid < 0) return open_unwind(k, cpu, fr, -pasid);
      k.set(k.FL.pasid, f, pasid);
    },
  ],
  [
    "iommu_sva_bind_device",
    (k, cpu, fr) => {
      const d = OPEN.dev.get(k, fr);
      const f = OPEN.file.get(k, fr);
      const mm = k.get(k.T.mm, k.curr(cpu));
      const shared = OPEN.priv.get(k, fr) === 0 ? bond_find(k, d, mm) : 0;
      if (shared !== 0) {
        // Since 6.8-rc6: a second open of the device by the mm shares the handle.
        k.add(k.B.refs, shared, 1);
        k.metrics.refcount_ops++;
        k.set(k.FL.bond, f, shared);
        k.jump(fr, P_DEV_OPEN.pc.mutex_unlock);
        return;
      }
      const b = k.should_fail(FAULT_BIND_DEVICE) ? 0 : k.slot_pop(k.G.bond_free, k.B.next_free);
      if (b === 0) return open_unwind(k, cpu, fr, ENOMEM);
      const priv = OPEN.priv.get(k, fr) !== 0;
      const reuse = !priv && sva_domain_users(k, d, mm, b) > 0;
      k.set(k.B.dev, b, d + 1);
      k.set(k.B.mm, b, mm);
      k.set(k.B.pasid, b, k.get(k.FL.pasid, f));
      k.set(k.B.priv, b, priv ? 1 : 0);
      k.set(k.B.refs, b, 1);
      k.set(k.FL.bond, f, b);
      k.add(k.G.nr_bonds, 0, 1);
      if (reuse) {
        k.metrics.refcount_ops++; // domain->users++ on the mm's existing SVA domain
        k.charge(k.costs.atomic);
      } else {
        mmgrab(k, mm, cpu); // iommu_sva_domain_alloc(): the domain pins the mm
      }
    },
  ],
  [
    "iommu_attach_device_pasid",
    (k, cpu, fr) => {
      const d = OPEN.dev.get(k, fr);
      const f = OPEN.file.get(k, fr);
      const b = k.get(k.FL.bond, f);
      if (k.should_fail(FAULT_ATTACH) || !pt_set(k, d, k.get(k.B.pasid, b), k.get(k.B.mm, b))) {
        return open_unwind(k, cpu, fr, ENOSPC);
      }
      if (k.get(k.B.priv, b) === 0) {
        k.add(k.M.nr_bonds, k.get(k.B.mm, b), 1);
        pasid_get(k, k.get(k.B.mm, b));
      }
    },
  ],
  [
    "mutex_unlock",
    (k, cpu, fr) => {
      sva_unlock(k, cpu);
      const f = OPEN.file.get(k, fr);
      k.mem.write(fd_addr(k, k.get(k.T.files, k.curr(cpu)), OPEN.fd.get(k, fr)), f); // fd_install()
      if (k.trace !== null) k.trace.instant(cpu, "bind", { file: f, pasid: k.get(k.FL.pasid, f) });
    },
  ],
]);

/**
 * The one error exit path of open: undo what this open did, newest first,
 * then close the file. A PASID the mm received stays with the mm (mainline:
 * it is freed with the mm); a private one is freed.
 */
function open_unwind(k: Kernel, cpu: number, fr: number, errno: number): void {
  const f = OPEN.file.get(k, fr);
  const b = k.get(k.FL.bond, f);
  if (b !== 0 && k.get(k.B.refs, b) === 1 && k.get(k.B.dev, b) !== 0) {
    k.set(k.FL.bond, f, 0);
    bond_release(k, b, cpu);
  } else if (OPEN.priv.get(k, fr) !== 0 && k.get(k.FL.pasid, f) !== 0) {
    iommu_free_global_pasid(k, k.get(k.FL.pasid, f), cpu);
  }
  sva_unlock(k, cpu);
  k.mem.write(fd_addr(k, k.get(k.T.files, k.curr(cpu)), OPEN.fd.get(k, fr)), 0); // put_unused_fd()
  file_free(k, f);
  open_fail(k, cpu, errno);
}

function open_fail(k: Kernel, cpu: number, errno: number): void {
  k.metrics.bind_failures++;
  if (k.trace !== null) k.trace.instant(cpu, "bind failed", { errno });
  k.ret(cpu);
}

/** The struct file goes back; its fd entries were cleared by whoever closed it. */
function file_free(k: Kernel, f: number): void {
  k.set(k.FL.count, f, 0);
  k.set(k.FL.dev, f, 0);
  k.set(k.FL.bond, f, 0);
  k.set(k.FL.pasid, f, 0);
  k.set(k.FL.opener, f, 0);
  k.slot_push(k.G.file_free, k.FL.next_free, f);
  k.add(k.G.nr_open_files, 0, -1);
}

/** Free a bond with nothing attached: the domain's mmgrab goes, a private PASID goes. */
function bond_release(k: Kernel, b: number, cpu: number): void {
  const mm = k.get(k.B.mm, b);
  const priv = k.get(k.B.priv, b) !== 0;
  const pasid = k.get(k.B.pasid, b);
  const d = k.get(k.B.dev, b) - 1;
  // --domain->users: the domain (and its mmgrab) goes with its last attachment.
  const lastUser = priv || sva_domain_users(k, d, mm, b) === 0;
  k.set(k.B.dev, b, 0);
  k.set(k.B.mm, b, 0);
  k.set(k.B.pasid, b, 0);
  k.set(k.B.refs, b, 0);
  k.set(k.B.priv, b, 0);
  k.slot_push(k.G.bond_free, k.B.next_free, b);
  k.add(k.G.nr_bonds, 0, -1);
  if (priv) iommu_free_global_pasid(k, pasid, cpu);
  if (lastUser) {
    mmdrop(k, mm, cpu); // iommu_domain_free(): the domain's mmgrab
  } else {
    k.metrics.refcount_ops++;
    k.charge(k.costs.atomic);
  }
}

// --- close and release -----------------------------------------------------

const CLOSE = frameLocals({ dev: [0] });

/**
 * close(): a0 = the device (CLOSE.dev); the model closes the newest open file of that
 * device in the fd table. Lookup and removal are one step, as close_fd()
 * does them under files->file_lock: two threads never take the same fd.
 * fput(); the last reference releases the file. No such file: EBADF, a
 * program error that is counted and traced.
 */
export const P_CLOSE = defPath("close_fd", [
  [
    "close_fd",
    (k, cpu, fr) => {
      const files = k.get(k.T.files, k.curr(cpu));
      const fd = fd_of_dev(k, files, CLOSE.dev.get(k, fr));
      if (fd < 0) {
        k.metrics.ebadf++;
        if (k.trace !== null) k.trace.instant(cpu, "close: EBADF", { device: CLOSE.dev.get(k, fr) });
        return;
      }
      const a = fd_addr(k, files, fd);
      const f = k.w[a];
      k.mem.write(a, 0);
      fput(k, cpu, f);
    },
  ],
]);

function fput(k: Kernel, cpu: number, f: number): void {
  k.metrics.refcount_ops++;
  k.charge(k.costs.atomic);
  const n = k.add(k.FL.count, f, -1);
  if (n < 0) k.warn("files-refcount", `file ${f}: f_count went negative`, cpu);
  if (n === 0) k.call(cpu, P_FILE_RELEASE, RELEASE.file.put(f));
}

const RELEASE = frameLocals({ file: [0, 0, 32, "file"], drained: [1] }, "idxd_file_dev_release");

/** idxd_file_dev_release(file): a0 = the file; a1 = 1 once the drain was issued. */
export const P_FILE_RELEASE = defPath("idxd_file_dev_release", [
  [
    "idxd_device_drain_pasid",
    (k, cpu, fr) => {
      const f = RELEASE.file.get(k, fr);
      const d = k.get(k.FL.dev, f) - 1;
      const pasid = k.get(k.FL.pasid, f);
      if (RELEASE.drained.get(k, fr) === 0 && k.trace !== null)
        k.trace.instant(cpu, "release", { file: f, pasid });
      if (k.model.variants.has("no-drain")) return;
      if (RELEASE.drained.get(k, fr) === 0) {
        RELEASE.drained.set(k, fr, 1);
        k.metrics.drains++;
        k.charge(k.costs.drain);
      }
      if (wq_outstanding(k, d, pasid, 0) === 0) return;
      // DRAIN_PASID: sleep until the device has completed this PASID's
      // descriptors (the completion interrupt wakes us; then check again).
      const t = k.curr(cpu);
      k.jump(fr, 0);
      if (!drain_wait_add(k, d, t, pasid)) {
        k.call(cpu, P_SCHED_YIELD); // no waiter slot: poll
        return;
      }
      k.set(k.T.state, t, TASK_INTERRUPTIBLE);
      k.call(cpu, P_SCHEDULE, SM_NONE);
    },
  ],
  ["mutex_lock", (k, cpu, fr) => void sva_lock(k, cpu, fr, 1)],
  [
    "iommu_sva_unbind_device",
    (k, _cpu, fr) => {
      const b = k.get(k.FL.bond, RELEASE.file.get(k, fr));
      k.metrics.refcount_ops++;
      if (k.add(k.B.refs, b, -1) > 0) k.jump(fr, P_FILE_RELEASE.pc.mutex_unlock);
    },
  ],
  [
    "intel_pasid_tear_down_entry",
    (k, _cpu, fr) => {
      const b = k.get(k.FL.bond, RELEASE.file.get(k, fr));
      pt_clear(k, k.get(k.B.dev, b) - 1, k.get(k.B.pasid, b));
    },
  ],
  [
    "flush_pasid_iotlb_devtlb",
    (k, _cpu, fr) => {
      const b = k.get(k.FL.bond, RELEASE.file.get(k, fr));
      flush_pasid_caches(k, k.get(k.B.dev, b) - 1, k.get(k.B.pasid, b));
    },
  ],
  [
    "iommu_domain_free",
    (k, cpu, fr) => {
      const b = k.get(k.FL.bond, RELEASE.file.get(k, fr));
      const mm = k.get(k.B.mm, b);
      const shared = k.get(k.B.priv, b) === 0;
      // The lifetime policies let go first, while the bond still pins the mm.
      if (shared) {
        pasid_put(k, mm, cpu);
        mm_bond_put(k, mm, cpu);
      }
      bond_release(k, b, cpu);
    },
  ],
  ["mutex_unlock", (k, cpu) => sva_unlock(k, cpu)],
  [
    "fput_done",
    (k, _cpu, fr) => {
      file_free(k, RELEASE.file.get(k, fr));
    },
  ],
]);

/** put_files_struct(): drop a reference; at zero, close every file, then free it. */
export function put_files_struct(k: Kernel, f: number, cpu: number): void {
  k.metrics.refcount_ops++;
  k.charge(k.costs.atomic);
  const count = k.add(k.F.count, f, -1);
  if (count < 0) k.warn("files-refcount", `files ${f}: count went negative`, cpu);
  if (count === 0) k.call(cpu, P_CLOSE_FILES, CLOSE_FILES.files.put(f));
}

/** The files_struct itself goes back (the last step of close_files). */
export function files_free(k: Kernel, f: number): void {
  k.slot_push(k.G.files_free, k.F.next_free, f);
  k.add(k.G.nr_files, 0, -1);
  k.charge(k.costs.kfree);
}

const CLOSE_FILES = frameLocals({ files: [0, 0, 32, "files"] }, "close_files");

/** put_files_struct() at zero: close every open file (a0 = the files_struct), then free it. */
export const P_CLOSE_FILES = defPath("close_files", [
  [
    "close_files",
    (k, cpu, fr) => {
      const files = CLOSE_FILES.files.get(k, fr);
      for (let i = 0; i < FD_MAX; i++) {
        const a = fd_addr(k, files, i);
        const f = k.w[a];
        if (f === 0) continue;
        k.mem.write(a, 0);
        k.jump(fr, 0); // the next file after this one is released
        fput(k, cpu, f);
        return;
      }
      files_free(k, files);
    },
  ],
]);

// --- the device's completions, as the driver sees them ----------------------

function drain_wait_add(k: Kernel, d: number, task: number, pasid: number): boolean {
  const base = k.D.drain.at + d * k.D.drain.stride;
  for (let i = 0; i < DRAIN_WAITERS_MAX; i++) {
    if (k.w[base + 2 * i] !== 0) continue;
    k.mem.write(base + 2 * i, task);
    k.mem.write(base + 2 * i + 1, pasid);
    return true;
  }
  return false;
}

/**
 * The device completed its oldest descriptor. Tasks draining a PASID that
 * has nothing left on the device are woken by the completion interrupt.
 */
export function idxd_complete(k: Kernel, d: number): void {
  wq_complete(k, d, iommu_translate);
  const base = k.D.drain.at + d * k.D.drain.stride;
  for (let i = 0; i < DRAIN_WAITERS_MAX; i++) {
    const t = k.w[base + 2 * i];
    if (t === 0 || wq_outstanding(k, d, k.w[base + 2 * i + 1], 0) !== 0) continue;
    k.mem.write(base + 2 * i, 0);
    k.mem.write(base + 2 * i + 1, 0);
    const cpu = k.get(k.T.cpu, t);
    raise_irq(k, cpu, IRQ_DEVICE);
    wake_up_process(k, t, cpu);
  }
}
