package store_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"

	"github.com/rdd-project/rdd/internal/events"
	"github.com/rdd-project/rdd/internal/store"
	"github.com/rdd-project/rdd/internal/store/storetest"
)

// holdEnv makes the test binary a helper that holds a log open: it opens the
// path in the variable, prints "ready", and closes the log when stdin closes.
const holdEnv = "RDD_STORE_TEST_HOLD"

func TestMain(m *testing.M) {
	if path := os.Getenv(holdEnv); path != "" {
		os.Exit(hold(path))
	}
	os.Exit(m.Run())
}

func hold(path string) int {
	l, err := store.Open(path, store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := l.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func TestOpenCreates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "events.db")
	before := time.Now()
	l := openAt(t, path, store.Options{Instance: "7"})
	for p, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, path: 0o600} {
		st, err := os.Stat(p)
		if err != nil || st.Mode() != want {
			t.Errorf("mode of %s = %v, %v; want %v", p, st.Mode(), err, want)
		}
	}
	info := l.Info()
	if info.Path != path || info.Schema != store.SchemaVersion || info.Instance != "7" ||
		info.Created.Before(before.Add(-time.Second)) || info.Created.After(time.Now()) {
		t.Errorf("Info = %+v", info)
	}
	if l.LastSeq() != 0 || l.Path() != path {
		t.Errorf("new log: LastSeq %d, Path %s", l.LastSeq(), l.Path())
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	l, err := store.Open(path, store.Options{Instance: "x"})
	if err != nil {
		t.Fatal(err)
	}
	var all []events.Envelope
	for i := 0; i < 10; i++ {
		all = append(all, storetest.MustAppend(t, l, storetest.Envelopes(i*7, 7)...)...)
	}
	for _, s := range []uint64{10, 20, 30} {
		if err := l.SaveCheckpoint(s, []byte(fmt.Sprint(s))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Compact(20); err != nil {
		t.Fatal(err)
	}
	info := l.Info()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	l = openAt(t, path, store.Options{Instance: "ignored"})
	if l.LastSeq() != 70 || l.CompactedThrough() != 20 || !reflect.DeepEqual(l.Info(), info) {
		t.Fatalf("reopened: LastSeq %d, CompactedThrough %d, Info %+v (was %+v)", l.LastSeq(), l.CompactedThrough(), l.Info(), info)
	}
	got, err := storetest.Collect(l, 20, 0)
	if err != nil || !reflect.DeepEqual(got, all[20:]) {
		t.Fatalf("Range after reopen: %d events, %v", len(got), err)
	}
	if seq, data, ok, err := l.LatestCheckpoint(); seq != 30 || string(data) != "30" || !ok || err != nil {
		t.Fatalf("LatestCheckpoint after reopen = %d %q %v %v", seq, data, ok, err)
	}
	if out := storetest.MustAppend(t, l, storetest.Envelope(70)); out[0].Seq != 71 {
		t.Fatalf("first seq after reopen = %d, want 71", out[0].Seq)
	}
}

// checkLocked asserts err is the ErrLocked of path.
func checkLocked(t *testing.T, err error, path string) {
	t.Helper()
	if !errors.Is(err, store.ErrLocked) || !errors.Is(err, berrors.ErrTimeout) {
		t.Fatalf("Open of a held file: %v, want ErrLocked wrapping bbolt's timeout", err)
	}
	for _, want := range []string{path, "rdd svc stop"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestOpenLockedInProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	first := openAt(t, path, store.Options{})
	storetest.MustAppend(t, first, storetest.Envelope(0))

	start := time.Now()
	_, err := store.Open(path, store.Options{}) // default timeout: 1 s
	took := time.Since(start)
	checkLocked(t, err, path)
	if took > 1500*time.Millisecond {
		t.Errorf("second Open failed after %v, want within 1.5 s", took)
	}
	if _, err := store.Open(path, store.Options{Timeout: 100 * time.Millisecond}); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("Open with a short timeout: %v", err)
	}
	// The first log is unharmed, and the file opens once it is released.
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if l := openAt(t, path, store.Options{}); l.LastSeq() != 1 {
		t.Fatalf("LastSeq after the holder closed = %d, want 1", l.LastSeq())
	}
}

func TestOpenLockedCrossProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("helper said %q, %v; stderr: %s", line, err, stderr.String())
	}

	start := time.Now()
	_, err = store.Open(path, store.Options{})
	took := time.Since(start)
	checkLocked(t, err, path)
	if took > 1500*time.Millisecond {
		t.Errorf("Open against another process failed after %v, want within 1.5 s", took)
	}

	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v; stderr: %s", err, stderr.String())
	}
	openAt(t, path, store.Options{})
}

