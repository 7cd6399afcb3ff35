/**
 * DSAgent for JupyterLab: a sidebar to run the data-science agent, watch it work and steer it.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { Signal } from '@lumino/signaling';

import { DSAgentClient } from './api/client';
import { DSAgentSidebar } from './components/Panel';
import { agentIcon } from './icon';
import { Ask, registerNotebookCommands } from './notebook/commands';
import { NotebookSessions } from './notebook/sessions';

const PLUGIN_ID = 'dsagent-ext:sidebar';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'The DSAgent sidebar: sessions, chat, approvals and files of the data-science agent.',
  autoStart: true,
  requires: [IRenderMimeRegistry, INotebookTracker],
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    rendermime: IRenderMimeRegistry,
    tracker: INotebookTracker,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ) => {
    const client = new DSAgentClient();
    const notebooks = new NotebookSessions(client, tracker);
    const asks = new Signal<unknown, Ask>(notebooks);
    const sidebar = new DSAgentSidebar({
      client,
      rendermime,
      openPath: path => void app.commands.execute('docmanager:open', { path }),
      notebooks,
      asks
    });
    sidebar.id = 'dsagent-sidebar';
    sidebar.title.icon = agentIcon;
    sidebar.title.caption = 'DSAgent';
    app.shell.add(sidebar, 'right', { rank: 1000 });
    restorer?.add(sidebar, 'dsagent-sidebar');
    registerNotebookCommands(app, notebooks, {
      showPanel: () => app.shell.activateById(sidebar.id),
      ask: ask => asks.emit(ask),
      onError: message => Notification.error(`DSAgent: ${message}`, { autoClose: 8000 }),
      palette
    });
  }
};

export default plugin;
