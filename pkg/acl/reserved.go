package acl

// CanaryPrefix starts the names of the channels the bridge's end-to-end
// canary publishes its probes to (a random suffix per bridge process). A
// channels file may not name such a channel (the reader refuses it), so no
// producer may publish to one and the token service never signs a token for
// one; the canary checks its envelopes against a registry of its own.
const CanaryPrefix = "$instant-canary-"