// editFile changes a closed log file directly through bbolt.
func editFile(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// newFile creates a closed log with n events at a fresh path.
func newFile(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.db")
	l, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 500 {
		storetest.MustAppend(t, l, storetest.Envelopes(i, min(500, n-i))...)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenNewerSchema(t *testing.T) {
	path := newFile(t, 3)
	editFile(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("3"))
	})
	_, err := store.Open(path, store.Options{})
	if !errors.Is(err, store.ErrNewerSchema) {
		t.Fatalf("Open = %v, want ErrNewerSchema", err)
	}
	for _, want := range []string{path, "schema version 3", "supports up to 2", "upgrade rdd", "move the file away"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// checkCorrupt asserts that opening path fails with ErrCorrupt naming it.
func checkCorrupt(t *testing.T, path, want string) {
	t.Helper()
	l, err := store.Open(path, store.Options{Logger: zap.NewNop()})
	if err == nil {
		_ = l.Close()
		t.Fatal("Open of a damaged file succeeded")
	}
	if !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrCorrupt", err)
	}
	for _, w := range []string{path, "rdd svc check", want} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestOpenGarbage(t *testing.T) {
	for _, size := range []int{1, 100, 4096, 5000, 64 << 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.db")
			garbage := make([]byte, size)
			_, _ = rand.Read(garbage)
			if err := os.WriteFile(path, garbage, 0o600); err != nil {
				t.Fatal(err)
			}
			checkCorrupt(t, path, "")
		})
	}
}

func TestOpenTruncated(t *testing.T) {
	full := newFile(t, 3000)
	data, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	// bbolt grows the file ahead of use; need is what its header covers.
	var need int
	db, err := bolt.Open(full, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *bolt.Tx) error { need = int(tx.Size()); return nil })
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if need > len(data) || need < 8*4096 {
		t.Fatalf("header covers %d bytes of a %d-byte file", need, len(data))
	}
	write := func(t *testing.T, size int) string {
		path := filepath.Join(t.TempDir(), "events.db")
		if err := os.WriteFile(path, data[:size], 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, size := range []int{need - 1, need - 4096, need / 2, 3 * 4096, 4096 + 100, 4096, 100} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			checkCorrupt(t, write(t, size), "")
		})
	}
	t.Run("unused tail", func(t *testing.T) {
		if l := openAt(t, write(t, need), store.Options{}); l.LastSeq() != 3000 {
			t.Fatalf("LastSeq = %d, want 3000", l.LastSeq())
		}
	})
}

// TestOpenEmptyFile: a file that bbolt created but rdd never initialized
// (a crash at creation), or a zero-length one, opens as a new log.
func TestOpenEmptyFile(t *testing.T) {
	dir := t.TempDir()
	zero := filepath.Join(dir, "zero.db")
	if err := os.WriteFile(zero, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	bare := filepath.Join(dir, "bare.db")
	editFile(t, bare, func(*bolt.Tx) error { return nil })
	for _, path := range []string{zero, bare} {
		l := openAt(t, path, store.Options{Instance: "i"})
		if l.Info().Schema != store.SchemaVersion || l.Info().Instance != "i" {
			t.Errorf("%s: Info = %+v", path, l.Info())
		}
		storetest.MustAppend(t, l, storetest.Envelope(0))
	}
}

func TestOpenForeignBolt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	editFile(t, path, func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("something-else"))
		return err
	})
	checkCorrupt(t, path, "no meta bucket")
}

func TestOpenBadMeta(t *testing.T) {
	for name, edit := range map[string]func(*bolt.Tx) error{
		"schema missing": func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Delete([]byte("schema")) },
		"schema garbage": func(tx *bolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("one")) },
		"no events":      func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("events")) },
		"sequence ahead": func(tx *bolt.Tx) error { return tx.Bucket([]byte("events")).SetSequence(99) },
		"last undecodable": func(tx *bolt.Tx) error {
			return tx.Bucket([]byte("events")).Put(key(3), []byte(`{"seq":3,`))
		},
		"last under wrong key": func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("events"))
			v := bytes.Clone(b.Get(key(2)))
			return b.Put(key(3), v)
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := newFile(t, 3)
			editFile(t, path, edit)
			checkCorrupt(t, path, "")
		})
	}
}

func key(seq uint64) []byte {
	return []byte{byte(seq >> 56), byte(seq >> 48), byte(seq >> 40), byte(seq >> 32), byte(seq >> 24), byte(seq >> 16), byte(seq >> 8), byte(seq)}
}

// TestDamageInsideTheLog: Open does not scan, so damage before the newest
// event surfaces in Check, Range and Get, each naming the file.
func TestDamageInsideTheLog(t *testing.T) {
	for name, edit := range map[string]func(*bolt.Tx) error{
		"undecodable": func(tx *bolt.Tx) error { return tx.Bucket([]byte("events")).Put(key(5), []byte("garbage")) },
		"missing":     func(tx *bolt.Tx) error { return tx.Bucket([]byte("events")).Delete(key(5)) },
	} {
		t.Run(name, func(t *testing.T) {
			path := newFile(t, 10)
			editFile(t, path, edit)
			l, err := store.Open(path, store.Options{})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer func() { _ = l.Close() }()
			_, errGet := l.Get(5)
			errRange := l.Range(0, 0, func(events.Envelope) error { return nil })
			for what, err := range map[string]error{"Check": l.Check(), "Range": errRange, "Get": errGet} {
				if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "event 5") {
					t.Errorf("%s = %v, want ErrCorrupt naming %s and event 5", what, err, path)
				}
			}
			if got, err := storetest.Collect(l, 5, 0); err != nil || len(got) != 5 {
				t.Errorf("Range past the damage = %d events, %v", len(got), err)
			}
		})
	}
}

// TestCheckInvalidPayload: Range trusts payload bytes written by Append (its
// fast path does not re-parse them); Check validates them strictly.
func TestCheckInvalidPayload(t *testing.T) {
	path := newFile(t, 3)
	editFile(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("events")).Put(key(2),
			[]byte(`{"seq":2,"time":"2026-11-26T12:00:00Z","type":"Transition","v":1,"data":{"a":}}`))
	})
	l, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	if err := l.Check(); !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), "event 2") {
		t.Fatalf("Check = %v, want ErrCorrupt for event 2", err)
	}
}
