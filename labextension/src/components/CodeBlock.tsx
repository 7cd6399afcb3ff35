import React, { useEffect, useState } from 'react';

import { Execution } from '../chat/model';
import { ImageGallery } from './ImageGallery';
import { Markdown, fenced } from './Markdown';
import { RichOutputs, consoleText, richOutputs } from './RichOutputs';

const BADGES = { running: 'Running', success: 'Success', error: 'Error' };

/** A cell the agent ran: highlighted code, status badge with elapsed time, output console, images. */
export function CodeBlock(props: { execution: Execution; live: boolean }): JSX.Element {
  const { execution } = props;
  const result = execution.result;
  return (
    <div className="jp-dsagent-code" data-status={execution.status}>
      <div className="jp-dsagent-code-header">
        <span className="jp-dsagent-code-label">
          {execution.cellIndex !== undefined ? `Cell [${execution.cellIndex}]` : 'Python'}
        </span>
        <span className={`jp-dsagent-badge jp-mod-${execution.status}`}>
          {BADGES[execution.status]}
          <Elapsed execution={execution} live={props.live} />
        </span>
      </div>
      <Markdown source={fenced(execution.code)} className="jp-dsagent-code-source" />
      {result && <ConsoleBlock {...consoleText(result)} error={result.error} />}
      {result && <RichOutputs outputs={richOutputs(result)} />}
      {result && result.images.length > 0 && <ImageGallery images={result.images} />}
    </div>
  );
}

function Elapsed(props: { execution: Execution; live: boolean }): JSX.Element | null {
  const { execution } = props;
  const [now, setNow] = useState(Date.now());
  const ticking = props.live && execution.status === 'running' && execution.startedAt !== undefined;
  useEffect(() => {
    if (!ticking) {
      return;
    }
    const timer = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(timer);
  }, [ticking]);
  const ms =
    execution.result?.execution_time_ms ??
    (ticking ? now - (execution.startedAt as number) : undefined);
  if (ms === undefined || ms === null) {
    return null;
  }
  return <span className="jp-dsagent-elapsed"> · {formatDuration(ms)}</span>;
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** stdout, stderr and the error of a cell, as a terminal would show them. */
export function ConsoleBlock(props: {
  stdout: string;
  stderr: string;
  error: string | null;
}): JSX.Element | null {
  const { stdout, stderr, error } = props;
  if (!stdout && !stderr && !error) {
    return null;
  }
  return (
    <div className="jp-dsagent-console" aria-label="Output">
      {stdout && <pre className="jp-dsagent-stdout">{stdout}</pre>}
      {stderr && <pre className="jp-dsagent-stderr">{stderr}</pre>}
      {error && <pre className="jp-dsagent-error">{error}</pre>}
    </div>
  );
}
