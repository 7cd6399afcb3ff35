import { runIcon, stopIcon } from '@jupyterlab/ui-components';
import React, { useState } from 'react';

/** The message box: Enter sends, Shift+Enter is a new line; Stop while a task runs. */
export function ChatInput(props: {
  running: boolean;
  /** False while the history loads. */
  ready: boolean;
  onSend: (message: string) => void;
  onStop: () => void;
}): JSX.Element {
  const [text, setText] = useState('');
  const send = () => {
    const message = text.trim();
    if (message && props.ready && !props.running) {
      props.onSend(message);
      setText('');
    }
  };
  return (
    <div className="jp-dsagent-input">
      <textarea
        aria-label="Message to the agent"
        placeholder={
          props.running
            ? 'The agent is working…'
            : 'Ask the agent (Enter sends, Shift+Enter new line)'
        }
        value={text}
        disabled={props.running || !props.ready}
        rows={3}
        onChange={e => setText(e.target.value)}
        onKeyDown={e => {
          if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
            e.preventDefault();
            send();
          }
        }}
      />
      {props.running ? (
        <button
          className="jp-Button jp-mod-styled jp-mod-warn"
          aria-label="Stop the task"
          onClick={props.onStop}
        >
          <stopIcon.react tag="span" /> Stop
        </button>
      ) : (
        <button
          className="jp-Button jp-mod-styled jp-mod-accept"
          aria-label="Send"
          disabled={!text.trim() || !props.ready}
          onClick={send}
        >
          <runIcon.react tag="span" /> Send
        </button>
      )}
    </div>
  );
}
