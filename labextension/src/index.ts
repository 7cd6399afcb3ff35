/**
 * DSAgent for JupyterLab: a sidebar to run the data-science agent, watch it work and steer it.
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';

import { DSAgentClient } from './api/client';
import { DSAgentSidebar } from './components/Panel';
import { agentIcon } from './icon';

const PLUGIN_ID = 'dsagent-ext:sidebar';

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'The DSAgent sidebar: sessions, chat, approvals and files of the data-science agent.',
  autoStart: true,
  requires: [IRenderMimeRegistry],
  optional: [ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    rendermime: IRenderMimeRegistry,
    restorer: ILayoutRestorer | null
  ) => {
    const sidebar = new DSAgentSidebar({
      client: new DSAgentClient(),
      rendermime,
      openPath: path => void app.commands.execute('docmanager:open', { path })
    });
    sidebar.id = 'dsagent-sidebar';
    sidebar.title.icon = agentIcon;
    sidebar.title.caption = 'DSAgent';
    app.shell.add(sidebar, 'right', { rank: 1000 });
    restorer?.add(sidebar, 'dsagent-sidebar');
  }
};

export default plugin;
