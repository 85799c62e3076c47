import type { InstantFilter, InstantMessage } from "./types";
/**
 * normalize turns a publication's data into an InstantMessage. Object mode
 * sends an object with id and ts; django mode sends a JSON string without
 * them. channel is the channel the publication arrived on (an envelope to
 * several channels names them all in "channels"). It returns null for data
 * that is neither (not an Instant message).
 */
export declare function normalize(channel: string, data: unknown, now?: () => number): InstantMessage | null;
/** matches reports whether msg passes filter. */
export declare function matches(filter: InstantFilter, msg: InstantMessage): boolean;
/**
 * Recent remembers the last max keys, oldest forgotten first, so that
 * repeated envelope ids can be dropped with bounded memory.
 */
export declare class Recent {
    private readonly max;
    private readonly keys;
    constructor(max: number);
    /** seen records key and reports whether it was already there. */
    seen(key: string): boolean;
    get size(): number;
}
