package store_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/store"
	"github.com/rdd-project/rdd/internal/store/storetest"
)

// damageBase is the intact log the damage tests start from: enough events
// for a few dozen leaf pages under a branch page, checkpoints, and a
// compaction mark, so that damage can land on every kind of bbolt page.
var damageBase = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "rdd-damage-base-")
	if err != nil {
		return nil, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	path := filepath.Join(dir, "events.db")
	l, err := store.Open(path, store.Options{NoSync: true, Instance: "fuzz"})
	if err != nil {
		return nil, err
	}
	defer func() { _ = l.Close() }()
	for i := 0; i < 400; i += 50 {
		if _, err := l.Append(storetest.Envelopes(i, 50)...); err != nil {
			return nil, err
		}
		if err := l.SaveCheckpoint(l.LastSeq(), []byte(`{"v":1,"snapshot":{}}`)); err != nil {
			return nil, err
		}
	}
	if _, err := l.Compact(50); err != nil {
		return nil, err
	}
	if err := l.Close(); err != nil {
		return nil, err
	}
	return os.ReadFile(path)
})

const damagePage = 4096 // bbolt's page size on the machines we build on

// damage applies ops to a copy of file. Each op is 6 bytes: a kind, a
// little-endian 32-bit position and a value. Kinds: flip a byte (xor), cut
// the file, zero a page, fill a page with the value.
func damage(file, ops []byte) []byte {
	out := bytes.Clone(file)
	for ; len(ops) >= 6 && len(out) > 0; ops = ops[6:] {
		pos := int(binary.LittleEndian.Uint32(ops[1:5]))
		val := ops[5]
		switch ops[0] % 4 {
		case 0:
			out[pos%len(out)] ^= val | 1
		case 1:
			out = out[:pos%len(out)]
		case 2, 3:
			pages := (len(out) + damagePage - 1) / damagePage
			p := pos % pages
			fill := byte(0)
			if ops[0]%4 == 3 {
				fill = val
			}
			for i := p * damagePage; i < min(len(out), (p+1)*damagePage); i++ {
				out[i] = fill
			}
		}
	}
	return out
}

// exercise opens the log at path and calls every method on it. Whatever the
// damage, each must return (no panic, no fault, which would end the test
// binary) and every error must name the file.
func exercise(t testing.TB, path string) {
	named := func(what string, err error) {
		if err != nil && !strings.Contains(err.Error(), path) {
			t.Fatalf("%s: error does not name %s: %v", what, path, err)
		}
	}
	// The reader first: Open and the writes below change the file.
	if l, err := store.OpenReader(path, store.Options{Timeout: time.Second}); err != nil {
		named("OpenReader", err)
	} else {
		exerciseReader(t, l, named)
	}
	if l, err := store.Open(path, store.Options{Timeout: time.Second, NoSync: true}); err != nil {
		named("Open", err)
	} else {
		exerciseLog(t, l, named)
	}
	// Whatever Open made of the file, Repair must not crash either.
	_, err := store.Repair(path, store.Options{Timeout: time.Second, NoSync: true})
	named("Repair", err)
}

func exerciseLog(t testing.TB, l *store.Log, named func(string, error)) {
	n := 0
	err := l.Range(l.CompactedThrough(), 0, func(events.Envelope) error { n++; return nil })
	named("Range", err)
	if seq, ok := store.DamagedAt(err); ok && seq != l.CompactedThrough()+uint64(n)+1 {
		t.Fatalf("Range delivered %d events from %d, then reported event %d", n, l.CompactedThrough(), seq)
	}
	_, err = l.Get(l.LastSeq())
	named("Get", err)
	_, _, _, err = l.LatestCheckpoint()
	named("LatestCheckpoint", err)
	_, _, _, err = l.CheckpointAtOrBefore(l.LastSeq() / 2)
	named("CheckpointAtOrBefore", err)
	_, err = l.Append(storetest.Envelopes(1000, 3)...)
	named("Append", err)
	named("SaveCheckpoint", l.SaveCheckpoint(l.LastSeq(), []byte("{}")))
	_, err = l.Compact(l.LastSeq())
	named("Compact", err)
	named("Check", l.Check())
	named("Close", l.Close())
}

