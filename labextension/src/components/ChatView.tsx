import { caretLeftIcon, notebookIcon } from '@jupyterlab/ui-components';
import React, { useCallback, useEffect, useRef, useState } from 'react';

import { HITLResponse, Session, SessionUpdate } from '../api/types';
import { Ask } from '../notebook/commands';
import { RESTORE_ENDS, totalUsage } from '../chat/model';
import { useChat } from '../chat/useChat';
import { useServices } from '../context';
import { ChatInput } from './ChatInput';
import { FilesPanel } from './FilesPanel';
import { HitlCard } from './HitlCard';
import { IconButton } from './IconButton';
import { KernelBar } from './KernelBar';
import { NotebookBar, ReviewBar, useReviews } from './NotebookBar';
import { PlanPanel } from './PlanPanel';
import { useAdmin } from './Policy';
import { HitlModePicker, ModelPicker } from './SessionSettings';
import { Transcript, UsageLine } from './Transcript';

/** One session: settings, plan, conversation, pending approval, files and the message box. */
export function ChatView(props: {
  session: Session;
  /** A task asked for from the notebook, to start once the chat is ready. */
  ask: Ask | null;
  onAsked: () => void;
  onBack: () => void;
  onUpdate: (update: SessionUpdate) => Promise<void>;
  onDetach: () => void;
}): JSX.Element {
  const { client, openPath, notebooks } = useServices();
  const { session } = props;
  const [filesVersion, setFilesVersion] = useState(0);
  const [tasksDone, setTasksDone] = useState(0);
  const [notice, setNotice] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);
  const bumpFiles = useCallback(() => setFilesVersion(v => v + 1), []);
  const chat = useChat(client, session.id, bumpFiles, async (focus?: number) => {
    // the session's notebook, as open in this window: the model sees it, the cells go below focus
    const bridge = notebooks.bridgeOf(session.id);
    const cell = focus !== undefined ? bridge?.panel.content.widgets[focus] : undefined;
    await bridge?.taskStarting(cell?.model.id);
    return notebooks.contextFor(session.id, focus);
  });
  const { state } = chat;
  const edits = useReviews(notebooks, session.id);
  // the card decides as the notebook's own Approve does: an edit of the pending cell is what runs
  const decide = (decision: HITLResponse) =>
    chat.decide(notebooks.bridgeOf(session.id)?.withCellEdits(decision) ?? decision);
  // the kernel bar looks at the kernel again when a task ends
  useEffect(() => {
    if (!state.running) {
      setTasksDone(n => n + 1);
    }
  }, [state.running]);
  const { ask, onAsked } = props;
  const { send } = chat;

  useEffect(() => {
    if (ask && state.loaded && !state.running) {
      onAsked();
      send(ask.message, ask.focus, ask.editCells);
    }
  }, [ask, state.loaded, state.running, send, onAsked]);
  const usage = totalUsage(state.items);
  // a restore under way, from here or elsewhere, and how many ended (the kernel changed with each)
  const restores = state.items.filter(i => i.kind === 'restore');
  const lastRestore = restores[restores.length - 1];
  const restoring =
    lastRestore?.kind === 'restore' && !RESTORE_ENDS.includes(lastRestore.progress.status)
      ? lastRestore.progress
      : null;
  const restoresEnded = restores.length - (restoring ? 1 : 0);
  const banner = state.error ?? notice;
  const end = useRef<HTMLDivElement>(null);

  // a finished task has spent: the footer's figures are out of date
  const { refresh } = useAdmin();
  useEffect(() => {
    if (!state.running) {
      refresh();
    }
  }, [state.running, refresh]);

  // follow the bottom while the conversation grows
  useEffect(() => {
    end.current?.scrollIntoView?.({ block: 'end' });
  }, [state.items, state.pending]);

  // a refused change (outside the server's policy) puts the pickers back on the session's values
  const [pickers, setPickers] = useState(0);
  const update = (change: SessionUpdate) =>
    props.onUpdate(change).catch(error => {
      setNotice(error.message);
      setPickers(v => v + 1);
    });

  const upload = (files: File[]) => {
    if (files.length) {
      client.upload(session.id, files).then(bumpFiles, error => setNotice(error.message));
    }
  };

  const openNotebook = () => {
    if (session.notebook_path) {
      openPath(session.notebook_path);
      return;
    }
    const folder = session.workspace_path;
    if (!folder) {
      return;
    }
    client.hasNotebook(session.id).then(
      exists => {
        if (exists) {
          openPath(`${folder}/notebooks/${session.id}.ipynb`);
        } else {
          setNotice('No notebook yet: it is written after the first round.');
        }
      },
      error => setNotice(error.message)
    );
  };

  return (
    <div
      className={`jp-dsagent-chat ${dragging ? 'jp-mod-dropping' : ''}`}
      onDragOver={e => {
        if (e.dataTransfer.types.includes('Files')) {
          e.preventDefault();
          setDragging(true);
        }
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={e => {
        if (e.dataTransfer.files.length) {
          e.preventDefault();
          setDragging(false);
          upload(Array.from(e.dataTransfer.files));
        }
      }}
    >
      <div className="jp-dsagent-chat-header">
        <IconButton
          icon={caretLeftIcon}
          label="Back to sessions"
          title="Sessions"
          onClick={props.onBack}
        />
        <span className="jp-dsagent-title" title={session.id}>
          {session.name || session.id}
        </span>
        <IconButton
          icon={notebookIcon}
          label="Open notebook"
          title="Open the session notebook"
          onClick={openNotebook}
        />
      </div>
      {session.notebook_path && (
        <NotebookBar
          path={session.notebook_path}
          onOpen={() => openPath(session.notebook_path as string)}
          onDetach={props.onDetach}
        />
      )}
      {edits.reviews && edits.count > 0 && (
        <ReviewBar reviews={edits.reviews} count={edits.count} />
      )}
      <div className="jp-dsagent-settings">
        <ModelPicker
          key={`model-${pickers}`}
          id={`dsagent-${session.id}`}
          value={session.model}
          onChange={model => update({ model })}
        />
        <HitlModePicker
          key={`mode-${pickers}`}
          value={session.hitl_mode}
          onChange={hitl_mode => update({ hitl_mode })}
        />
      </div>
      {session.missing_api_key && (
        <div className="jp-dsagent-banner jp-mod-warning" role="alert">
          No API key for model {session.model}: set {session.missing_api_key} on the server or pick
          another model.
        </div>
      )}
      {banner && (
        <div className="jp-dsagent-banner" role="alert">
          <span>{banner}</span>
          <button
            className="jp-dsagent-icon-button"
            aria-label="Dismiss error"
            onClick={() => {
              chat.dismissError();
              setNotice(null);
            }}
          >
            ×
          </button>
        </div>
      )}
      <KernelBar
        sessionId={session.id}
        version={tasksDone + restoresEnded}
        busy={state.running}
        remote={restoring}
        onEvent={chat.apply}
        onError={setNotice}
      />
      {state.plan && <PlanPanel plan={state.plan} />}
      <div className="jp-dsagent-scroll">
        <Transcript items={state.items} running={state.running} />
        {state.pending && (
          <HitlCard key={state.pendingKey} request={state.pending} decide={decide} />
        )}
        <div ref={end} />
      </div>
      {usage.total_tokens > 0 && <UsageLine usage={usage} label="Session" />}
      <FilesPanel
        sessionId={session.id}
        workspacePath={session.workspace_path}
        version={filesVersion}
        onError={setNotice}
      />
      <ChatInput
        running={state.running}
        ready={state.loaded}
        onSend={chat.send}
        onStop={chat.stop}
      />
    </div>
  );
}
