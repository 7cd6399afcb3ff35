/**
 * A line diff of a cell's text before and after an edit, for showing what the agent changed
 * (jsdiff's `diffLines`, one entry per line).
 */

import { diffLines } from 'diff';

export interface DiffLine {
  kind: 'same' | 'add' | 'del';
  text: string;
}

export function lineDiff(before: string, after: string): DiffLine[] {
  return diffLines(before, after, { ignoreNewlineAtEof: true }).flatMap(change => {
    const kind = change.added ? 'add' : change.removed ? 'del' : 'same';
    return splitLines(change.value).map(text => ({ kind, text }) as DiffLine);
  });
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