// exerciseReader is exerciseLog for a log from OpenReader, which checks
// the events bucket's leaves only as reads reach them: every read must
// still return, and the writes must be refused.
func exerciseReader(t testing.TB, l *store.Log, named func(string, error)) {
	n := 0
	err := l.Range(l.CompactedThrough(), 0, func(events.Envelope) error { n++; return nil })
	named("reader Range", err)
	if seq, ok := store.DamagedAt(err); ok && seq != l.CompactedThrough()+uint64(n)+1 {
		t.Fatalf("reader Range delivered %d events from %d, then reported event %d", n, l.CompactedThrough(), seq)
	}
	for _, seq := range []uint64{l.LastSeq(), l.CompactedThrough() + 1, (l.CompactedThrough() + l.LastSeq()) / 2} {
		_, err = l.Get(seq)
		named("reader Get", err)
	}
	_, _, _, err = l.CheckpointAtOrBefore(l.LastSeq() / 2)
	named("reader CheckpointAtOrBefore", err)
	_, err = l.Append(storetest.Envelopes(1000, 1)...)
	if err == nil {
		t.Fatal("a reader appended")
	}
	named("reader Append", err)
	named("reader SaveCheckpoint", l.SaveCheckpoint(l.LastSeq(), []byte("{}")))
	_, err = l.Compact(l.LastSeq())
	named("reader Compact", err)
	named("reader Check", l.Check())
	named("reader Close", l.Close())
}

// writeDamaged writes data as events.db in a fresh directory, with the
// marker an intact log has next to it.
func writeDamaged(t testing.TB, dir string, data []byte) string {
	path := filepath.Join(dir, "events.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".created", []byte("rdd event log\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// FuzzDamagedLog damages an intact log (byte flips at fuzzer-chosen
// offsets, truncation, zeroed or filled pages), then opens it and calls
// every method. Seeds: testdata/store/FuzzDamagedLog (raw op bytes, see
// damage) plus the cases below.
func FuzzDamagedLog(f *testing.F) {
	base, err := damageBase()
	if err != nil {
		f.Fatal(err)
	}
	op := func(kind byte, pos uint32, val byte) []byte {
		b := []byte{kind, 0, 0, 0, 0, val}
		binary.LittleEndian.PutUint32(b[1:], pos)
		return b
	}
	// Whole-page damage to every page is TestDamagedPages; here, a flip in
	// each page's first element and two truncations.
	for p := 0; p*damagePage < len(base); p++ {
		f.Add(op(0, uint32(p*damagePage+20), 0x80))
	}
	f.Add(op(1, 0, 0))
	f.Add(op(1, uint32(len(base)-1), 0))
	seeds, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "store", "FuzzDamagedLog", "*"))
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, ops []byte) {
		exercise(t, writeDamaged(t, t.TempDir(), damage(base, ops)))
	})
}

// TestDamagedPages runs every page of the base log through each kind of
// page damage, and a byte flip at every 1021st offset: the deterministic
// core of FuzzDamagedLog, run by `go test`.
func TestDamagedPages(t *testing.T) {
	base, err := damageBase()
	if err != nil {
		t.Fatal(err)
	}
	var ops [][]byte
	for p := 0; p*damagePage < len(base); p++ {
		for _, o := range [][]byte{{2, 0, 0, 0, 0, 0}, {3, 0, 0, 0, 0, 0xff}} {
			o := bytes.Clone(o)
			binary.LittleEndian.PutUint32(o[1:], uint32(p))
			ops = append(ops, o)
		}
	}
	for off := 0; off < len(base); off += 1021 {
		o := []byte{0, 0, 0, 0, 0, 0x10}
		binary.LittleEndian.PutUint32(o[1:], uint32(off))
		ops = append(ops, o)
	}
	for _, o := range ops {
		exercise(t, writeDamaged(t, t.TempDir(), damage(base, o)))
	}
}

