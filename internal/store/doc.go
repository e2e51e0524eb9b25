// Package store is rdd's event log: the append-only, durable record every
// snapshot is folded from (design.md §1–2). Log keeps it in a bbolt file and
// owns the only *bolt.DB of that file; Mem is an in-memory twin for tests of
// the log's consumers. Both implement EventLog (and Compactor), and the
// conformance suite in storetest runs against both.
//
// # On-disk format (schema version 2)
//
// One bbolt file, D/events.db, mode 0600 in a 0700 directory, with three
// top-level buckets, all created when the file is created:
//
//   - events: key = 8-byte big-endian seq, value = the framed envelope (see
//     Checksums): the envelope as JSON, exactly as events.Marshal writes it
//     (keys seq, time, type, v, data in that order; time RFC 3339 with
//     nanoseconds in UTC). Byte order of the
//     keys is sequence order. The bucket's sequence (NextSequence) is the
//     last assigned seq; seqs start at 1 and have no gaps.
//   - meta: ASCII values: "schema" (decimal schema version), "instance" (the
//     instance name given when the file was created), "created" (RFC 3339
//     UTC), and "compacted" (decimal, highest seq removed by Compact; absent
//     means 0).
//   - checkpoints: key = 8-byte big-endian seq, value = framed opaque
//     snapshot bytes (the state after event seq), never empty.
//
// Next to the file, D/events.db.created records that the log exists (see
// Loss).
//
// # Checksums
//
// Schema 2 frames every stored value as 0x01, then the CRC-32C (Castagnoli,
// big-endian) of the 8-byte key followed by the body, then the body. Every
// read verifies it: Range, Get, the checkpoint getters and Check. Schema 1
// values (no frame: an event starts with '{', and so do rdd's checkpoints)
// are accepted as they are, so a log written before checksums opens without
// a migration; Open only rewrites its schema to 2 so that an older rdd, which
// would misread framed values, refuses the file. A value that fails its
// checksum or does not decode is ErrCorrupt naming its seq (DamagedAt); Range
// first delivers every event before it.
//
// # Damage
//
// bbolt trusts the file, and a damaged page makes it index out of range,
// panic, read outside the mapping, or recurse forever on a cycle of pages.
// So Open first walks the page structure in a private read-only mapping
// under SetPanicOnFault (walk.go: every page bbolt can reach is in range,
// referenced once, of the right kind, with its elements inside it; leaf
// pages of the buckets only by header, to keep Open cheap), and every later bbolt call runs under guard (debug.SetPanicOnFault
// and recover), which turns what remains into ErrCorrupt naming the file.
// After any transaction failed that way (structural damage, which a write
// could spread) the Log refuses further writes; a value that fails its
// checksum does not stop writes.
// Check walks every page in full, instead of bbolt's Tx.Check, which reads
// the mapping in a goroutine where a fault cannot be recovered.
//
// Repair (`rdd svc repair`) salvages a damaged file without trusting its
// structure: it reads every page with read(2), keeps each value under an
// 8-byte key that passes its checksum (or, unframed, decodes as the event of
// that seq), writes the events from 1 (or from just after a salvaged
// checkpoint) up to the first one missing into a new log, with the
// checkpoints among them, and renames the damaged file to
// events.db.damaged-TIME. Events a compaction removed may come back from
// freed pages; unframed (schema 1) checkpoints are not salvaged.
//
// # Loss
//
// Open refuses to start a new log where one existed: if D/events.db.created
// exists and the log is missing, 0 bytes long, or a bbolt file without rdd's
// buckets, Open fails naming both files. The marker is written once, after
// the log's initialization committed, or on the first open of a log that
// predates it. Moving the marker aside is how a user accepts the loss.
//
// A new schema version is needed for any change a previous rdd would misread;
// Open refuses a file whose schema version is above SchemaVersion
// (ErrNewerSchema), so an old rdd never writes into a newer log.
//
// # Opening
//
// Open locks the file exclusively (flock; a second daemon fails with
// ErrLocked after Options.Timeout), checks bbolt's header against the file
// size before bbolt maps it (a truncated file is ErrCorrupt, not a SIGBUS),
// walks the page structure (each branch page, and each leaf page's header:
// see Damage), validates meta, and decodes the newest event.
// It decodes no other event: LastSeq comes from the bucket sequence. The
// walk touches one cache line per page: ~45 ms per million events, where
// the rest of Open costs ~60 µs whatever the size. Check
// does the full scan (every page, and a strict decode of every event) for
// tests and `rdd svc check`.
//
// OpenReader is the open of a command that reads the log while no daemon
// runs: a shared lock, nothing created, upgraded or written, and the walk
// without the events bucket's leaf pages, whose headers are read (pread)
// only when a Range, Get or the open's newest-event check is about to make
// bbolt reach them, so a read costs what it reads: on a 100k-event log
// `rdd status` reads about 350 of ~8000 leaf headers. The shared lock keeps
// the file still between the walk and the reads.
//
// # Guarantees
//
//   - Durability: Append returns after its bbolt transaction committed and
//     (unless Options.NoSync) was fsynced. A failed Append stored nothing.
//   - Size: Append refuses an envelope whose encoding exceeds
//     events.MaxEncodedBytes (4 MiB), so every event fits the line limit of
//     the export that `rdd replay` reads.
//   - Atomicity: one Append is one write transaction (bbolt Update, never
//     Batch, which may run its function twice): all its envelopes or none.
//   - Order: seqs are assigned in call order, strictly increasing from 1,
//     without gaps; Range yields them in seq order.
//   - Immutability: an event never changes once stored. Compact may remove
//     the oldest events, but only those a checkpoint covers.
//   - Stability: what Append returns equals, field for field, what Range and
//     Get return later (Time in UTC without a monotonic reading, Data as
//     re-encoded by encoding/json).
//
// # Concurrency
//
// All methods are safe for concurrent use. Writers (Append, SaveCheckpoint,
// Compact) are serialized by a mutex; the daemon has one writer goroutine
// anyway. Readers use bbolt read transactions, never hold one while running
// caller code, and never return bytes that alias the mapping (decoding
// copies: see the SIGSEGV note in etcd's mvcc watchable_store.go). Range
// decodes at most 8192 events per read transaction, so a long range does not
// pin the mapping and stall a writer that needs to grow the file. LastSeq is
// an atomic load. Close waits for transactions in flight.
//
// # Checkpoints
//
// SaveCheckpoint keeps the newest RecentCheckpoints (8) checkpoints; of the
// older ones it keeps, for each k, the oldest one whose distance d (in seqs)
// to the newest checkpoint satisfies 2^k <= d < 2^(k+1), and the oldest one
// of each block of CheckpointStride (65536) seqs. So at most
// 8+64+LastSeq/65536 checkpoints exist (24 at a million events with the
// daemon's one per 4096), spaced roughly exponentially into the past but
// never more than about a block apart, and CheckpointAtOrBefore (`status
// --at`) needs to replay at most about a block of events.
//
// # Time index
//
// SeqAtTime (TimeIndex; `status --at TIME`) binary-searches the events by
// seq, reading only the time of about log2(n) of them in one read
// transaction: ~60 µs on a million events, where the scan it replaced took
// ~400 ms. It needs no extra bucket because event times are non-decreasing
// in seq: the daemon's writer stamps each commit with max(previous event's
// time, now). The store itself keeps the caller's times as they are.
//
// # Retention
//
// By default the log keeps every event. Compact(keepAfter) removes the
// events up to keepAfter (and the checkpoints below it) only if a checkpoint
// at or after keepAfter exists; afterwards Range and Get below the mark
// return ErrCompacted. The retention policy (how much to keep) is the
// daemon's, per design.md §2.
package store
