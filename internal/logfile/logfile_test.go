package logfile

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestRotate(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "rdd.stderr.log")
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return "<missing>"
		}
		return string(b)
	}
	if err := Rotate(log, false); err != nil {
		t.Fatalf("Rotate of a missing log: %v", err)
	}
	for i := range 7 {
		write("rdd.stderr.log", strconv.Itoa(i))
		if err := Rotate(log, false); err != nil {
			t.Fatal(err)
		}
	}
	// Runs 0..6 rotated: backups 1..5 hold 6..2; 0 and 1 were dropped.
	for n, want := range map[int]string{1: "6", 2: "5", 5: "2", 6: "<missing>"} {
		if got := read("rdd.stderr." + strconv.Itoa(n) + ".log"); got != want {
			t.Errorf("backup %d = %q, want %q", n, got, want)
		}
	}
	if got := read("rdd.stderr.log"); got != "<missing>" {
		t.Errorf("active log still there after rotation: %q", got)
	}
	write("rdd.stderr.log", "7")
	if err := Rotate(log, true); err != nil {
		t.Fatal(err)
	}
	if got := read("rdd.stderr.6.log"); got != "2" {
		t.Errorf("keepAll dropped a backup: backup 6 = %q", got)
	}

	f, err := Create(log, false, "title line")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got := read("rdd.stderr.log"); got != "title line\n" {
		t.Errorf("fresh log = %q, want the title", got)
	}
}

func TestCreateKeepsFiveBackups(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dockerd.log")
	for i := range 8 {
		f, err := Create(path, false, "")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := os.WriteFile(path, []byte{byte('0' + i)}, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Now dockerd.log holds 7, .1 holds 6, ..., .5 holds 2; no .6.
	for n, want := range map[int]string{1: "6", 5: "2"} {
		if b, err := os.ReadFile(BackupName(path, n)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", BackupName(path, n), b, err, want)
		}
	}
	if exists(BackupName(path, 6)) {
		t.Error("a sixth backup was kept")
	}
	f, err := Create(path, true, "title line")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !exists(BackupName(path, 6)) {
		t.Error("keep-all rotation dropped a backup")
	}
	if b, _ := os.ReadFile(path); string(b) != "title line\n" {
		t.Errorf("new log = %q; want the title", b)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestTail(t *testing.T) {
	f := filepath.Join(t.TempDir(), "log")
	if _, err := Tail(f, 3); !os.IsNotExist(err) {
		t.Errorf("Tail of a missing file: %v", err)
	}
	if err := os.WriteFile(f, []byte("1\n2\n3\n4\n5\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := Tail(f, 3); err != nil || got != "3\n4\n5" {
		t.Errorf("Tail = %q, %v", got, err)
	}
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := Tail(f, 3); err != nil || got != "" {
		t.Errorf("Tail of an empty log = %q, %v", got, err)
	}
}
