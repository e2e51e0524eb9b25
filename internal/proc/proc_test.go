package proc

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	// comm may contain spaces and parentheses.
	line := "4242 (we ird) (x) S 1 4240 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 987654 1000 50 18446744073709551615\n"
	st, err := ParseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != 'S' || st.PPID != 1 || st.PGID != 4240 || st.StartTicks != 987654 {
		t.Fatalf("ParseStat = %+v", st)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 notanumber 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20"} {
		if _, err := ParseStat(bad); err == nil {
			t.Errorf("ParseStat(%q) succeeded", bad)
		}
	}
}

func TestReadStatOfThisProcess(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.Dead() || st.StartTicks == 0 || st.PPID != os.Getppid() {
		t.Fatalf("this process reads as %+v (parent %d)", st, os.Getppid())
	}
	if age := Age(st.StartTicks); age < 0 || age > time.Minute {
		t.Fatalf("Age of this process, just started = %v", age)
	}
	if init, err := ReadStat(1); err == nil {
		if age, up := Age(init.StartTicks), Uptime(); age <= 0 || age > up {
			t.Fatalf("Age of pid 1 = %v, uptime %v", age, up)
		}
	}
	if _, err := ReadStat(1 << 30); !os.IsNotExist(err) {
		t.Fatalf("a pid that cannot exist: %v, want not-exist", err)
	}
}

func TestPIDsAndCmdlineFindThisProcess(t *testing.T) {
	pids, err := PIDs()
	if err != nil || !slices.Contains(pids, os.Getpid()) {
		t.Fatalf("PIDs = %d pids, %v; want this process (%d) among them", len(pids), err, os.Getpid())
	}
	b, err := Cmdline(os.Getpid())
	if want := strings.Join(os.Args, "\x00") + "\x00"; err != nil || string(b) != want {
		t.Fatalf("Cmdline = %q, %v; want %q", b, err, want)
	}
}
