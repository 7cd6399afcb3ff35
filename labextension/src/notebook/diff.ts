/**
 * A line diff of a cell's text before and after an edit, for showing what the agent changed.
 *
 * Cells are short (tens of lines), so the plain longest-common-subsequence table is cheap; past a
 * few thousand lines the diff shows everything removed and added rather than spend the time.
 */

export interface DiffLine {
  kind: 'same' | 'add' | 'del';
  text: string;
}

const MAX_CELLS = 4_000_000; // lines before x lines after

export function lineDiff(before: string, after: string): DiffLine[] {
  const a = splitLines(before);
  const b = splitLines(after);
  if (a.length * b.length > MAX_CELLS) {
    return [
      ...a.map(text => ({ kind: 'del' as const, text })),
      ...b.map(text => ({ kind: 'add' as const, text }))
    ];
  }
  // common[i][j]: length of the longest common subsequence of a[i:] and b[j:]
  const common = Array.from({ length: a.length + 1 }, () => new Uint32Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      common[i][j] =
        a[i] === b[j] ? common[i + 1][j + 1] + 1 : Math.max(common[i + 1][j], common[i][j + 1]);
    }
  }
  const lines: DiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      lines.push({ kind: 'same', text: a[i] });
      i++;
      j++;
    } else if (common[i + 1][j] >= common[i][j + 1]) {
      lines.push({ kind: 'del', text: a[i++] });
    } else {
      lines.push({ kind: 'add', text: b[j++] });
    }
  }
  a.slice(i).forEach(text => lines.push({ kind: 'del', text }));
  b.slice(j).forEach(text => lines.push({ kind: 'add', text }));
  return lines;
}

/** The diff as DOM: one line per element, marked `+`/`-` and classed for colour. */
export function renderDiff(host: HTMLElement, lines: DiffLine[]): void {
  host.replaceChildren(
    ...lines.map(line => {
      const row = document.createElement('div');
      row.className = `jp-dsagent-diff-line jp-dsagent-diff-${line.kind}`;
      row.textContent = `${line.kind === 'add' ? '+' : line.kind === 'del' ? '-' : ' '} ${line.text}`;
      return row;
    })
  );
}

function splitLines(text: string): string[] {
  return text === '' ? [] : text.replace(/\n$/, '').split('\n');
}
