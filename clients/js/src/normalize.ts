import type { InstantFilter, InstantMessage } from "./types";

type Raw = Record<string, unknown>;

function str(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}

function obj(v: unknown): Record<string, unknown> | null {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
}

/**
 * normalize turns a publication's data into an InstantMessage. Object mode
 * sends an object with id and ts; django mode sends a JSON string without
 * them. channel is the channel the publication arrived on (an envelope to
 * several channels names them all in "channels"). It returns null for data
 * that is neither (not an Instant message).
 */
export function normalize(channel: string, data: unknown, now: () => number = Date.now): InstantMessage | null {
  let raw: Raw | null;
  if (typeof data === "string") {
    try {
      raw = obj(JSON.parse(data));
    } catch {
      return null;
    }
  } else {
    raw = obj(data);
  }
  if (raw === null) {
    return null;
  }
  const ts = typeof raw.ts === "number" && Number.isFinite(raw.ts) ? raw.ts : now();
  return {
    id: str(raw.id),
    channel,
    site: str(raw.site),
    message: str(raw.message),
    data: obj(raw.data),
    eventClass: str(raw.event_class),
    bucket: str(raw.bucket),
    ts,
  };
}

/** matches reports whether msg passes filter. */
export function matches(filter: InstantFilter, msg: InstantMessage): boolean {
  if (filter === "*") {
    return true;
  }
  if (typeof filter === "string") {
    return msg.channel === filter;
  }
  return (
    (filter.channel === undefined || filter.channel === msg.channel) &&
    (filter.eventClass === undefined || filter.eventClass === msg.eventClass)
  );
}

/**
 * Recent remembers the last max keys, oldest forgotten first, so that
 * repeated envelope ids can be dropped with bounded memory.
 */
export class Recent {
  private readonly keys = new Set<string>();

  constructor(private readonly max: number) {
    if (!(max >= 1)) {
      this.max = 1;
    }
  }

  /** seen records key and reports whether it was already there. */
  seen(key: string): boolean {
    if (this.keys.has(key)) {
      return true;
    }
    this.keys.add(key);
    if (this.keys.size > this.max) {
      // A Set iterates in insertion order: the first key is the oldest.
      const oldest = this.keys.values().next().value as string;
      this.keys.delete(oldest);
    }
    return false;
  }

  get size(): number {
    return this.keys.size;
  }
}
