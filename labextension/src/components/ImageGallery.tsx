import { Dialog, showDialog } from '@jupyterlab/apputils';
import { downloadIcon } from '@jupyterlab/ui-components';
import React from 'react';

import { ImageOutput } from '../api/types';

/** Figures of a cell: inline, click to enlarge, download. */
export function ImageGallery(props: { images: ImageOutput[] }): JSX.Element {
  return (
    <div className="jp-dsagent-images">
      {props.images.map((image, index) => {
        const mime = image.mime ?? `image/${image.format}`;
        const src = `data:${mime};base64,${image.data}`;
        const name = `figure-${index + 1}.${image.format}`;
        return (
          <figure key={index} className="jp-dsagent-image">
            <button
              className="jp-dsagent-image-button"
              aria-label={`Enlarge ${name}`}
              title="Click to enlarge"
              onClick={() => enlarge(src, name)}
            >
              <img src={src} alt={name} />
            </button>
            <a
              className="jp-dsagent-icon-link"
              href={src}
              download={name}
              aria-label={`Download ${name}`}
              title="Download"
            >
              <downloadIcon.react tag="span" />
            </a>
          </figure>
        );
      })}
    </div>
  );
}

function enlarge(src: string, name: string): void {
  void showDialog({
    title: name,
    body: <img className="jp-dsagent-image-large" src={src} alt={name} />,
    buttons: [Dialog.okButton({ label: 'Close' })]
  });
}
