/**
 * REST calls to the server extension, always through `ServerConnection` so the base URL
 * (`/user/<name>/` under JupyterHub), the token and the XSRF header are handled by JupyterLab.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  Artifact,
  HITLResponse,
  HITLStatus,
  KernelState,
  LiveCell,
  ModelCatalogue,
  Policy,
  NotebookClaim,
  Session,
  SessionUpdate,
  StoredFile,
  Turn,
  TurnsPage
} from './types';

/** A failed call, with the server's `detail` as the message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
  }

  static async fromResponse(response: Response): Promise<ApiError> {
    let detail: unknown = response.statusText;
    try {
      const body = await response.json();
      detail = body.detail ?? body.message ?? detail;
    } catch {
      // not JSON: keep the status text
    }
    if (Array.isArray(detail)) {
      // validation errors come as FastAPI's list of {loc, msg}
      detail = detail.map(d => d.msg ?? JSON.stringify(d)).join('; ');
    }
    return new ApiError(response.status, `${detail || 'Request failed'}`);
  }
}

export class DSAgentClient {
  readonly settings = ServerConnection.makeSettings();

  /** The URL of a path under the extension's prefix, e.g. `url('api', 'sessions')`. */
  url(...parts: string[]): string {
    return URLExt.join(this.settings.baseUrl, 'dsagent', ...parts.map(encodeURIComponent));
  }

  /** A raw request (streams, downloads); throws ApiError on an error status. */
  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const response = await ServerConnection.makeRequest(url, init, this.settings);
    if (!response.ok) {
      throw await ApiError.fromResponse(response);
    }
    return response;
  }

  async json<T>(
    method: string,
    parts: string[],
    body?: unknown,
    query = '',
    extra: RequestInit = {}
  ): Promise<T> {
    const init: RequestInit = { ...extra, method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
    }
    const response = await this.fetch(this.url('api', 'sessions', ...parts) + query, init);
    return response.status === 204 ? (undefined as T) : response.json();
  }

  /** The models the user may pick, with their provider, key and price. */
  async models(): Promise<ModelCatalogue> {
    return (await this.fetch(this.url('api', 'models'))).json();
  }

  /** The admin's policy and the user's spending against it. */
  async policy(): Promise<Policy> {
    return (await this.fetch(this.url('api', 'policy'))).json();
  }

  listSessions(): Promise<{ sessions: Session[]; total: number }> {
    return this.json('GET', [], undefined, '?limit=100');
  }

  /** The sessions attached to a notebook (at most one). */
  async notebookSessions(path: string): Promise<Session[]> {
    const query = `?notebook_path=${encodeURIComponent(path)}`;
    return (await this.json<{ sessions: Session[] }>('GET', [], undefined, query)).sessions;
  }

  /**
   * Take or renew the right to write the session's cells into the open notebook. `keepalive`: the
   * request outlives the page (the last report as a window reloads or closes).
   */
  claim(
    id: string,
    clientId: string,
    writtenThrough: number | null,
    cells?: LiveCell[],
    keepalive = false
  ): Promise<NotebookClaim> {
    const body = {
      client_id: clientId,
      written_through: writtenThrough,
      ...(cells ? { cells } : {})
    };
    return this.json('POST', [id, 'notebook', 'claim'], body, '', { keepalive });
  }

  release(id: string, clientId: string): Promise<void> {
    return this.json(
      'DELETE',
      [id, 'notebook', 'claim'],
      undefined,
      `?client_id=${encodeURIComponent(clientId)}`
    );
  }

  createSession(body: SessionUpdate): Promise<Session> {
    return this.json('POST', [], body);
  }

  getSession(id: string): Promise<Session> {
    return this.json('GET', [id]);
  }

  updateSession(id: string, body: SessionUpdate): Promise<Session> {
    return this.json('PUT', [id], body);
  }

  archiveSession(id: string): Promise<Session> {
    return this.json('POST', [id, 'archive']);
  }

  deleteSession(id: string): Promise<void> {
    return this.json('DELETE', [id]);
  }

  /** Every round of the session, oldest first, and the id of its last event when they were read. */
  async turns(id: string): Promise<{ turns: Turn[]; lastEventId: number }> {
    const turns: Turn[] = [];
    let lastEventId = 0;
    for (;;) {
      const page = await this.json<TurnsPage>(
        'GET',
        [id, 'turns'],
        undefined,
        `?limit=200&offset=${turns.length}`
      );
      turns.push(...page.turns);
      lastEventId = Math.max(lastEventId, page.last_event_id ?? 0);
      if (!page.has_more || page.turns.length === 0) {
        return { turns, lastEventId };
      }
    }
  }

  kernel(id: string): Promise<KernelState> {
    return this.json('GET', [id, 'kernel']);
  }

  cancelRestore(id: string): Promise<{ success: boolean; message: string }> {
    return this.json('DELETE', [id, 'kernel', 'restore']);
  }

  cancel(id: string): Promise<{ success: boolean; message: string }> {
    return this.json('POST', [id, 'chat', 'cancel']);
  }

  hitlStatus(id: string): Promise<HITLStatus> {
    return this.json('GET', [id, 'hitl', 'status']);
  }

  respond(id: string, body: HITLResponse): Promise<{ message: string }> {
    return this.json('POST', [id, 'hitl', 'respond'], body);
  }

  async upload(id: string, files: File[]): Promise<void> {
    const form = new FormData();
    files.forEach(file => form.append('files', file, file.name));
    // FormData sets its own multipart Content-Type with the boundary
    await this.fetch(this.url('api', 'sessions', id, 'files') + '?category=data', {
      method: 'POST',
      body: form
    });
  }

  async dataFiles(id: string): Promise<StoredFile[]> {
    const list = await this.json<{ files: StoredFile[] }>(
      'GET',
      [id, 'files'],
      undefined,
      '?category=data'
    );
    return list.files;
  }

  /** Whether the session notebook exists; listing the notebooks makes the server write it up to date. */
  async hasNotebook(id: string): Promise<boolean> {
    const list = await this.json<{ files: StoredFile[] }>(
      'GET',
      [id, 'files'],
      undefined,
      '?category=notebooks'
    );
    return list.files.some(file => file.name === `${id}.ipynb`);
  }

  deleteDataFile(id: string, name: string): Promise<void> {
    return this.json('DELETE', [id, 'files', name], undefined, '?category=data');
  }

  async artifacts(id: string): Promise<Artifact[]> {
    const list = await this.json<{ artifacts: Artifact[] }>('GET', [id, 'artifacts']);
    return list.artifacts;
  }

  deleteArtifact(id: string, name: string): Promise<void> {
    return this.json('DELETE', [id, 'artifacts', name]);
  }

  /** An artifact's bytes: fetched with the session's credentials, for previews and downloads. */
  async artifactBlob(id: string, name: string): Promise<Blob> {
    const response = await this.fetch(this.url('api', 'sessions', id, 'artifacts', name));
    return response.blob();
  }
}
