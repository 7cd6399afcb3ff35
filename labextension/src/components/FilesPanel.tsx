import {
  closeIcon,
  downloadIcon,
  fileIcon,
  fileUploadIcon,
  imageIcon,
  jsonIcon,
  LabIcon,
  notebookIcon,
  pythonIcon,
  refreshIcon,
  spreadsheetIcon
} from '@jupyterlab/ui-components';
import React, { useCallback, useEffect, useRef, useState } from 'react';

import { Artifact, ArtifactType, StoredFile } from '../api/types';
import { useServices } from '../context';
import { IconButton } from './IconButton';

const TYPE_ICONS: Record<ArtifactType, LabIcon> = {
  image: imageIcon,
  document: fileIcon,
  data: spreadsheetIcon,
  model: jsonIcon,
  code: pythonIcon,
  notebook: notebookIcon,
  other: fileIcon
};

export const DATA_TYPES = '.csv,.tsv,.xlsx,.xls,.parquet,.json,.txt';

/** Uploaded data and the artifacts the agent saved, refreshed when `version` changes. */
export function FilesPanel(props: {
  sessionId: string;
  workspacePath: string | null;
  version: number;
  onError: (message: string) => void;
}): JSX.Element {
  const { client, openPath } = useServices();
  const { sessionId, workspacePath, onError } = props;
  const [data, setData] = useState<StoredFile[]>([]);
  const [artifacts, setArtifacts] = useState<Artifact[]>([]);
  const [refreshes, setRefreshes] = useState(0);

  useEffect(() => {
    Promise.all([client.dataFiles(sessionId), client.artifacts(sessionId)])
      .then(([files, saved]) => {
        setData(files);
        setArtifacts(saved);
      })
      .catch(error => onError(error.message));
  }, [client, sessionId, props.version, refreshes, onError]);

  const refresh = () => setRefreshes(n => n + 1);
  const run = (action: Promise<unknown>) => action.then(refresh, error => onError(error.message));
  const open = (folder: string, name: string) =>
    workspacePath && openPath(`${workspacePath}/${folder}/${name}`);

  return (
    <details className="jp-dsagent-files" aria-label="Files">
      <summary>
        Files · {data.length} data, {artifacts.length} artifacts
        <IconButton
          icon={refreshIcon}
          label="Refresh files"
          title="Refresh"
          onClick={e => {
            e.preventDefault(); // a click in the summary would also fold the section
            refresh();
          }}
        />
      </summary>
      <UploadButton onFiles={files => run(client.upload(sessionId, files))} />
      <ul className="jp-dsagent-file-list" aria-label="Data files">
        {data.map(file => (
          <li key={file.name}>
            <spreadsheetIcon.react tag="span" />
            <button
              className="jp-dsagent-link"
              onClick={() => open('data', file.name)}
              aria-label={`Open ${file.name}`}
            >
              {file.name}
            </button>
            <span className="jp-dsagent-size">{formatSize(file.size)}</span>
            <IconButton
              icon={closeIcon}
              label={`Delete ${file.name}`}
              title="Delete"
              onClick={() => run(client.deleteDataFile(sessionId, file.name))}
            />
          </li>
        ))}
      </ul>
      <ul className="jp-dsagent-file-list" aria-label="Artifacts">
        {artifacts.map(artifact => (
          <ArtifactRow
            key={`${artifact.name}-${artifact.modified}`}
            sessionId={sessionId}
            artifact={artifact}
            onOpen={() => open('artifacts', artifact.name)}
            onDelete={() => run(client.deleteArtifact(sessionId, artifact.name))}
            onError={onError}
          />
        ))}
      </ul>
    </details>
  );
}

function ArtifactRow(props: {
  sessionId: string;
  artifact: Artifact;
  onOpen: () => void;
  onDelete: () => void;
  onError: (message: string) => void;
}): JSX.Element {
  const { client } = useServices();
  const { artifact, sessionId, onError } = props;
  const Icon = TYPE_ICONS[artifact.type] ?? fileIcon;
  const [preview, setPreview] = useState<string | null>(null);

  // previews are fetched with the session's credentials, then shown from an object URL
  useEffect(() => {
    if (artifact.type !== 'image') {
      return;
    }
    let url: string | null = null;
    client.artifactBlob(sessionId, artifact.name).then(
      blob => {
        url = URL.createObjectURL(blob);
        setPreview(url);
      },
      () => undefined
    );
    return () => {
      if (url) {
        URL.revokeObjectURL(url);
      }
    };
  }, [client, sessionId, artifact.name, artifact.type]);

  const download = useCallback(async () => {
    try {
      const blob = await client.artifactBlob(sessionId, artifact.name);
      const link = document.createElement('a');
      link.href = URL.createObjectURL(blob);
      link.download = artifact.name;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 1000);
    } catch (error: any) {
      onError(error.message);
    }
  }, [client, sessionId, artifact.name, onError]);

  return (
    <li className="jp-dsagent-artifact" data-type={artifact.type}>
      <Icon.react tag="span" />
      <button
        className="jp-dsagent-link"
        onClick={props.onOpen}
        aria-label={`Open ${artifact.name}`}
        title="Open in JupyterLab"
      >
        {artifact.name}
      </button>
      <span className="jp-dsagent-size">{formatSize(artifact.size)}</span>
      <IconButton
        icon={downloadIcon}
        label={`Download ${artifact.name}`}
        title="Download"
        onClick={download}
      />
      <IconButton
        icon={closeIcon}
        label={`Delete ${artifact.name}`}
        title="Delete"
        onClick={props.onDelete}
      />
      {preview && (
        <img
          className="jp-dsagent-thumbnail"
          src={preview}
          alt={`Preview of ${artifact.name}`}
          onClick={props.onOpen}
        />
      )}
    </li>
  );
}

function UploadButton(props: { onFiles: (files: File[]) => void }): JSX.Element {
  const input = useRef<HTMLInputElement>(null);
  return (
    <div className="jp-dsagent-upload">
      <button
        className="jp-dsagent-upload-button"
        aria-label="Upload data files"
        onClick={() => input.current?.click()}
      >
        <fileUploadIcon.react tag="span" /> Upload data
      </button>
      <span className="jp-dsagent-hint">or drop files on the panel</span>
      <input
        ref={input}
        type="file"
        multiple
        hidden
        accept={DATA_TYPES}
        data-testid="dsagent-upload-input"
        onChange={e => {
          props.onFiles(Array.from(e.target.files ?? []));
          e.target.value = '';
        }}
      />
    </div>
  );
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) {
    return `${bytes} B`;
  }
  return bytes < 1024 * 1024
    ? `${(bytes / 1024).toFixed(1)} KB`
    : `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
