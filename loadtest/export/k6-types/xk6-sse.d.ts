/**
 * Types of `k6/x/sse`, the xk6-sse k6 extension (github.com/phymbert/xk6-sse,
 * Apache-2.0), written here from its documented API (README, examples/ and the
 * module's Go source, v0.1.x): arena's exported k6 scripts
 * (`arena loadtest export k6`) import it for SSE requests, and the tests
 * type-check them against these declarations with @types/k6. k6 itself ships
 * no types for extensions.
 *
 * Behaviour worth knowing: `open` blocks the VU until the stream ends (end of
 * body, `client.close()`, an error or the timeout); it records `http_reqs`,
 * `http_req_duration` (open to end of stream) and the counter `sse_event`
 * with the tags of `params.tags`, but not `http_req_failed`.
 */
declare module 'k6/x/sse' {
  import type { CookieJar } from 'k6/http';

  /** The second argument of `open`. Every field is optional. */
  export interface Params {
    /** HTTP method, default `GET`. */
    method?: string;
    /** Request headers; `Accept: text/event-stream` is always set. */
    headers?: Record<string, string>;
    /** Request body (sent as is, trimmed of surrounding white space). */
    body?: string;
    /** Tags added to the metrics of this request, e.g. `{ scenario: 'chat' }`. */
    tags?: Record<string, string>;
    /** A Go duration such as `30s` or `250ms` for the whole stream; absent: no timeout. */
    timeout?: string;
    /** Cookie jar (default: the VU's). */
    jar?: CookieJar;
  }

  /** One server-sent event (fields absent from the stream are ''). */
  export interface Event {
    /** `id:` field. */
    id: string;
    /** `event:` field: '' for an event without one (a "message"). */
    name: string;
    /** The `data:` lines, joined, trailing new lines removed. */
    data: string;
    /** The last comment line (`: text`) of the event. */
    comment: string;
  }

  /** What an `error` handler receives (a Go error). */
  export interface SseError {
    /** The error message. */
    error(): string;
  }

  /** The client the setup function of `open` receives. */
  export interface Client {
    /** The connection is open (after the setup function ran). */
    on(event: 'open', handler: () => void): void;
    /** An event arrived. */
    on(event: 'event', handler: (event: Event) => void): void;
    /** The request or a read failed. */
    on(event: 'error', handler: (error: SseError) => void): void;
    /** Close the stream: `open` returns. */
    close(): void;
  }

  /** What `open` returns once the stream ended. */
  export interface Response {
    /** The URL requested. */
    url: string;
    /** The HTTP status; 0 when the request failed before a response. */
    status: number;
    /** Response headers, each header's values joined with ', '. */
    headers: Record<string, string>;
    /** '' on success, else why the request failed. */
    error: string;
  }

  /** The setup function of `open`: register handlers on the client. */
  export type Setup = (client: Client) => void;

  /** Open a stream and process its events until it ends (blocks the VU). */
  export function open(url: string, params: Params | null, setup: Setup): Response;
  export function open(url: string, setup: Setup): Response;

  /** The module's default export: `import sse from 'k6/x/sse'`. */
  const sse: { open: typeof open };
  export default sse;
}
