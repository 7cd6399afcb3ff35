import React, { useEffect, useState } from 'react';

import { HITL_MODES, HITLMode } from '../api/types';

/** Models offered in the pickers; any litellm model name can be typed too. */
export const SUGGESTED_MODELS = [
  'gpt-4o',
  'gpt-4o-mini',
  'claude-sonnet-4-5',
  'gemini/gemini-2.5-flash',
  'ollama/llama3.1'
];

const MODE_LABELS: Record<HITLMode, string> = {
  none: 'Autonomous',
  plan_only: 'Approve plans',
  on_error: 'Ask on errors',
  plan_and_answer: 'Approve plan and answer',
  full: 'Approve every step'
};

/** A model name field with suggestions; commits on Enter or when it loses focus. */
export function ModelPicker(props: {
  value: string;
  onChange: (model: string) => void;
  id: string;
  placeholder?: string;
}): JSX.Element {
  const [draft, setDraft] = useState(props.value);
  useEffect(() => setDraft(props.value), [props.value]);
  const commit = () => {
    const model = draft.trim();
    if (model && model !== props.value) {
      props.onChange(model);
    }
  };
  return (
    <>
      <input
        className="jp-mod-styled jp-dsagent-model"
        aria-label="Model"
        placeholder={props.placeholder}
        list={`${props.id}-models`}
        value={draft}
        onChange={e => setDraft(e.target.value)}
        onBlur={commit}
        onKeyDown={e => e.key === 'Enter' && commit()}
      />
      <datalist id={`${props.id}-models`}>
        {SUGGESTED_MODELS.map(model => (
          <option key={model} value={model} />
        ))}
      </datalist>
    </>
  );
}

export function HitlModePicker(props: {
  value: HITLMode;
  onChange: (mode: HITLMode) => void;
}): JSX.Element {
  return (
    <select
      className="jp-mod-styled jp-dsagent-hitl-mode"
      aria-label="Human in the loop"
      value={props.value}
      onChange={e => props.onChange(e.target.value as HITLMode)}
    >
      {HITL_MODES.map(mode => (
        <option key={mode} value={mode}>
          {MODE_LABELS[mode]}
        </option>
      ))}
    </select>
  );
}
