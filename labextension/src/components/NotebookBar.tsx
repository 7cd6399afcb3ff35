import { notebookIcon } from '@jupyterlab/ui-components';
import React from 'react';

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
