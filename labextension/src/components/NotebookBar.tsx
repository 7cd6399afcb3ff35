import { notebookIcon } from '@jupyterlab/ui-components';
import React, { useEffect, useState } from 'react';

import { CellReviews } from '../notebook/reviews';
import { NotebookSessions } from '../notebook/sessions';

/** Which notebook the session works in, with the way out. */
export function NotebookBar(props: {
  path: string;
  onOpen: () => void;
  onDetach: () => void;
}): JSX.Element {
  return (
    <div className="jp-dsagent-notebook-bar" aria-label="Attached notebook">
      <notebookIcon.react tag="span" />
      <span className="jp-dsagent-notebook-label">
        Works in{' '}
        <button
          className="jp-dsagent-link"
          title="Show the notebook"
          aria-label={`Show notebook ${props.path}`}
          onClick={props.onOpen}
        >
          {props.path}
        </button>
      </span>
      <button
        className="jp-dsagent-text-button"
        aria-label="Detach from notebook"
        title="Stop working in this notebook (the session keeps its history)"
        onClick={props.onDetach}
      >
        Detach
      </button>
    </div>
  );
}

/** The notebook in front of the user has no session: offer one. */
export function NotebookOffer(props: {
  path: string;
  onAccept: () => void;
  onDismiss: () => void;
}): JSX.Element {
  return (
    <div className="jp-dsagent-notebook-offer" role="status">
      <span>No DSAgent session works in {props.path}.</span>
      <button
        className="jp-Button jp-mod-styled jp-mod-accept"
        aria-label="Work in this notebook"
        onClick={props.onAccept}
      >
        Work in this notebook
      </button>
      <button
        className="jp-dsagent-icon-button"
        aria-label="Dismiss notebook offer"
        onClick={props.onDismiss}
      >
        ×
      </button>
    </div>
  );
}

/** The agent's edits of the session's notebook that await review in this window, and their count. */
export function useReviews(
  notebooks: NotebookSessions,
  sessionId: string
): { count: number; reviews: CellReviews | null } {
  const [state, setState] = useState<{ count: number; reviews: CellReviews | null }>({
    count: 0,
    reviews: null
  });
  useEffect(() => {
    let current: CellReviews | null = null;
    const onCount = (reviews: CellReviews, count: number) => setState({ count, reviews });
    const follow = () => {
      const reviews = notebooks.bridgeOf(sessionId)?.reviews ?? null;
      if (reviews !== current) {
        current?.changed.disconnect(onCount);
        current = reviews;
        reviews?.changed.connect(onCount);
        setState({ count: reviews?.edited.length ?? 0, reviews });
      }
    };
    follow();
    notebooks.bridgesChanged.connect(follow);
    return () => {
      notebooks.bridgesChanged.disconnect(follow);
      current?.changed.disconnect(onCount);
    };
  }, [notebooks, sessionId]);
  return state;
}

/** Keep all or revert all of the agent's edits of the notebook's cells. */
export function ReviewBar(props: { reviews: CellReviews; count: number }): JSX.Element {
  const { reviews, count } = props;
  return (
    <div className="jp-dsagent-review-all" role="group" aria-label="Edited cells">
      <span>
        {count} cell{count === 1 ? '' : 's'} edited by the agent
      </span>
      <button
        className="jp-Button jp-mod-styled jp-mod-accept"
        aria-label="Keep all"
        title="Keep every edit the agent made to this notebook's cells"
        onClick={() => reviews.keepAll()}
      >
        Keep all
      </button>
      <button
        className="jp-Button jp-mod-styled jp-mod-reject"
        aria-label="Revert all"
        title="Put back what every edited cell held before (what the code did in the kernel cannot be undone)"
        onClick={() => reviews.revertAll()}
      >
        Revert all
      </button>
    </div>
  );
}