// TestLeafTurnedBranch turns each leaf page into a branch page, whose
// elements then read as child page ids, and then makes them all point at
// the page itself: the damage that sends bbolt round a cycle. OpenReader does not read the events bucket's leaves at
// open, so its reads must find each one before bbolt follows it.
func TestLeafTurnedBranch(t *testing.T) {
	base, err := damageBase()
	if err != nil {
		t.Fatal(err)
	}
	turned := 0
	for p := 2; (p+1)*damagePage <= len(base); p++ {
		hdr := base[p*damagePage:]
		if binary.NativeEndian.Uint64(hdr) != uint64(p) || binary.NativeEndian.Uint16(hdr[8:]) != 0x02 {
			continue
		}
		data := bytes.Clone(base)
		binary.NativeEndian.PutUint16(data[p*damagePage+8:], 0x01)
		exercise(t, writeDamaged(t, t.TempDir(), data))
		// And with every element pointing back at the page itself: a
		// cycle bbolt would recurse round until the stack overflows.
		n := int(binary.NativeEndian.Uint16(data[p*damagePage+10:]))
		for i := 0; i < n && 16+(i+1)*16 <= damagePage; i++ {
			binary.NativeEndian.PutUint64(data[p*damagePage+16+i*16+8:], uint64(p))
		}
		exercise(t, writeDamaged(t, t.TempDir(), data))
		turned++
	}
	if turned < 10 {
		t.Fatalf("only %d leaf pages in the base log: the test covers too little", turned)
	}
}

// TestFlippedPayloadByte: one flipped byte in the payload of event 5 (as in
// "facts" read back as "oacts") fails its checksum; Range delivers events
// 1-4 and then reports event 5, naming the file.
func TestFlippedPayloadByte(t *testing.T) {
	path := newFile(t, 10)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte(`"message":"event 4"`) // Envelope(4) is seq 5
	i := bytes.Index(data, msg)
	if i < 0 || bytes.Count(data, msg) != 1 {
		t.Fatalf("payload of event 5 found %d times", bytes.Count(data, msg))
	}
	data[i+len(msg)-2] ^= 0x01 // "event 4" → "event 5": still valid JSON
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	l := openDamaged(t, path)
	got, err := storetest.Collect(l, 0, 0)
	if len(got) != 4 || got[3].Seq != 4 {
		t.Errorf("Range delivered %d events before the damage, want 4", len(got))
	}
	for what, err := range map[string]error{"Range": err, "Get": second(l.Get(5)), "Check": l.Check()} {
		seq, ok := store.DamagedAt(err)
		if !errors.Is(err, store.ErrCorrupt) || !ok || seq != 5 || !strings.Contains(err.Error(), path) ||
			!strings.Contains(err.Error(), "event 5") || !strings.Contains(err.Error(), "checksum") {
			t.Errorf("%s = %v (at %d %v), want ErrCorrupt naming %s, event 5 and its checksum", what, err, seq, ok, path)
		}
	}
	if rest, err := storetest.Collect(l, 5, 0); err != nil || len(rest) != 5 {
		t.Errorf("Range after the damage = %d events, %v; want 5", len(rest), err)
	}
}

// openDamaged opens a log the test damaged (openAt would Check it at the end).
func openDamaged(t *testing.T, path string) *store.Log {
	t.Helper()
	l, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func second[T any](_ T, err error) error { return err }

// TestFlippedCheckpointByte: a damaged checkpoint is an error, not a
// snapshot the daemon would restore.
func TestFlippedCheckpointByte(t *testing.T) {
	path := newFile(t, 10)
	l := openAt(t, path, store.Options{})
	if err := l.SaveCheckpoint(10, []byte(`{"checkpoint":"at ten"}`)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte("at ten"))
	if i < 0 {
		t.Fatal("checkpoint not found in the file")
	}
	data[i] ^= 0x20
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	l = openDamaged(t, path)
	_, _, _, err = l.LatestCheckpoint()
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "checkpoint 10") {
		t.Errorf("LatestCheckpoint = %v, want ErrCorrupt naming %s and checkpoint 10", err, path)
	}
}

