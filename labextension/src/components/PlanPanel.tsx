import React from 'react';

import { Plan } from '../api/types';

/** The agent's plan: a checkbox per step and a progress bar. */
export function PlanPanel(props: { plan: Plan }): JSX.Element {
  const { plan } = props;
  const percent = plan.total_steps
    ? Math.round((100 * plan.completed_steps) / plan.total_steps)
    : 0;
  return (
    <details className="jp-dsagent-plan" open aria-label="Plan">
      <summary>
        Plan · {plan.completed_steps}/{plan.total_steps} steps
      </summary>
      <div
        className="jp-dsagent-progress"
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent}
      >
        <div className="jp-dsagent-progress-bar" style={{ width: `${percent}%` }} />
      </div>
      <ul className="jp-dsagent-plan-steps">
        {plan.steps.map(step => (
          <li key={step.number} className={step.completed ? 'jp-mod-done' : ''}>
            <input
              type="checkbox"
              checked={step.completed}
              readOnly
              aria-label={step.description}
            />
            <span>{step.description}</span>
          </li>
        ))}
      </ul>
    </details>
  );
}
