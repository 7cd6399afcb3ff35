import { LabIcon } from '@jupyterlab/ui-components';
import React from 'react';

/** A small button showing a JupyterLab icon; `label` names it for screen readers (and tests). */
export function IconButton(props: {
  icon: LabIcon;
  label: string;
  title: string;
  onClick: (event: React.MouseEvent) => void;
}): JSX.Element {
  return (
    <button
      className="jp-dsagent-icon-button"
      aria-label={props.label}
      title={props.title}
      onClick={props.onClick}
    >
      <props.icon.react tag="span" />
    </button>
  );
}
