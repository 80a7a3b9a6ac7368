// Plain text for a terminal: words wrapped to a width, never cut mid-word.

/** `text` as lines of at most `width` characters, broken at spaces (a longer word stands alone). */
export function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    if (line === "") line = word;
    else if (line.length + 1 + word.length <= width) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line !== "" || lines.length === 0) lines.push(line);
  return lines;
}

/** Name and description per line, the description wrapped under itself to `width` columns. */
export function listingColumns(rows: readonly [string, string][], width: number): string {
  const w = Math.max(...rows.map((r) => r[0].length));
  const room = Math.max(20, width - w - 2);
  const out: string[] = [];
  for (const [name, desc] of rows) {
    wrapWords(desc, room).forEach((l, i) => {
      out.push(`${(i === 0 ? name : "").padEnd(w)}  ${l}`.trimEnd());
    });
  }
  return `${out.join("\n")}\n`;
}
