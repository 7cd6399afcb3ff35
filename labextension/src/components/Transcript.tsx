import React from 'react';

import { Usage } from '../api/types';
import { ChatItem, RoundItem, restoreText } from '../chat/model';
import { prose } from '../chat/prose';
import { CodeBlock } from './CodeBlock';
import { Markdown } from './Markdown';

/** The conversation: user messages, the agent's rounds, errors. */
export function Transcript(props: { items: ChatItem[]; running: boolean }): JSX.Element {
  const last = props.items[props.items.length - 1];
  return (
    <div className="jp-dsagent-transcript" role="log" aria-live="polite">
      {props.items.map(item => {
        switch (item.kind) {
          case 'user':
            return (
              <div key={item.key} className="jp-dsagent-user">
                {item.text}
              </div>
            );
          case 'error':
            return (
              <div key={item.key} className="jp-dsagent-error-item" role="alert">
                {item.message}
              </div>
            );
          case 'round':
            return <RoundView key={item.key} round={item} live={props.running && item === last} />;
          case 'restore':
            return (
              <div
                key={item.key}
                className={`jp-dsagent-restore jp-mod-${item.progress.status}`}
                role="status"
              >
                {restoreText(item.progress)}
              </div>
            );
        }
      })}
    </div>
  );
}

function RoundView(props: { round: RoundItem; live: boolean }): JSX.Element {
  const { round } = props;
  const text = prose(round.text);
  const thinking = !round.complete && !round.text && round.executions.length === 0;
  const ended = round.stopReason === 'cancelled' || round.stopReason === 'rejected';
  return (
    <div className="jp-dsagent-round" data-round={round.round}>
      {thinking && <div className="jp-dsagent-thinking">Thinking…</div>}
      {round.imagesSeen > 0 && (
        <div
          className="jp-dsagent-seen"
          title="These images were sent to the model with this round's request, downscaled"
        >
          The model looked at{' '}
          {round.imagesSeen === 1 ? 'the figure' : `${round.imagesSeen} figures`}
        </div>
      )}
      {text && <Markdown source={text} className="jp-dsagent-prose" />}
      {round.executions.map((execution, index) => (
        <CodeBlock key={index} execution={execution} live={props.live} />
      ))}
      {round.hitl.map((decision, index) => (
        <div key={index} className="jp-dsagent-decision">
          {decision.request_type ?? 'step'}{' '}
          {decision.timed_out ? 'timed out' : `${decision.action}`}
          {decision.by && !decision.timed_out ? ` by ${decision.by}` : ''}
          {decision.message ? `: ${decision.message}` : ''}
        </div>
      ))}
      {round.answer && !ended && (
        <div className="jp-dsagent-answer" aria-label="Answer">
          <Markdown source={round.answer} />
        </div>
      )}
      {round.answer && ended && <div className="jp-dsagent-notice">{round.answer}</div>}
      {round.usage && <UsageLine usage={round.usage} />}
    </div>
  );
}

export function UsageLine(props: { usage: Usage; label?: string }): JSX.Element {
  const { usage } = props;
  const cost =
    usage.cost_usd !== null && usage.cost_usd !== undefined
      ? ` · $${usage.cost_usd.toFixed(4)}`
      : '';
  return (
    <div
      className="jp-dsagent-usage"
      title={`${usage.prompt_tokens} prompt + ${usage.completion_tokens} completion tokens`}
    >
      {props.label ?? 'Round'}: {usage.total_tokens.toLocaleString()} tokens{cost}
    </div>
  );
}
