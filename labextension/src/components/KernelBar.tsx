import { Button } from '@jupyterlab/ui-components';
import React, { useEffect, useRef, useState } from 'react';

import { AgentEvent, streamRestore } from '../api/stream';
import { KernelState, RestoreProgress } from '../api/types';
import { restoreText } from '../chat/model';
import { useServices } from '../context';

/**
 * The session's kernel when it lacks what the history built (the server or the kernel restarted
 * since): says so, and offers to restore it by replaying the history, showing the progress.
 */
export function KernelBar(props: {
  sessionId: string;
  /** Changes when a task ends: the kernel may have become the history's own again. */
  version: number;
  busy: boolean;
  /** A restore under way that this bar did not start (another window, the REST API). */
  remote: RestoreProgress | null;
  onEvent: (event: AgentEvent) => void;
  onError: (message: string) => void;
}): JSX.Element | null {
  const { client } = useServices();
  const { sessionId, onEvent, onError } = props;
  const [kernel, setKernel] = useState<KernelState | null>(null);
  const [progress, setProgress] = useState<RestoreProgress | null>(null);
  const abort = useRef<AbortController | null>(null);

  useEffect(() => {
    let cancelled = false;
    client.kernel(sessionId).then(
      state => !cancelled && setKernel(state),
      () => undefined // the kernel state is a hint here: the chat reports real failures
    );
    return () => {
      cancelled = true;
    };
  }, [client, sessionId, props.version]);

  useEffect(() => () => abort.current?.abort(), []);

  const restore = () => {
    const controller = new AbortController();
    abort.current = controller;
    setProgress({ status: 'started', total: 0, cell: null, replayed: 0, code: null, error: null });
    streamRestore(
      client,
      sessionId,
      event => {
        onEvent(event);
        if (event.event === 'restore_progress') {
          setProgress(event.data);
          if (event.data.kernel) {
            setKernel(event.data.kernel);
          }
        }
      },
      controller.signal
    )
      .catch(error => !controller.signal.aborted && onError(error.message))
      .finally(() => setProgress(null));
  };

  const cancel = () => client.cancelRestore(sessionId).catch(error => onError(error.message));

  const shown = progress ?? props.remote;
  if (shown) {
    return (
      <div className="jp-dsagent-banner jp-mod-warning jp-dsagent-kernel-bar" role="status">
        <span>{restoreText(shown)}</span>
        <Button small minimal onClick={cancel}>
          Cancel
        </Button>
      </div>
    );
  }
  if (!kernel?.is_new && !kernel?.lacks_state) {
    return null;
  }
  return (
    <div className="jp-dsagent-banner jp-mod-warning jp-dsagent-kernel-bar" role="status">
      <span>
        {kernel.is_new
          ? 'The kernel is new: the variables of earlier turns are gone.'
          : 'The kernel was replaced since earlier turns: their variables are missing.'}
      </span>
      <Button small disabled={props.busy} onClick={restore} title="Replay the history's cells">
        Restore kernel
      </Button>
    </div>
  );
}
