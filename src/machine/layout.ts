// Struct layouts over the flat memory, declared like kernel structs. A layout
// is built once per machine (the counts of CPUs, tasks, mms come from the
// scenario); a Field knows its region base, stride and offset, so reading
// `task->mm` is `mem[base + t * stride + off]` with no allocation.

export interface Field {
  readonly struct: string;
  readonly name: string;
  readonly base: number;
  readonly stride: number;
  readonly off: number;
  /** base + off: instance i's word is at `at + i * stride`. */
  readonly at: number;
  /** Number of consecutive words (arrays such as kernel frames or cpumasks). */
  readonly len: number;
}

export type FieldSpec = number; // words per field: 1 for scalars, N for arrays

export interface Region<F extends string> {
  readonly name: string;
  readonly base: number;
  readonly stride: number;
  readonly count: number;
  readonly f: { readonly [K in F]: Field };
  /** Address of instance i's first word. */
  addr(i: number): number;
}

export class LayoutBuilder {
  private next: number;
  private readonly regions: Region<string>[] = [];

  constructor(start: number) {
    this.next = start;
  }

  region<F extends string>(name: string, count: number, spec: { readonly [K in F]: FieldSpec }): Region<F> {
    if (!(Number.isInteger(count) && count >= 0)) throw new RangeError(`${name}: bad count ${count}`);
    const base = this.next;
    let stride = 0;
    for (const k in spec) stride += spec[k];
    const f = {} as { [K in F]: Field };
    let off = 0;
    for (const k in spec) {
      f[k] = { struct: name, name: k, base, stride, off, at: base + off, len: spec[k] };
      off += spec[k];
    }
    const region: Region<F> = {
      name,
      base,
      stride,
      count,
      // Built by keyed stores, a table of more than a dozen fields drops into
      // V8's dictionary mode, and every `k.T.mm` in the hot loop becomes a
      // hash lookup (task_struct's 21 fields were; cpu's 35 are). JSON.parse
      // builds the same plain data through map transitions: fast properties.
      f: JSON.parse(JSON.stringify(f)) as typeof f,
      addr: (i: number) => base + i * stride,
    };
    this.next += stride * count;
    this.regions.push(region as Region<string>);
    return region;
  }

  get size(): number {
    return this.next;
  }

  /** Which struct and field an address belongs to (for `replay`'s "what changed"). */
  describer(): (addr: number) => string {
    const regions = this.regions.slice();
    return (addr: number) => {
      for (const r of regions) {
        if (addr < r.base || addr >= r.base + r.stride * r.count) continue;
        const i = Math.floor((addr - r.base) / r.stride);
        const o = addr - r.base - i * r.stride;
        for (const k in r.f) {
          const fd = r.f[k];
          if (o >= fd.off && o < fd.off + fd.len) {
            return fd.len > 1 ? `${r.name}[${i}].${k}[${o - fd.off}]` : `${r.name}[${i}].${k}`;
          }
        }
      }
      return `word ${addr}`;
    };
  }
}