// TestLostLog: a log truncated to 0 bytes, deleted, or reduced to a bare
// bbolt file, where the instance had one, is an error naming the file; it
// is never silently replaced by a new, empty log.
func TestLostLog(t *testing.T) {
	for name, lose := range map[string]func(path string) error{
		"truncated": func(path string) error { return os.Truncate(path, 0) },
		"removed":   os.Remove,
		"bare": func(path string) error {
			if err := os.Remove(path); err != nil {
				return err
			}
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				return err
			}
			return db.Close()
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := newFile(t, 3)
			if err := lose(path); err != nil {
				t.Fatal(err)
			}
			l, err := store.Open(path, store.Options{})
			if err == nil {
				_ = l.Close()
				t.Fatal("Open started a new log")
			}
			for _, want := range []string{path, path + ".created", "restore"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Open = %v, does not mention %q", err, want)
				}
			}
			if st, err := os.Stat(path); err == nil && st.Size() > 0 && name != "bare" {
				t.Errorf("Open wrote %d bytes to %s", st.Size(), path)
			}
		})
	}
}

// TestOldFormatReadable: a schema 1 log (values without checksums) opens,
// reads back in full, is marked schema 2, and takes checksummed events after
// the old ones.
func TestOldFormatReadable(t *testing.T) {
	path := newFile(t, 20)
	l := openAt(t, path, store.Options{})
	want, err := storetest.Collect(l, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SaveCheckpoint(20, []byte(`{"old":true}`)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Rewrite the file as rdd schema 1 wrote it: bare JSON values.
	editFile(t, path, func(tx *bolt.Tx) error {
		for _, name := range []string{"events", "checkpoints"} {
			b := tx.Bucket([]byte(name))
			old := map[string][]byte{}
			if err := b.ForEach(func(k, v []byte) error {
				if v[0] != 0x01 {
					return errors.New("value is not framed")
				}
				old[string(k)] = bytes.Clone(v[5:])
				return nil
			}); err != nil {
				return err
			}
			for k, v := range old {
				if err := b.Put([]byte(k), v); err != nil {
					return err
				}
			}
		}
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("1"))
	})
	// A reader reads it as it is, and leaves it at schema 1.
	r, err := store.OpenReader(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := storetest.Collect(r, 0, 0); err != nil || !eventsEqual(got, want) || r.Info().Schema != 1 {
		t.Fatalf("reader of the old log: %d events, schema %d, %v", len(got), r.Info().Schema, err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	l = openAt(t, path, store.Options{})
	if l.Info().Schema != store.SchemaVersion {
		t.Errorf("schema after open = %d, want %d", l.Info().Schema, store.SchemaVersion)
	}
	storetest.MustAppend(t, l, storetest.Envelope(20))
	got, err := storetest.Collect(l, 0, 0)
	if err != nil || len(got) != 21 || !eventsEqual(got[:20], want) {
		t.Fatalf("Range of the old log = %d events, %v", len(got), err)
	}
	if _, cp, _, err := l.LatestCheckpoint(); err != nil || string(cp) != `{"old":true}` {
		t.Errorf("old checkpoint = %q, %v", cp, err)
	}
	if err := l.Check(); err != nil {
		t.Errorf("Check of the mixed log: %v", err)
	}
}

func eventsEqual(a, b []events.Envelope) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Seq != b[i].Seq || !a[i].Time.Equal(b[i].Time) || a[i].Type != b[i].Type || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

// TestRepair: repairing a log whose event 5 is damaged keeps events 1-4 and
// the checkpoint at 3 in a new log at the same path, and the damaged file
// aside.
func TestRepair(t *testing.T) {
	path := newFile(t, 10)
	l := openAt(t, path, store.Options{})
	if err := l.SaveCheckpoint(3, []byte(`{"at":3}`)); err != nil {
		t.Fatal(err)
	}
	if err := l.SaveCheckpoint(8, []byte(`{"at":8}`)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte(`"message":"event 4"`))
	data[i+3] ^= 0x40
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := store.Repair(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.First != 1 || r.Last != 4 || r.Checkpoints != 1 || r.Lost != 5 {
		t.Errorf("Repair = %+v, want events 1-4, 1 checkpoint, 5 lost", r)
	}
	if kept, err := os.ReadFile(r.DamagedCopy); err != nil || !bytes.Equal(kept, data) {
		t.Errorf("damaged copy %s: %v, intact %v", r.DamagedCopy, err, bytes.Equal(kept, data))
	}
	l = openAt(t, path, store.Options{})
	got, err := storetest.Collect(l, 0, 0)
	if err != nil || len(got) != 4 || got[3].Seq != 4 {
		t.Fatalf("repaired log: %d events, %v", len(got), err)
	}
	if seq, cp, ok, err := l.LatestCheckpoint(); !ok || err != nil || seq != 3 || string(cp) != `{"at":3}` {
		t.Errorf("repaired checkpoint = %d %q %v %v", seq, cp, ok, err)
	}
	storetest.MustAppend(t, l, storetest.Envelope(4))
}

// TestRepairStructure: a log whose page structure is damaged (Open refuses
// it) is still salvaged page by page.
func TestRepairStructure(t *testing.T) {
	base, err := damageBase()
	if err != nil {
		t.Fatal(err)
	}
	var path string
	for p := byte(2); path == "" && int(p)*damagePage < len(base); p++ {
		try := writeDamaged(t, t.TempDir(), damage(base, []byte{3, p, 0, 0, 0, 0xff}))
		l, err := store.Open(try, store.Options{})
		if err == nil {
			_ = l.Close()
			continue
		}
		if strings.Contains(err.Error(), "referenced") || strings.Contains(err.Error(), "says it is page") {
			path = try
		}
	}
	if path == "" {
		t.Fatal("no filled page breaks the structure")
	}
	r, err := store.Repair(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := openAt(t, path, store.Options{})
	if l.LastSeq() != r.Last || l.CompactedThrough() != r.First-1 || r.Last < r.First {
		t.Errorf("Repair = %+v; repaired log %d..%d", r, l.CompactedThrough()+1, l.LastSeq())
	}
	t.Logf("salvaged %+v", r)
}

// TestFaultRefusesWrites: a leaf element pointing far outside its page
// (which Open's quick walk does not read) makes bbolt read outside the
// mapping during Range. The read fails with ErrCorrupt naming the file and
// the first event not delivered, the process lives on, and the log refuses
// writes from then on.
func TestFaultRefusesWrites(t *testing.T) {
	path := newFile(t, 400)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte(`"message":"event 200"`))
	if i < 0 {
		t.Fatal("event 201 not found")
	}
	page := i / damagePage * damagePage
	if binary.NativeEndian.Uint16(data[page+8:]) != 0x02 {
		t.Fatalf("event 201 is not on a leaf page")
	}
	binary.NativeEndian.PutUint32(data[page+16+4:], 0x7ffffff0) // element 0's pos
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	l := openDamaged(t, path)
	got, err := storetest.Collect(l, 0, 0)
	seq, ok := store.DamagedAt(err)
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), path) || !ok || seq != uint64(len(got))+1 {
		t.Fatalf("Range = %d events, then %v (at %d %v); want ErrCorrupt naming %s and event %d", len(got), err, seq, ok, path, len(got)+1)
	}
	if !strings.Contains(err.Error(), "damaged page") {
		t.Skipf("bbolt read garbage instead of faulting: %v", err)
	}
	if _, err := l.Append(storetest.Envelope(400)); !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "will not write") {
		t.Errorf("Append after a fault = %v, want the damage error", err)
	}
}
