import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISignal } from '@lumino/signaling';
import { createContext, useContext } from 'react';

import { DSAgentClient } from './api/client';
import { Ask } from './notebook/commands';
import { NotebookSessions } from './notebook/sessions';

/** What every component of the panel may need from JupyterLab. */
export interface PanelServices {
  client: DSAgentClient;
  rendermime: IRenderMimeRegistry;
  /** Open a file (path relative to the server root) in a JupyterLab tab. */
  openPath: (path: string) => void;
  /** The open notebooks and the sessions working in them. */
  notebooks: NotebookSessions;
  /** Tasks asked for from a notebook (quick actions), for the panel to start. */
  asks: ISignal<unknown, Ask>;
}

export const ServicesContext = createContext<PanelServices | null>(null);

export function useServices(): PanelServices {
  const services = useContext(ServicesContext);
  if (!services) {
    throw new Error('DSAgent components need a ServicesContext provider');
  }
  return services;
}
