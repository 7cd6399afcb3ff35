import React, { useState } from 'react';

import { HITLAction, HITLRequest, HITLResponse } from '../api/types';
import { ConsoleBlock } from './CodeBlock';
import { DiffView } from './DiffView';
import { Markdown, fenced } from './Markdown';
import { PlanPanel } from './PlanPanel';

// which decisions the server accepts at each kind of pause
const ACTIONS: Record<HITLRequest['request_type'], HITLAction[]> = {
  plan: ['approve', 'reject', 'modify', 'feedback', 'skip'],
  code: ['approve', 'reject', 'modify', 'feedback', 'skip'],
  error: ['retry', 'skip', 'modify', 'feedback', 'approve', 'reject'],
  answer: ['approve', 'reject', 'feedback']
};

const LABELS: Record<HITLAction, string> = {
  approve: 'Approve',
  reject: 'Reject',
  modify: 'Edit',
  feedback: 'Feedback',
  retry: 'Retry',
  skip: 'Skip'
};

// the question when the server does not word it (older servers)
const TITLES = {
  plan: 'Approve the plan?',
  code: 'Run this code?',
  error: 'The code failed. What now?',
  answer: 'Accept this answer?'
};

type Editing = 'modify' | 'feedback' | null;

/** The pause the agent waits on, with every decision that fits it. */
export function HitlCard(props: {
  request: HITLRequest;
  decide: (decision: HITLResponse) => Promise<void>;
}): JSX.Element {
  const { request } = props;
  const [editing, setEditing] = useState<Editing>(null);
  const [draft, setDraft] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const editsPlan = request.request_type === 'plan';

  const send = async (decision: HITLResponse) => {
    setBusy(true);
    setError(null);
    try {
      await props.decide(decision);
    } catch (e: any) {
      setError(e.message);
      setBusy(false);
    }
  };

  const choose = (action: HITLAction) => {
    if (action === 'modify') {
      setDraft(editsPlan ? planText(request) : (request.code ?? ''));
      setEditing('modify');
    } else if (action === 'feedback') {
      setDraft('');
      setEditing('feedback');
    } else {
      void send({ action });
    }
  };

  const submit = () => {
    if (editing === 'feedback') {
      void send({ action: 'feedback', message: draft });
    } else if (editsPlan) {
      void send({ action: 'modify', modified_plan: draft });
    } else {
      void send({ action: 'modify', modified_code: draft });
    }
  };

  return (
    <div className="jp-dsagent-hitl" role="region" aria-label="Approval needed">
      <div className="jp-dsagent-hitl-title">{request.message || TITLES[request.request_type]}</div>
      {request.plan && editsPlan && <PlanPanel plan={request.plan} />}
      {request.code && request.request_type !== 'plan' && request.cell && (
        <DiffView
          before={request.cell.previous_source}
          after={request.code}
          label={`Changes to cell [${request.cell.index}]`}
        />
      )}
      {request.code && request.request_type !== 'plan' && !request.cell && (
        <Markdown source={fenced(request.code)} />
      )}
      {request.error && <ConsoleBlock stdout="" stderr="" error={request.error} />}
      {request.answer && <Markdown source={request.answer} className="jp-dsagent-answer" />}
      {editing && (
        <textarea
          className="jp-dsagent-hitl-editor"
          aria-label={
            editing === 'feedback'
              ? 'Feedback for the agent'
              : editsPlan
                ? 'Edited plan'
                : 'Edited code'
          }
          placeholder={editing === 'feedback' ? 'What should the agent do differently?' : ''}
          value={draft}
          rows={Math.min(12, Math.max(3, draft.split('\n').length + 1))}
          onChange={e => setDraft(e.target.value)}
        />
      )}
      {error && (
        <div className="jp-dsagent-hitl-error" role="alert">
          {error}
        </div>
      )}
      <div className="jp-dsagent-hitl-actions">
        {editing ? (
          <>
            <button
              className="jp-Button jp-mod-styled jp-mod-accept"
              disabled={busy || !draft.trim()}
              onClick={submit}
              aria-label={editing === 'feedback' ? 'Send feedback' : 'Send edit'}
            >
              {editing === 'feedback' ? 'Send feedback' : 'Send edit'}
            </button>
            <button
              className="jp-Button jp-mod-styled jp-mod-reject"
              disabled={busy}
              onClick={() => setEditing(null)}
              aria-label="Cancel"
            >
              Cancel
            </button>
          </>
        ) : (
          ACTIONS[request.request_type].map(action => (
            <button
              key={action}
              className={`jp-Button jp-mod-styled ${action === 'approve' || action === 'retry' ? 'jp-mod-accept' : action === 'reject' ? 'jp-mod-warn' : 'jp-mod-reject'}`}
              disabled={busy}
              aria-label={LABELS[action]}
              onClick={() => choose(action)}
            >
              {LABELS[action]}
            </button>
          ))
        )}
      </div>
    </div>
  );
}

function planText(request: HITLRequest): string {
  const plan = request.plan;
  if (!plan) {
    return '';
  }
  return (
    plan.raw_text ||
    plan.steps.map(s => `${s.number}. [${s.completed ? 'x' : ' '}] ${s.description}`).join('\n')
  );
}
