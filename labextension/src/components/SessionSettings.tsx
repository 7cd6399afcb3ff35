import React, { useEffect, useState } from 'react';

import { CatalogueModel, HITL_MODES, HITLMode } from '../api/types';
import { useAdmin } from './Policy';

const MODE_LABELS: Record<HITLMode, string> = {
  none: 'Autonomous',
  on_error: 'Ask on errors',
  plan_only: 'Approve plans',
  plan_and_answer: 'Approve plan and answer',
  full: 'Approve every step'
};

/** The catalogue's models matching `query`, grouped by provider in the server's order. */
function groups(models: CatalogueModel[], query: string): [string, CatalogueModel[]][] {
  const byProvider = new Map<string, CatalogueModel[]>();
  for (const model of models) {
    const text = `${model.id} ${model.provider}`.toLowerCase();
    if (!query || text.includes(query)) {
      byProvider.set(model.provider, [...(byProvider.get(model.provider) ?? []), model]);
    }
  }
  return [...byProvider.entries()];
}

function price(model: CatalogueModel): string {
  if (model.input_usd_per_million === null || model.output_usd_per_million === null) {
    return '';
  }
  return `$${model.input_usd_per_million} / $${model.output_usd_per_million} per M tokens`;
}

/**
 * A model field with the server's catalogue below it: type to filter, pick from the list grouped
 * by provider (models without their key are shown, with the key, but cannot be picked), or enter
 * any other name (the server still checks it against the policy). Arrow keys move through the list;
 * commits on Enter, a pick, or blur.
 */
export function ModelPicker(props: {
  value: string;
  onChange: (model: string) => void;
  id: string;
  placeholder?: string;
}): JSX.Element {
  const { catalogue } = useAdmin();
  const [draft, setDraft] = useState(props.value);
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(-1); // index among the pickable options shown
  useEffect(() => setDraft(props.value), [props.value]);
  const commit = (model: string) => {
    setOpen(false);
    setActive(-1);
    setDraft(model || props.value);
    if (model && model !== props.value) {
      props.onChange(model);
    }
  };
  // the whole list until the user types something else than the current value
  const query = draft === props.value ? '' : draft.trim().toLowerCase();
  const shown = groups(catalogue?.models ?? [], query);
  const pickable = shown.flatMap(([, models]) => models.filter(m => m.available));
  const listId = `${props.id}-models`;
  const optionId = (model: CatalogueModel) => `${listId}-${model.id.replace(/[^\w-]/g, '_')}`;
  const move = (step: number) => {
    setOpen(true);
    setActive(i => (pickable.length ? (i + step + pickable.length) % pickable.length : -1));
  };
  return (
    <div className="jp-dsagent-model-picker">
      <input
        className="jp-mod-styled jp-dsagent-model"
        role="combobox"
        aria-label="Model"
        aria-expanded={open}
        aria-controls={listId}
        aria-autocomplete="list"
        aria-activedescendant={open && pickable[active] ? optionId(pickable[active]) : undefined}
        placeholder={props.placeholder}
        value={draft}
        onChange={e => {
          setDraft(e.target.value);
          setOpen(true);
          setActive(-1);
        }}
        onFocus={() => setOpen(true)}
        onBlur={() => commit(draft.trim())}
        onKeyDown={e => {
          if (e.key === 'Enter') {
            e.preventDefault();
            commit(open && pickable[active] ? pickable[active].id : draft.trim());
          } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
            e.preventDefault();
            move(e.key === 'ArrowDown' ? 1 : -1);
          } else if (e.key === 'Escape') {
            setOpen(false);
          }
        }}
      />
      {open && (
        <div className="jp-dsagent-model-list" id={listId} role="listbox" aria-label="Models">
          {catalogue?.warning && <div className="jp-dsagent-model-note">{catalogue.warning}</div>}
          {shown.map(([provider, models]) => (
            <div key={provider} role="group" aria-label={provider}>
              <div className="jp-dsagent-model-group">{provider}</div>
              {models.map(model => (
                <div
                  key={model.id}
                  id={optionId(model)}
                  role="option"
                  className={`jp-dsagent-model-option ${model === pickable[active] ? 'jp-mod-active' : ''}`}
                  aria-selected={model.id === props.value}
                  aria-disabled={!model.available}
                  title={[model.id, price(model)].filter(Boolean).join(' · ')}
                  // mousedown, not click: the input keeps the focus, so its blur does not commit first
                  onMouseDown={e => {
                    e.preventDefault();
                    if (model.available) {
                      commit(model.id);
                    }
                  }}
                >
                  <span>{model.label}</span>
                  {model.default && <span className="jp-dsagent-model-note"> default</span>}
                  {!model.available && (
                    <span className="jp-dsagent-model-missing">needs {model.missing_api_key}</span>
                  )}
                </div>
              ))}
            </div>
          ))}
          {shown.length === 0 && (
            <div className="jp-dsagent-model-note">
              {draft.trim()
                ? `No listed model matches; Enter uses "${draft.trim()}"`
                : 'No models listed'}
            </div>
          )}
        </div>
      )}
    </div>
  );
}

/** The HITL modes the server's policy allows, least oversight first. */
export function HitlModePicker(props: {
  value: HITLMode;
  onChange: (mode: HITLMode) => void;
}): JSX.Element {
  const { policy } = useAdmin();
  const modes = policy?.hitl_modes ?? HITL_MODES;
  return (
    <select
      className="jp-mod-styled jp-dsagent-hitl-mode"
      aria-label="Human in the loop"
      value={props.value}
      onChange={e => props.onChange(e.target.value as HITLMode)}
    >
      {HITL_MODES.filter(mode => modes.includes(mode) || mode === props.value).map(mode => (
        <option key={mode} value={mode} disabled={!modes.includes(mode)}>
          {MODE_LABELS[mode]}
        </option>
      ))}
    </select>
  );
}
