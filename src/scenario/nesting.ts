/**
 * A bound on nesting, checked on the text before anything recursive sees it: the YAML parser,
 * zod's schema walk and the program compiler all recurse once per level, and a small file nested a
 * thousand lists deep would overflow their stacks (or abort node). One linear pass over the source
 * counts the open levels: JSON and YAML flow brackets (outside strings and comments) plus YAML
 * block levels by indentation (each `- ` opening one more). It is a bound, not a parser: the YAML
 * parser still says what is wrong with the text. Where the deep part is a chain of `do:` lists
 * (nested `repeat`s), it says so: loops nest at most LOOP_DEPTH_MAX deep.
 */
import { LOOP_DEPTH_MAX } from "../machine/state.js";

/** Lists and mappings nested deeper than this are refused (the scenarios need about 12). */
export const NESTING_MAX = 64;

interface Level {
  /** the column of a block level; -1 for a flow level */
  col: number;
  /** the value of a `do` key: a loop body */
  loop: boolean;
  offset: number;
}

/** The first place nested deeper than `max` levels, and what to say there; null when within. */
export function tooDeep(source: string, max = NESTING_MAX): { offset: number; message: string } | null {
  const block: Level[] = [];
  const flow: Level[] = [];
  const n = source.length;
  let i = 0;
  /** where the current plain token began; -1 between tokens */
  let tok = -1;
  /** the last quoted scalar ended just before the next non-space character */
  let quoted: string | null = null;
  /** the key of the last `key:` (its value follows) */
  let key: string | null = null;
  /** a block line ended with `do:`: the next line's first level is a loop body */
  let pendingLoop = false;
  const over = (lv: Level): { offset: number; message: string } | null => {
    if (block.length + flow.length <= max) return null;
    const loops = [...block, ...flow].filter((l) => l.loop);
    if (loops.length > LOOP_DEPTH_MAX)
      return {
        offset: loops[LOOP_DEPTH_MAX].offset,
        message: `loops nested deeper than ${LOOP_DEPTH_MAX} (repeat and count both nest)`,
      };
    return { offset: lv.offset, message: `nested deeper than ${max} levels of lists and mappings` };
  };
  const push = (stack: Level[], lv: Level) => {
    stack.push(lv);
    return over(lv);
  };
  let lineStart = true;
  while (i < n) {
    if (lineStart) {
      lineStart = false;
      if (flow.length === 0) {
        let j = i;
        while (j < n && source[j] === " ") j++;
        const c = source[j];
        if (j < n && c !== "\n" && c !== "\r" && c !== "#") {
          const col = j - i;
          while (block.length > 0 && block[block.length - 1].col >= col) block.pop();
          const r = push(block, { col, loop: pendingLoop, offset: j });
          if (r) return r;
          pendingLoop = false;
          // `- - x`, `- key: v`: each dash opens one more level
          while (source[j] === "-" && (source[j + 1] === " " || source[j + 1] === "\t")) {
            j++;
            while (source[j] === " " || source[j] === "\t") j++;
            const r2 = push(block, { col: j - i, loop: false, offset: j });
            if (r2) return r2;
          }
        }
        i = j;
        tok = -1;
        quoted = null;
        key = null;
        continue;
      }
    }
    const c = source[i];
    if (c === "\n") {
      lineStart = true;
      tok = -1;
      i++;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r") {
      i++;
      continue;
    }
    if (c === "#" && (i === 0 || /\s/.test(source[i - 1]))) {
      while (i < n && source[i] !== "\n") i++;
      continue;
    }
    if ((c === '"' || c === "'") && tok === -1) {
      const start = ++i;
      while (i < n && source[i] !== c) i += c === '"' && source[i] === "\\" ? 2 : 1;
      // '' inside a single-quoted scalar is a quote
      while (c === "'" && source[i + 1] === "'") {
        i += 2;
        while (i < n && source[i] !== c) i++;
      }
      quoted = source.slice(start, i);
      i++;
      continue;
    }
    if ((c === "[" || c === "{") && (tok === -1 || flow.length > 0) && quoted === null) {
      const r = push(flow, { col: -1, loop: key === "do", offset: i });
      if (r) return r;
      key = null;
      tok = -1;
      i++;
      continue;
    }
    if ((c === "]" || c === "}") && flow.length > 0) {
      flow.pop();
      tok = -1;
      quoted = null;
      i++;
      continue;
    }
    if (c === "," && flow.length > 0) {
      tok = -1;
      quoted = null;
      key = null;
      i++;
      continue;
    }
    const next = source[i + 1];
    const indicator =
      i + 1 >= n || next === " " || next === "\t" || next === "\n" || next === "\r" || quoted !== null;
    if (c === ":" && (indicator || (flow.length > 0 && /[,[\]{}]/.test(next)))) {
      key = quoted ?? (tok === -1 ? "" : source.slice(tok, i).trim());
      tok = -1;
      quoted = null;
      i++;
      if (flow.length === 0) {
        let j = i;
        while (source[j] === " " || source[j] === "\t") j++;
        if (j >= n || source[j] === "\n" || source[j] === "\r" || source[j] === "#")
          pendingLoop = key === "do";
      }
      continue;
    }
    if ((c === "|" || c === ">") && tok === -1 && flow.length === 0) {
      // A block scalar: its lines are text, however indented. Skip them.
      const parent = block.length > 0 ? block[block.length - 1].col : 0;
      while (i < n && source[i] !== "\n") i++;
      while (i < n) {
        let j = i + 1;
        while (source[j] === " ") j++;
        const blank = j >= n || source[j] === "\n" || source[j] === "\r";
        if (!blank && j - (i + 1) <= parent) break;
        i = j;
        while (i < n && source[i] !== "\n") i++;
      }
      continue;
    }
    if (tok === -1) tok = i;
    quoted = null;
    i++;
  }
  return null;
}
