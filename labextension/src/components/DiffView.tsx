import React from 'react';

import { lineDiff } from '../notebook/diff';

/** A cell's text before and after an edit, as added and removed lines. */
export function DiffView(props: { before: string; after: string; label?: string }): JSX.Element {
  return (
    <div className="jp-dsagent-diff" role="group" aria-label={props.label ?? 'Changes to the cell'}>
      {lineDiff(props.before, props.after).map((line, i) => (
        <div key={i} className={`jp-dsagent-diff-line jp-dsagent-diff-${line.kind}`}>
          {`${line.kind === 'add' ? '+' : line.kind === 'del' ? '-' : ' '} ${line.text}`}
        </div>
      ))}
    </div>
  );
}
