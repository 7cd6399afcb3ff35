import React, { createContext, useCallback, useContext, useEffect, useState } from 'react';

import { DSAgentClient } from '../api/client';
import { ModelCatalogue, Policy } from '../api/types';

/** What the server lets this user pick and spend; null until loaded (or when the server is older). */
export interface Admin {
  catalogue: ModelCatalogue | null;
  policy: Policy | null;
  /** Ask again for the spending figures (after a task). */
  refresh: () => void;
}

export const AdminContext = createContext<Admin>({
  catalogue: null,
  policy: null,
  refresh: () => undefined
});

export function useAdmin(): Admin {
  return useContext(AdminContext);
}

/** Loads the catalogue once and the policy on demand; failures leave them null (free text still works). */
export function useAdminState(client: DSAgentClient): Admin {
  const [catalogue, setCatalogue] = useState<ModelCatalogue | null>(null);
  const [policy, setPolicy] = useState<Policy | null>(null);
  const refresh = useCallback(() => {
    client.policy().then(setPolicy, () => undefined);
  }, [client]);
  useEffect(() => {
    client.models().then(setCatalogue, () => undefined);
    refresh();
  }, [client, refresh]);
  return { catalogue, policy, refresh };
}

/** Dollars as people read them: cents, or two significant digits below a cent. */
export function usd(amount: number): string {
  return amount === 0 || amount >= 0.01 ? `$${amount.toFixed(2)}` : `$${amount.toPrecision(2)}`;
}

/** "$0.42 of $5.00 today": the user's spending against the daily limit, when there is one to show. */
export function SpendingFooter(): JSX.Element | null {
  const { policy } = useAdmin();
  if (!policy) {
    return null;
  }
  const spent = policy.spent_today;
  const limit = policy.limits.max_cost_per_user_per_day;
  if (limit === null && spent.tokens === 0) {
    return null;
  }
  const reached = limit !== null && spent.cost_usd >= limit;
  const text =
    limit !== null
      ? `${usd(spent.cost_usd)} of ${usd(limit)} today`
      : `${usd(spent.cost_usd)} today`;
  const tokens = spent.unpriced_tokens
    ? ` · ${spent.unpriced_tokens.toLocaleString()} tokens without a price`
    : '';
  return (
    <div
      className={`jp-dsagent-spending ${reached ? 'jp-mod-warning' : ''}`}
      role="status"
      aria-label="Spending today"
      title={`${policy.user}, ${policy.day} (UTC): ${spent.tokens.toLocaleString()} tokens`}
    >
      {text}
      {tokens}
      {reached && ' · daily limit reached'}
    </div>
  );
}
