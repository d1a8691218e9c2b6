//! The console's REST client: JSON in and out with the session's bearer token. A failed answer
//! becomes a `RestError` carrying the server's error code and message and, for validation
//! answers that name them (the flow editor's 422), the per-path errors.

export interface FieldError {
  path: string;
  message: string;
}

export class RestError extends Error {
  constructor(
    public readonly status: number,
    public readonly code: string,
    message: string,
    public readonly errors: FieldError[] = [],
  ) {
    super(message);
  }
}

export class Rest {
  constructor(private readonly token: () => string | null, private readonly onUnauthorized: () => void) {}

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    const token = this.token();
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new RestError(0, "network", (e as Error).message);
    }
    const text = await res.text();
    let json: unknown = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (!res.ok) {
      if (res.status === 401) this.onUnauthorized();
      // `{"error": {code, message}}` everywhere; `{code, message, errors}` from validators that
      // report paths (either nesting is accepted).
      const top = (json ?? {}) as { code?: string; message?: string; errors?: FieldError[]; error?: { code?: string; message?: string; errors?: FieldError[] } };
      const inner = top.error ?? top;
      const errors = inner.errors ?? top.errors ?? [];
      throw new RestError(res.status, inner.code ?? String(res.status), inner.message ?? (text.slice(0, 200) || res.statusText), Array.isArray(errors) ? errors : []);
    }
    return json as T;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }
}
