import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { createContext, useContext } from 'react';

import { DSAgentClient } from './api/client';

/** What every component of the panel may need from JupyterLab. */
export interface PanelServices {
  client: DSAgentClient;
  rendermime: IRenderMimeRegistry;
  /** Open a file (path relative to the server root) in a JupyterLab tab. */
  openPath: (path: string) => void;
}

export const ServicesContext = createContext<PanelServices | null>(null);

export function useServices(): PanelServices {
  const services = useContext(ServicesContext);
  if (!services) {
    throw new Error('DSAgent components need a ServicesContext provider');
  }
  return services;
}
