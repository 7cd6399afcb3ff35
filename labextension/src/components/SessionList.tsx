import { Dialog, InputDialog, showDialog } from '@jupyterlab/apputils';
import { closeIcon, editIcon, refreshIcon } from '@jupyterlab/ui-components';
import React, { useEffect, useState } from 'react';

import { HITLMode, Session, SessionUpdate } from '../api/types';
import { IconButton } from './IconButton';
import { useAdmin } from './Policy';
import { HitlModePicker, ModelPicker } from './SessionSettings';

/** Sessions newest first, with open / rename / archive / delete, and the new-session form. */
export function SessionList(props: {
  sessions: Session[];
  onOpen: (session: Session) => void;
  onCreate: (body: SessionUpdate) => Promise<void>;
  onUpdate: (session: Session, update: SessionUpdate) => Promise<void>;
  onArchive: (session: Session) => Promise<void>;
  onDelete: (session: Session) => Promise<void>;
  onRefresh: () => void;
}): JSX.Element {
  const rename = async (session: Session) => {
    const result = await InputDialog.getText({ title: 'Rename session', text: session.name ?? '' });
    if (result.button.accept && result.value?.trim()) {
      await props.onUpdate(session, { name: result.value.trim() });
    }
  };
  const remove = async (session: Session) => {
    const result = await showDialog({
      title: 'Delete session',
      body: `Delete "${session.name}" with its kernel, files and history?`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (result.button.accept) {
      await props.onDelete(session);
    }
  };
  return (
    <div className="jp-dsagent-sessions">
      <NewSessionForm onCreate={props.onCreate} />
      <div className="jp-dsagent-section-title">
        Sessions
        <IconButton
          icon={refreshIcon}
          label="Refresh sessions"
          title="Refresh"
          onClick={props.onRefresh}
        />
      </div>
      {props.sessions.length === 0 && (
        <div className="jp-dsagent-hint">No sessions yet: create one above.</div>
      )}
      <ul className="jp-dsagent-session-list" aria-label="Sessions">
        {props.sessions.map(session => (
          <li key={session.id} className="jp-dsagent-session" data-status={session.status}>
            <button
              className="jp-dsagent-session-open"
              aria-label={`Open session ${session.name}`}
              onClick={() => props.onOpen(session)}
            >
              <span className="jp-dsagent-session-name">{session.name}</span>
              <span className="jp-dsagent-session-meta">
                <span
                  className={`jp-dsagent-status jp-mod-${session.running_task ? 'running' : session.status}`}
                >
                  {session.running_task ? 'running' : session.status}
                </span>{' '}
                {timeAgo(session.updated_at)} · {session.model}
              </span>
            </button>
            <IconButton
              icon={editIcon}
              label={`Rename session ${session.name}`}
              title="Rename"
              onClick={() => void rename(session)}
            />
            {session.status !== 'archived' && (
              <button
                className="jp-dsagent-text-button"
                aria-label={`Archive session ${session.name}`}
                title="Archive (stops its kernel)"
                onClick={() => void props.onArchive(session)}
              >
                Archive
              </button>
            )}
            <IconButton
              icon={closeIcon}
              label={`Delete session ${session.name}`}
              title="Delete"
              onClick={() => void remove(session)}
            />
          </li>
        ))}
      </ul>
    </div>
  );
}

function NewSessionForm(props: { onCreate: (body: SessionUpdate) => Promise<void> }): JSX.Element {
  const [name, setName] = useState('');
  const [model, setModel] = useState('');
  const defaultMode = useAdmin().policy?.default_hitl_mode;
  const [mode, setMode] = useState<HITLMode>('none');
  // the server's default follows its minimum: start from it, so "Create" is never refused for the mode
  useEffect(() => {
    if (defaultMode) {
      setMode(defaultMode);
    }
  }, [defaultMode]);
  const [busy, setBusy] = useState(false);
  const create = async () => {
    setBusy(true);
    try {
      await props.onCreate({
        name: name.trim() || undefined,
        model: model.trim() || undefined,
        hitl_mode: mode
      });
      setName('');
    } finally {
      setBusy(false);
    }
  };
  return (
    <form
      className="jp-dsagent-new-session"
      aria-label="New session"
      onSubmit={e => {
        e.preventDefault();
        void create();
      }}
    >
      <div className="jp-dsagent-section-title">New session</div>
      <input
        className="jp-mod-styled"
        aria-label="Session name"
        placeholder="Name"
        value={name}
        onChange={e => setName(e.target.value)}
      />
      <ModelPicker
        id="dsagent-new"
        value={model}
        onChange={setModel}
        placeholder="Model (server default)"
      />
      <HitlModePicker value={mode} onChange={setMode} />
      <button
        type="submit"
        className="jp-Button jp-mod-styled jp-mod-accept"
        aria-label="Create session"
        disabled={busy}
      >
        Create
      </button>
    </form>
  );
}

export function timeAgo(iso: string): string {
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 60) {
    return 'just now';
  }
  const units: [number, string][] = [
    [86400, 'd'],
    [3600, 'h'],
    [60, 'min']
  ];
  const [size, unit] = units.find(([size]) => seconds >= size)!;
  return `${Math.floor(seconds / size)} ${unit} ago`;
}
